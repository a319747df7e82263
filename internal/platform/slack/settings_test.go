package slack

import (
	"slices"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
)

const (
	testBotToken = "xoxb-1234567890-0987654321-abcdefghijklmnop"
	testAppToken = "xapp-1-A0HERALDAPP-1234567890-abcdef0123456789"
)

func TestSlackOffByDefault(t *testing.T) {
	o := settingsOf(configtest.MustLoad(t, "", nil))
	if o.Enabled() || o.BotToken != "" || o.AppToken != "" {
		t.Errorf("Slack enabled without tokens: %+v", o)
	}
	// The URL is kept without its slash; New puts it back.
	if o.APIURL != strings.TrimSuffix(DefaultAPIURL, "/") || o.MaxMediaBytes != 5<<20 || o.Budget != ChannelBudget {
		t.Errorf("defaults %+v", o)
	}
}

func TestSlackFromEnv(t *testing.T) {
	c := configtest.MustLoad(t, "", map[string]string{
		"SLACK_BOT_TOKEN":     " " + testBotToken + " ",
		"SLACK_APP_TOKEN":     testAppToken,
		"SLACK_API_URL":       "http://127.0.0.1:9000/api/",
		"SLACK_HOME_CHANNEL":  "C0123456789",
		"SLACK_ALLOWED_USERS": "U0123456789,U0987654321",
	})
	o := settingsOf(c)
	if o.BotToken != testBotToken || o.AppToken != testAppToken || o.APIURL != "http://127.0.0.1:9000/api" ||
		o.HomeChannel.Chat != "C0123456789" || !o.Enabled() {
		t.Errorf("Slack = %+v", o)
	}
	if a := c.PlatformAccess[Name]; !slices.Equal(a.Users, []string{"U0123456789", "U0987654321"}) {
		t.Errorf("slack allowlist %+v", a)
	}
}

func TestSlackFromConfigYAML(t *testing.T) {
	c := configtest.MustLoad(t, `
platforms:
  slack:
    bot_token: "`+testBotToken+`"
    app_token: "`+testAppToken+`"
    home_channel: C0123456789
`, nil)
	if o := settingsOf(c); !o.Enabled() || o.HomeChannel.Chat != "C0123456789" {
		t.Errorf("Slack = %+v", o)
	}
}

// A token in the wrong variable is refused at start with what it is and
// where it belongs, never with its value.
func TestSlackWrongTokenKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"swapped", map[string]string{"SLACK_BOT_TOKEN": testAppToken, "SLACK_APP_TOKEN": testBotToken}, []string{
			"env SLACK_BOT_TOKEN: this is an app-level token (xapp-…), which belongs in SLACK_APP_TOKEN; expected the Bot User OAuth Token (xoxb-…)",
			"env SLACK_APP_TOKEN: this is a bot token (xoxb-…), which belongs in SLACK_BOT_TOKEN; expected an app-level token (xapp-…)",
		}},
		{"user token", map[string]string{"SLACK_BOT_TOKEN": "xoxp-1234-5678-abcdefghijkl", "SLACK_APP_TOKEN": testAppToken}, []string{
			"env SLACK_BOT_TOKEN: this is a user token (xoxp-…); Herald acts as the app's bot",
		}},
		{"garbage", map[string]string{"SLACK_BOT_TOKEN": "hunter2-secret", "SLACK_APP_TOKEN": testAppToken}, []string{
			"env SLACK_BOT_TOKEN: expected the Bot User OAuth Token (xoxb-…) from OAuth & Permissions, got 14 characters that are not one",
		}},
		{"bot token alone", map[string]string{"SLACK_BOT_TOKEN": testBotToken}, []string{
			"SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is not",
		}},
		{"app token alone", map[string]string{"SLACK_APP_TOKEN": testAppToken}, []string{
			"SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configtest.Load(t, "", tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q:\n%s", want, msg)
				}
			}
			for _, v := range tc.env {
				if strings.Contains(msg, v) {
					t.Errorf("the error shows a token:\n%s", msg)
				}
			}
		})
	}
}

func TestSlackBadValuesNameTheirSource(t *testing.T) {
	_, err := configtest.Load(t, "", map[string]string{
		"SLACK_BOT_TOKEN":    testBotToken,
		"SLACK_APP_TOKEN":    testAppToken,
		"SLACK_HOME_CHANNEL": "#general",
		"SLACK_API_URL":      "slack.com/api",
	})
	if err == nil {
		t.Fatal("bad Slack settings accepted")
	}
	for _, want := range []string{
		`env SLACK_HOME_CHANNEL: expected a channel id such as C0123456789`,
		`env SLACK_API_URL: expected an http:// or https:// URL with a host, got "slack.com/api"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestSlackVariablesAreRegistered(t *testing.T) {
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_ALLOWED_USERS", "SLACK_ALLOW_ALL_USERS", "SLACK_HOME_CHANNEL", "SLACK_API_URL"} {
		v, ok := config.Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		secret := name == "SLACK_BOT_TOKEN" || name == "SLACK_APP_TOKEN"
		if v.Category != config.Messaging || v.Secret != secret {
			t.Errorf("%s: category %s, secret %v", name, v.Category, v.Secret)
		}
	}
}

// settingsOf is Slack's settings in a loaded configuration.
func settingsOf(cfg *config.Config) *Options { return cfg.Platforms[Name].(*Options) }
