package discord

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
)

const testToken = "MTAwMDAwMDAwMDAwMDAwMDAx.GhErAl.abcdefghijklmnopqrstuvwxyz012345"

func TestDiscordOffByDefault(t *testing.T) {
	o := settingsOf(configtest.MustLoad(t, "", nil))
	if o.Enabled() || o.Token != "" {
		t.Errorf("Discord enabled without a token: %+v", o)
	}
	// Hermes's defaults: mentions required in channels, auto-thread and
	// reactions on.
	if o.BaseURL != DefaultBaseURL || !o.RequireMention || !o.AutoThread || !o.Reactions ||
		o.Backfill != 10*time.Minute || o.MaxMediaBytes != 5<<20 || o.Budget != ChannelBudget {
		t.Errorf("defaults %+v", o)
	}
}

func TestDiscordFromEnv(t *testing.T) {
	c := configtest.MustLoad(t, "", map[string]string{
		"DISCORD_BOT_TOKEN":              " " + testToken + " ",
		"DISCORD_BASE_URL":               "http://127.0.0.1:9000/",
		"DISCORD_HOME_CHANNEL":           "300000000000000001",
		"DISCORD_REQUIRE_MENTION":        "false",
		"DISCORD_FREE_RESPONSE_CHANNELS": "300000000000000002, 300000000000000003",
		"DISCORD_AUTO_THREAD":            "false",
		"DISCORD_BACKFILL":               "0",
		"DISCORD_ALLOWED_USERS":          "100000000000000001",
	})
	o := settingsOf(c)
	if o.Token != testToken || o.BaseURL != "http://127.0.0.1:9000" || o.HomeChannel.Chat != "300000000000000001" ||
		o.RequireMention || o.AutoThread || o.Backfill != 0 ||
		!slices.Equal(o.FreeResponseChannels, []string{"300000000000000002", "300000000000000003"}) || !o.Enabled() {
		t.Errorf("Discord = %+v", o)
	}
	if a := c.PlatformAccess["discord"]; !slices.Equal(a.Users, []string{"100000000000000001"}) {
		t.Errorf("discord allowlist %+v", a)
	}
}

func TestDiscordFromConfigYAML(t *testing.T) {
	c := configtest.MustLoad(t, `
platforms:
  discord:
    token: "`+testToken+`"
    backfill: 30m
discord:
  require_mention: false
  free_response_channels: ["300000000000000002"]
  auto_thread: false
`, nil)
	o := settingsOf(c)
	if o.Token != testToken || o.Backfill != 30*time.Minute || o.RequireMention || o.AutoThread ||
		!slices.Equal(o.FreeResponseChannels, []string{"300000000000000002"}) {
		t.Errorf("Discord = %+v", o)
	}
}

func TestDiscordBadValuesNameTheirSource(t *testing.T) {
	_, err := configtest.Load(t, "discord:\n  free_response_channels: general\n", map[string]string{
		"DISCORD_BOT_TOKEN":    "not-a-real-token",
		"DISCORD_HOME_CHANNEL": "#general",
		"DISCORD_BASE_URL":     "discord.com",
	})
	if err == nil {
		t.Fatal("bad Discord settings accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"env DISCORD_BOT_TOKEN: expected a bot token from the developer portal",
		`env DISCORD_HOME_CHANNEL: expected a channel id`,
		`env DISCORD_BASE_URL: expected an http:// or https:// URL with a host, got "discord.com"`,
		`config.yaml: discord.free_response_channels: expected a channel id`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "not-a-real-token") {
		t.Errorf("the error shows the token:\n%s", msg)
	}
}

func TestDiscordVariablesAreRegistered(t *testing.T) {
	for _, name := range []string{"DISCORD_BOT_TOKEN", "DISCORD_ALLOWED_USERS", "DISCORD_ALLOW_ALL_USERS", "DISCORD_HOME_CHANNEL",
		"DISCORD_REQUIRE_MENTION", "DISCORD_FREE_RESPONSE_CHANNELS", "DISCORD_AUTO_THREAD", "DISCORD_BASE_URL"} {
		v, ok := config.Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if v.Category != config.Messaging || v.Secret != (name == "DISCORD_BOT_TOKEN") {
			t.Errorf("%s: category %s, secret %v", name, v.Category, v.Secret)
		}
	}
}

// settingsOf is Discord's settings in a loaded configuration.
func settingsOf(cfg *config.Config) *Options { return cfg.Platforms[Name].(*Options) }
