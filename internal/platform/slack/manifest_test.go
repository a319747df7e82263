package slack

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The manifest in docs is the app a new user creates by pasting it: it has
// every scope the adapter's calls and events need, the events the adapter
// takes, and Socket Mode on.
func TestAppManifestHasWhatHeraldNeeds(t *testing.T) {
	data, err := os.ReadFile("../../../docs/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				MessagesTab         bool `yaml:"messages_tab_enabled"`
				MessagesTabReadOnly bool `yaml:"messages_tab_read_only_enabled"`
			} `yaml:"app_home"`
			BotUser struct {
				DisplayName string `yaml:"display_name"`
			} `yaml:"bot_user"`
			SlashCommands []struct{ Command string } `yaml:"slash_commands"`
		}
		OAuth struct {
			Scopes struct{ Bot []string } `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				Bot []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		}
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if !m.Settings.SocketMode {
		t.Error("Socket Mode is off: Herald has no public endpoint for events")
	}
	if !m.Features.AppHome.MessagesTab || m.Features.AppHome.MessagesTabReadOnly || m.Features.BotUser.DisplayName == "" {
		t.Errorf("users cannot write to the bot directly: %+v", m.Features)
	}
	// What each part of the adapter needs (docs.slack.dev/reference/methods
	// and /events, "Required scopes").
	needs := map[string][]string{
		"chat.postMessage, chat.update, chat.delete, chat.*Stream": {"chat:write"},
		"assistant.threads.setStatus":                              {"assistant:write"},
		"users.info":                                               {"users:read"},
		"url_private downloads":                                    {"files:read"},
		"app_mention":                                              {"app_mentions:read"},
		"message.im":                                               {"im:history"},
		"message.channels":                                         {"channels:history"},
		"message.groups":                                           {"groups:history"},
		"slash commands":                                           {"commands"},
	}
	for what, scopes := range needs {
		for _, s := range scopes {
			if !slices.Contains(m.OAuth.Scopes.Bot, s) {
				t.Errorf("%s needs the scope %s", what, s)
			}
		}
	}
	for _, e := range []string{"app_mention", "message.im", "message.channels", "message.groups"} {
		if !slices.Contains(m.Settings.Events.Bot, e) {
			t.Errorf("the event %s is not subscribed", e)
		}
	}
	if len(m.Features.SlashCommands) == 0 {
		t.Error("no slash command declared")
	}
}
