package config

import (
	"strings"
	"testing"
)

const testBotToken = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

func TestTelegramOffByDefault(t *testing.T) {
	c := mustLoad(t, "", nil)
	if c.Telegram.Enabled() || c.Telegram.Token != "" {
		t.Errorf("Telegram enabled without a token: %+v", c.Telegram)
	}
	if c.Telegram.BaseURL != "https://api.telegram.org" || c.Telegram.MaxMediaBytes != 5242880 || c.Telegram.HomeChannel != "" {
		t.Errorf("defaults %+v", c.Telegram)
	}
}

func TestTelegramFromEnv(t *testing.T) {
	c := mustLoad(t, "", map[string]string{
		"TELEGRAM_BOT_TOKEN":       "  " + testBotToken + " ",
		"TELEGRAM_BASE_URL":        "http://127.0.0.1:8081/",
		"TELEGRAM_HOME_CHANNEL":    "-1001234567890",
		"TELEGRAM_MAX_MEDIA_BYTES": "1000",
		"TELEGRAM_ALLOWED_USERS":   "111, 222",
	})
	want := Telegram{Token: testBotToken, BaseURL: "http://127.0.0.1:8081", HomeChannel: "-1001234567890", MaxMediaBytes: 1000}
	if c.Telegram != want || !c.Telegram.Enabled() {
		t.Errorf("Telegram = %+v, want %+v", c.Telegram, want)
	}
	if a := c.PlatformAccess["telegram"]; strings.Join(a.Users, ",") != "111,222" {
		t.Errorf("telegram allowlist %+v", a)
	}
}

func TestTelegramFromConfigYAML(t *testing.T) {
	c := mustLoad(t, `
platforms:
  telegram:
    token: "`+testBotToken+`"
    home_channel: "@my_channel"
    max_media_bytes: 0
    allow_all_users: true
`, nil)
	if c.Telegram.Token != testBotToken || c.Telegram.HomeChannel != "@my_channel" || c.Telegram.MaxMediaBytes != 0 {
		t.Errorf("Telegram = %+v", c.Telegram)
	}
	if !c.PlatformAccess["telegram"].AllowAll {
		t.Error("platforms.telegram.allow_all_users not read")
	}
}

func TestTelegramBadValuesNameTheirSource(t *testing.T) {
	secret := "12345:not-a-real-token"
	_, err := load(t, "platforms:\n  telegram:\n    home_channel: general\n", map[string]string{
		"TELEGRAM_BOT_TOKEN":       secret,
		"TELEGRAM_BASE_URL":        "api.telegram.org",
		"TELEGRAM_MAX_MEDIA_BYTES": "lots",
	})
	if err == nil {
		t.Fatal("bad Telegram settings accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"env TELEGRAM_BOT_TOKEN: expected a bot token from @BotFather",
		`env TELEGRAM_BASE_URL: expected an http:// or https:// URL with a host, got "api.telegram.org"`,
		`config.yaml: platforms.telegram.home_channel: expected a chat id such as -1001234567890 or a @channelname, got "general"`,
		`env TELEGRAM_MAX_MEDIA_BYTES: expected a number of bytes (0 or more), got "lots"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "not-a-real-token") {
		t.Errorf("the error shows the token:\n%s", msg)
	}
}

func TestTelegramVariablesAreRegistered(t *testing.T) {
	for _, name := range []string{"TELEGRAM_BOT_TOKEN", "TELEGRAM_BASE_URL", "TELEGRAM_HOME_CHANNEL", "TELEGRAM_MAX_MEDIA_BYTES", "TELEGRAM_ALLOWED_USERS", "TELEGRAM_ALLOW_ALL_USERS"} {
		v, ok := Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if v.Category != Messaging || v.Secret != (name == "TELEGRAM_BOT_TOKEN") {
			t.Errorf("%s: category %s, secret %v", name, v.Category, v.Secret)
		}
	}
	c := mustLoad(t, "", map[string]string{"TELEGRAM_BOT_TOKEN": testBotToken})
	for _, e := range c.Effective() {
		if e.Env == "TELEGRAM_BOT_TOKEN" && (!e.Secret || e.Key != "platforms.telegram.token") {
			t.Errorf("effective token setting %+v, want it secret under platforms.telegram.token", e)
		}
	}
}
