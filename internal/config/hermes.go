package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mark says what Herald makes of one of Hermes's gateway settings.
type Mark string

// The marks of the README's compatibility table.
const (
	// Same: the same name, values and default.
	Same Mark = "same"
	// OtherDefault: honoured, with another default, for the reason given.
	OtherDefault Mark = "honoured, another default"
	// NotRelay: the agent's own business, which a relay does not apply.
	NotRelay Mark = "not applicable to a relay"
	// NotYet: a gateway behaviour Herald does not have yet.
	NotYet Mark = "not honoured yet"
	// HeraldOnly marks Herald's own settings, which Hermes does not have.
	HeraldOnly Mark = "Herald only"
)

// Compat is one Hermes gateway setting, as Hermes documents it, and what
// Herald makes of it.
type Compat struct {
	Name    string // Hermes's environment variable or config.yaml key
	Mark    Mark
	Default string // Hermes's default, for Same and OtherDefault
	Why     string // one line, for every mark but Same
}

// isKey tells a config.yaml key from an environment variable.
func (c Compat) isKey() bool { return strings.ToUpper(c.Name) != c.Name }

// gatewaySettings are Hermes's gateway-wide settings (from its
// gateway/config.py, hermes_cli/config.py and its reference of environment
// variables, as read in December 2026); each platform registers its own
// (RegisterHermes). A test holds every one to the registry: a name marked
// Same or OtherDefault is one Herald reads, with Hermes's default or
// another one; the others are not read.
var gatewaySettings = []Compat{
	// The agent server, and who may talk to it.
	{Name: "GATEWAY_PROXY_URL", Mark: Same},
	{Name: "gateway.proxy_url", Mark: Same},
	{Name: "GATEWAY_PROXY_KEY", Mark: Same},
	{Name: "GATEWAY_ALLOWED_USERS", Mark: Same},
	{Name: "GATEWAY_ALLOW_ALL_USERS", Mark: Same, Default: "false"},
	{Name: "unauthorized_dm_behavior", Mark: Same, Default: "pair"},
	{Name: "gateway.unauthorized_dm_behavior", Mark: Same, Default: "pair"},

	// Sessions.
	{Name: "group_sessions_per_user", Mark: Same, Default: "true"},
	{Name: "thread_sessions_per_user", Mark: Same, Default: "false"},
	{Name: "reset_triggers", Mark: Same, Default: "/new,/reset"},
	{Name: "gateway.reset_triggers", Mark: Same, Default: "/new,/reset"},
	{Name: "session_reset.mode", Mark: Same, Default: "none"},
	{Name: "session_reset.idle_minutes", Mark: Same, Default: "1440"},
	{Name: "session_reset.at_hour", Mark: Same, Default: "4"},
	{Name: "session_reset.notify", Mark: Same, Default: "true"},
	{Name: "SESSION_IDLE_MINUTES", Mark: Same, Default: "1440"},
	{Name: "SESSION_RESET_HOUR", Mark: Same, Default: "4"},
	{Name: "session_reset.notify_exclude_platforms", Mark: Same},
	{Name: "max_concurrent_sessions", Mark: NotYet, Why: "every conversation runs as its messages come"},

	// Busy input.
	{Name: "display.busy_input_mode", Mark: Same, Default: "interrupt"},
	{Name: "HERMES_GATEWAY_BUSY_INPUT_MODE", Mark: Same, Default: "interrupt"},
	{Name: "display.busy_text_mode", Mark: NotYet, Why: "display.busy_input_mode applies to every message"},
	{Name: "HERMES_GATEWAY_BUSY_TEXT_MODE", Mark: NotYet, Why: "display.busy_input_mode applies to every message"},
	{Name: "display.busy_ack_enabled", Mark: Same, Default: "true"},
	{Name: "HERMES_GATEWAY_BUSY_ACK_ENABLED", Mark: Same, Default: "true"},

	// Streaming and display.
	{Name: "streaming.enabled", Mark: OtherDefault, Default: "false",
		Why: "answers stream into the chat while they are written, within each platform's rate budget"},
	{Name: "streaming.transport", Mark: Same, Default: "auto"},
	{Name: "streaming.edit_interval", Mark: Same, Default: "0.8"},
	{Name: "streaming.buffer_threshold", Mark: Same, Default: "24"},
	{Name: "streaming.cursor", Mark: Same, Default: " ▉"},
	{Name: "streaming.fresh_final_after_seconds", Mark: NotYet, Why: "the final text is edited into the streamed message"},
	{Name: "display.platforms.<name>.streaming", Mark: Same},
	{Name: "display.tool_progress", Mark: Same, Default: "all"},
	{Name: "HERMES_TOOL_PROGRESS_MODE", Mark: Same, Default: "all"},
	{Name: "display.platforms.<name>.tool_progress", Mark: OtherDefault, Default: "off on Telegram and Slack, new on Matrix",
		Why: "Herald shows what the agent is doing on every platform, edited into the answer's message within its budget"},
	{Name: "display.tool_progress_grouping", Mark: NotYet, Why: "tool lines are always gathered in the answer's message"},
	{Name: "display.tool_preview_length", Mark: NotYet, Why: "previews are bounded by Herald's own limit"},
	{Name: "display.interim_assistant_messages", Mark: NotYet, Why: "the relay is given the final answer only"},
	{Name: "display.long_running_notifications", Mark: NotYet, Why: "the streamed answer and its tool lines show progress"},
	{Name: "display.show_reasoning", Mark: NotYet, Why: "reasoning is never shown in chats"},
	{Name: "display.cleanup_progress", Mark: NotYet, Why: "tool lines are part of the answer's message"},
	{Name: "filter_silence_narration", Mark: NotYet, Why: "every answer is delivered as the agent wrote it"},

	// Every platform's settings under platforms.<name>.extra.
	{Name: "platforms.<name>.extra.allow_from", Mark: Same},
	{Name: "platforms.<name>.extra.group_allow_from", Mark: Same},
	{Name: "platforms.<name>.extra.reply_to_mode", Mark: Same, Default: "first"},
	{Name: "platforms.<name>.extra.reply_in_thread", Mark: Same, Default: "true"},
	{Name: "platforms.<name>.extra.reply_prefix", Mark: NotRelay, Why: "only Hermes's WhatsApp bridge reads it, and Herald has no WhatsApp; Hermes's other adapters ignore it, as Herald does"},
	{Name: "platforms.<name>.extra.typing_indicator", Mark: Same, Default: "true"},
	{Name: "platforms.<name>.extra.gateway_restart_notification", Mark: Same, Default: "true"},
	{Name: "platforms.<name>.gateway_restart_notification", Mark: Same, Default: "true"},

	// The agent's own business: the agent server applies these.
	{Name: "model", Mark: NotRelay, Why: "the agent server chooses the model"},
	{Name: "providers", Mark: NotRelay, Why: "the agent server's model providers"},
	{Name: "custom_providers", Mark: NotRelay, Why: "the agent server's model providers"},
	{Name: "fallback_providers", Mark: NotRelay, Why: "the agent server's model providers"},
	{Name: "fallback_model", Mark: NotRelay, Why: "the agent server's model providers"},
	{Name: "provider_routing", Mark: NotRelay, Why: "the agent server's model providers"},
	{Name: "agent", Mark: NotRelay, Why: "the agent's own settings (Herald's agent.* keys are for a model server without Hermes)"},
	{Name: "toolsets", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "platform_toolsets", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "tools", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "terminal", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "browser", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "web", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "mcp_servers", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "code_execution", Mark: NotRelay, Why: "the agent's tools run on the agent server"},
	{Name: "approvals", Mark: NotRelay, Why: "the agent server asks for approvals"},
	{Name: "memory", Mark: NotRelay, Why: "the agent server keeps the agent's memory"},
	{Name: "compression", Mark: NotRelay, Why: "the agent server compresses the context"},
	{Name: "delegation", Mark: NotRelay, Why: "the agent server runs sub-agents"},
	{Name: "skills", Mark: NotRelay, Why: "the agent server's skills"},
	{Name: "personalities", Mark: NotRelay, Why: "the agent server's prompts"},
	{Name: "tts", Mark: NotRelay, Why: "the agent server's voice"},
	{Name: "voice", Mark: NotRelay, Why: "the agent server's voice"},
	{Name: "cron", Mark: NotRelay, Why: "the agent server's schedules"},
	{Name: "security", Mark: NotRelay, Why: "the agent server's redaction and checks"},
	{Name: "privacy", Mark: NotRelay, Why: "the agent server's redaction and checks"},
	{Name: "timezone", Mark: NotRelay, Why: "the agent server stamps the messages it reads"},
	{Name: "quick_commands", Mark: NotRelay, Why: "they run on the host of the gateway; a relay runs no commands"},
	{Name: "logging", Mark: NotRelay, Why: "the agent server's logs (Herald's is log.level)"},
	{Name: "stt", Mark: NotYet, Why: "voice messages are not passed to the agent"},
}

