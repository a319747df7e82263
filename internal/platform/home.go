package platform

import (
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
)

// Home is a platform's home chat as its settings name it (Hermes's
// <PLATFORM>_HOME_CHANNEL and its _THREAD_ID and _NAME): where the agent's
// own messages go when they name the platform but no chat.
type Home struct {
	Chat, Thread, Name string
}

// Homed is implemented by the settings of a platform that has a home
// chat.
type Homed interface {
	// Home returns the home chat as a target, and false when none is set.
	Home() (chat.Target, bool)
}

// Target is the home chat as a target: its thread, replying to nobody; dm
// tells a direct chat from a group, where the platform's ids say.
func (h Home) Target(dm bool) (chat.Target, bool) {
	return chat.Target{ChatID: h.Chat, ThreadID: h.Thread, DM: dm}, h.Chat != ""
}

// HomeChatKey is where the mapping form of platforms.<name>.home_channel,
// which Hermes's /sethome writes, holds the chat: an AltKey of the chat's
// own setting, after platforms.<name>.home_channel.
func HomeChatKey(name string) string { return "platforms." + name + ".home_channel.chat_id" }

// HomeSettings are the settings of a home chat's thread and name, which
// Hermes reads from the environment as <prefix>_THREAD_ID and
// <prefix>_NAME beside the chat's own <prefix>, which each platform checks
// its own way, and from the mapping form of platforms.<name>.home_channel.
// name is the name's default.
func HomeSettings(platform, prefix string, h *Home, name string, checkThread func(string) error) []config.Setting {
	key := "platforms." + platform + ".home_channel."
	return []config.Setting{
		{Env: prefix + "_THREAD_ID", AltKeys: []string{key + "thread_id"}, Set: config.Checked(&h.Thread, checkThread), Category: config.Messaging, Advanced: true,
			Description: "Thread (or topic) of the home chat " + prefix + " names, where the agent's own messages go",
			Prompt:      "Home chat thread"},
		{Env: prefix + "_NAME", AltKeys: []string{key + "name"}, Default: name, Set: config.Text(&h.Name), Category: config.Messaging, Advanced: true,
			Description: "Name of the home chat " + prefix + " names, as the log shows it",
			Prompt:      "Home chat name"},
	}
}
