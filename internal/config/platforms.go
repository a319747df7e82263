package config

import (
	"slices"
	"strings"
	"sync"
)

// Section is a platform's settings: a value of the platform's own whose
// fields its Settings fill. Each platform package registers one (see
// RegisterPlatform), so that adding a platform touches its own folder only.
type Section interface {
	// Settings are the platform's settings, bound to the value's fields.
	Settings() []Setting
	// Check reports what is wrong with the settings taken together, once
	// all are set (a login that is missing a part, say), naming the
	// settings concerned; shared are the settings every gateway has.
	Check(shared *Config) error
}

// platform is one registered platform.
type platform struct {
	name string
	new  func() Section
}

var (
	platformsMu sync.Mutex
	platforms   []platform // sorted by name
)

// RegisterPlatform registers a platform's settings under its name, as in
// config keys (platforms.<name>.*) and chat.Source.Platform. newSection
// returns a fresh value with nothing set. It is called from the platform
// package's init; registering a name twice panics.
func RegisterPlatform(name string, newSection func() Section) {
	platformsMu.Lock()
	defer platformsMu.Unlock()
	i, found := slices.BinarySearchFunc(platforms, name, func(p platform, name string) int { return strings.Compare(p.name, name) })
	if found {
		panic("config: platform " + name + " registered twice")
	}
	platforms = slices.Insert(platforms, i, platform{name: name, new: newSection})
}

// registered returns the registered platforms, by name.
func registered() []platform {
	platformsMu.Lock()
	defer platformsMu.Unlock()
	return slices.Clone(platforms)
}

// platformSwitches are the on/off settings every platform has, as Hermes
// names them: its typing indicator, and its notices that a restart or
// shutdown cut an answer short.
func platformSwitches(name string, typing, restartNotices *bool) []Setting {
	return []Setting{
		{Reload: true, Key: "platforms." + name + ".typing_indicator", AltKeys: []string{"platforms." + name + ".extra.typing_indicator"},
			Default: "true", Set: Bool(typing), Description: "Show " + name + "'s typing indicator while the agent works on an answer"},
		{Reload: true, Key: "platforms." + name + ".gateway_restart_notification",
			AltKeys: []string{"platforms." + name + ".extra.gateway_restart_notification", name + ".gateway_restart_notification"},
			Default: "true", Set: Bool(restartNotices),
			Description: "Tell " + name + "'s chats when a restart or shutdown cut an answer short; false leaves the answer as far as it got, and the log says so"},
	}
}

// accessSettings are the allowlist settings every platform has, bound to
// the platform's entry in access.
func accessSettings(name string, access *Access) []Setting {
	upper := strings.ToUpper(name)
	return []Setting{
		{Reload: true, Key: "platforms." + name + ".allowed_users", Env: upper + "_ALLOWED_USERS", Set: List(&access.Users, nil), Category: Messaging,
			AltKeys:     []string{name + ".allowed_users", name + ".allow_from", "platforms." + name + ".extra.allow_from"},
			Description: "Users allowed on " + name + ", comma-separated user ids; * allows everyone",
			Prompt:      "Allowed " + name + " users"},
		{Reload: true, Key: "platforms." + name + ".allow_all_users", Env: upper + "_ALLOW_ALL_USERS", Default: "false", Set: Bool(&access.AllowAll), Category: Messaging,
			Description: "true lets everyone on " + name + " talk to the agent",
			Prompt:      "Allow all " + name + " users"},
		{Reload: true, Key: "platforms." + name + ".group_allowed_users", Env: upper + "_GROUP_ALLOWED_USERS", Set: List(&access.GroupUsers, nil), Category: Messaging, Advanced: true,
			AltKeys: []string{"platforms." + name + ".extra.group_allowed_users", name + ".group_allowed_users",
				name + ".group_allow_from", "platforms." + name + ".extra.group_allow_from"},
			Description: "Users allowed in " + name + " group chats only, comma-separated user ids",
			Prompt:      "Allowed " + name + " users in groups"},
		{Reload: true, Key: "platforms." + name + ".group_allowed_chats", Env: upper + "_GROUP_ALLOWED_CHATS", Set: List(&access.GroupChats, nil), Category: Messaging, Advanced: true,
			AltKeys:     []string{"platforms." + name + ".extra.group_allowed_chats", name + ".group_allowed_chats"},
			Description: "Group chats of " + name + " whose every member may talk to the agent, comma-separated chat ids; * allows every group",
			Prompt:      "Allowed " + name + " groups"},
	}
}