var (
	hermesMu       sync.Mutex
	platformHermes []Compat // registered by the platforms
)

// RegisterHermes adds a platform's Hermes settings to the table, from the
// platform package's init, so that a platform's rows live in its folder.
func RegisterHermes(rows ...Compat) {
	hermesMu.Lock()
	defer hermesMu.Unlock()
	platformHermes = append(platformHermes, rows...)
}

// hermesSettings are Hermes's settings, gateway-wide and the platforms'.
func hermesSettings() []Compat {
	hermesMu.Lock()
	defer hermesMu.Unlock()
	return append(slices.Clone(gatewaySettings), platformHermes...)
}

// HermesSettings lists Hermes's gateway settings and Herald's own, each
// marked, for the README's compatibility table: Hermes's by name, then
// Herald's own by name.
func HermesSettings() []Compat {
	list := hermesSettings()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	hermes := map[string]bool{}
	for _, c := range list {
		hermes[c.Name] = true
	}
	var own []Compat
	for _, s := range All() {
		if names := s.names(); !anyOf(names, hermes) {
			own = append(own, Compat{Name: names[0], Mark: HeraldOnly})
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
	return append(list, own...)
}

// names are the names a setting is read under: its variable, its key and
// the key's other spellings.
func (s Setting) names() []string {
	var names []string
	if s.Env != "" {
		names = append(names, s.Env)
	}
	if s.Key != "" {
		names = append(names, s.Key)
	}
	return append(names, s.AltKeys...)
}

func anyOf(names []string, set map[string]bool) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

// Differences says, one line each, where the effective configuration
// behaves otherwise than Hermes would with the same files: the settings
// left at a default that is not Hermes's.
func (c *Config) Differences() []string {
	byName := map[string]Effective{}
	for _, e := range c.effective {
		byName[e.Key] = e
		if e.Env != "" {
			byName[e.Env] = e
		}
	}
	var lines []string
	for _, h := range hermesSettings() {
		if e, ok := byName[h.Name]; ok && h.Mark == OtherDefault && e.Origin == "default" {
			lines = append(lines, fmt.Sprintf("%s is %s here, %s in Hermes: %s", h.Name, shownDefault(e.Value), shownDefault(h.Default), h.Why))
		}
	}
	return lines
}

func shownDefault(v string) string {
	if v == "" {
		return "unset"
	}
	return fmt.Sprintf("%q", v)
}

// hermesKey is Hermes's entry for a config.yaml key: the key itself, or
// one under a key that is the agent's own business (NotRelay).
func hermesKey(path string) (Compat, bool) {
	for _, h := range hermesSettings() {
		if h.isKey() && (keyMatches(h.Name, path) || (h.Mark == NotRelay && strings.HasPrefix(path, h.Name+"."))) {
			return h, true
		}
	}
	return Compat{}, false
}

// keyMatches tells whether a config.yaml path is the key name, where
// "<name>" in name stands for any platform's name.
func keyMatches(name, path string) bool {
	want, got := strings.Split(name, "."), strings.Split(path, ".")
	return len(want) == len(got) && segmentsMatch(want, got)
}

// underHermesKey tells whether a config.yaml path holds Hermes keys below
// it (platforms.matrix.extra holds platforms.<name>.extra.reply_prefix).
func underHermesKey(path string) bool {
	got := strings.Split(path, ".")
	for _, h := range hermesSettings() {
		if want := strings.Split(h.Name, "."); h.isKey() && len(want) > len(got) && segmentsMatch(want[:len(got)], got) {
			return true
		}
	}
	return false
}

func segmentsMatch(want, got []string) bool {
	for i := range want {
		if want[i] != got[i] && want[i] != "<name>" {
			return false
		}
	}
	return true
}

// closest is the known key nearest to key by edit distance.
func closest(key string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		if d := editDistance(key, k); bestDist < 0 || d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
