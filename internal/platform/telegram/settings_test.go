package telegram

import (
	"reflect"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/platform"
)

const testBotToken = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

func TestTelegramOffByDefault(t *testing.T) {
	o := settingsOf(configtest.MustLoad(t, "", nil))
	if o.Enabled() || o.Token != "" {
		t.Errorf("Telegram enabled without a token: %+v", o)
	}
	if o.BaseURL != "https://api.telegram.org" || o.MaxMediaBytes != 5242880 || o.HomeChannel.Chat != "" {
		t.Errorf("defaults %+v", o)
	}
}

func TestTelegramFromEnv(t *testing.T) {
	c := configtest.MustLoad(t, "", map[string]string{
		"TELEGRAM_BOT_TOKEN":       "  " + testBotToken + " ",
		"TELEGRAM_BASE_URL":        "http://127.0.0.1:8081/",
		"TELEGRAM_HOME_CHANNEL":    "-1001234567890",
		"TELEGRAM_MAX_MEDIA_BYTES": "1000",
		"TELEGRAM_ALLOWED_USERS":   "111, 222",
	})
	want := Options{Token: testBotToken, BaseURL: "http://127.0.0.1:8081", HomeChannel: platform.Home{Chat: "-1001234567890", Name: "Home"}, MaxMediaBytes: 1000, Budget: ChatBudget, ReplyToMode: platform.ReplyFirst}
	if o := settingsOf(c); !reflect.DeepEqual(*o, want) || !o.Enabled() {
		t.Errorf("Telegram = %+v, want %+v", o, want)
	}
	if a := c.PlatformAccess["telegram"]; strings.Join(a.Users, ",") != "111,222" {
		t.Errorf("telegram allowlist %+v", a)
	}
}

func TestTelegramFromConfigYAML(t *testing.T) {
	c := configtest.MustLoad(t, `
platforms:
  telegram:
    token: "`+testBotToken+`"
    home_channel: "@my_channel"
    max_media_bytes: 0
    allow_all_users: true
`, nil)
	if o := settingsOf(c); o.Token != testBotToken || o.HomeChannel.Chat != "@my_channel" || o.MaxMediaBytes != 0 {
		t.Errorf("Telegram = %+v", o)
	}
	if !c.PlatformAccess["telegram"].AllowAll {
		t.Error("platforms.telegram.allow_all_users not read")
	}
}

// Hermes's Telegram settings, under its names: the variables, and the keys
// of its config.yaml (platforms.telegram.extra.*, a telegram: section).
func TestTelegramHermesSettings(t *testing.T) {
	c := configtest.MustLoad(t, `
telegram:
  require_mention: true
  free_response_chats: [-100123, "-100456"]
platforms:
  telegram:
    extra:
      base_url: http://bots.example:8081
      mention_patterns: ["^hey bot", "herald"]
`, map[string]string{
		"TELEGRAM_BOT_TOKEN":       testBotToken,
		"TELEGRAM_IGNORED_THREADS": "7, 9",
		"TELEGRAM_PROXY":           "socks5://127.0.0.1:1080",
	})
	o := settingsOf(c)
	var patterns []string
	for _, re := range o.MentionPatterns {
		patterns = append(patterns, re.String())
	}
	if !o.RequireMention || strings.Join(o.FreeResponseChats, ",") != "-100123,-100456" || o.BaseURL != "http://bots.example:8081" ||
		strings.Join(patterns, ",") != "(?i)^hey bot,(?i)herald" || strings.Join(o.IgnoredThreads, ",") != "7,9" || o.Proxy != "socks5://127.0.0.1:1080" {
		t.Errorf("Telegram = %+v, patterns %q", o, patterns)
	}
	if o := settingsOf(configtest.MustLoad(t, "", map[string]string{"TELEGRAM_BOT_TOKEN": testBotToken})); o.RequireMention {
		t.Error("TELEGRAM_REQUIRE_MENTION defaults to true, want false as in Hermes")
	}
	for env, want := range map[string]string{
		"TELEGRAM_MENTION_PATTERNS":    `env TELEGRAM_MENTION_PATTERNS: "(unclosed" is not a regular expression`,
		"TELEGRAM_PROXY":               `env TELEGRAM_PROXY: expected an http://, https:// or socks5:// proxy URL, got "ftp://user:xxxxx@h:1"`,
		"TELEGRAM_FREE_RESPONSE_CHATS": `env TELEGRAM_FREE_RESPONSE_CHATS: expected chat ids such as -1001234567890, got "team"`,
	} {
		value := map[string]string{"TELEGRAM_MENTION_PATTERNS": "(unclosed", "TELEGRAM_PROXY": "ftp://user:pw@h:1", "TELEGRAM_FREE_RESPONSE_CHATS": "team"}[env]
		if _, err := configtest.Load(t, "", map[string]string{"TELEGRAM_BOT_TOKEN": testBotToken, env: value}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: %v, want %q", env, value, err, want)
		}
	}
}

func TestTelegramBadValuesNameTheirSource(t *testing.T) {
	secret := "12345:not-a-real-token"
	_, err := configtest.Load(t, "platforms:\n  telegram:\n    home_channel: general\n", map[string]string{
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
		`env TELEGRAM_MAX_MEDIA_BYTES: expected a number of bytes of at least 0, got "lots"`,
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
		v, ok := config.Lookup(name)
		if !ok {
			t.Errorf("%s is not registered", name)
			continue
		}
		if v.Category != config.Messaging || v.Secret != (name == "TELEGRAM_BOT_TOKEN") {
			t.Errorf("%s: category %s, secret %v", name, v.Category, v.Secret)
		}
	}
	c := configtest.MustLoad(t, "", map[string]string{"TELEGRAM_BOT_TOKEN": testBotToken})
	for _, e := range c.Effective() {
		if e.Env == "TELEGRAM_BOT_TOKEN" && (!e.Secret || e.Key != "platforms.telegram.token") {
			t.Errorf("effective token setting %+v, want it secret under platforms.telegram.token", e)
		}
	}
}

// settingsOf is Telegram's settings in a loaded configuration.
func settingsOf(cfg *config.Config) *Options { return cfg.Platforms[Name].(*Options) }

// The home chat, as Hermes writes it: a chat id and its variables, or the
// mapping /sethome writes into config.yaml; a positive id is a private chat.
func TestTelegramHome(t *testing.T) {
	for _, c := range []struct {
		yaml string
		env  map[string]string
		want chat.Target
		name string
	}{
		{"", map[string]string{"TELEGRAM_HOME_CHANNEL": "-1001234567890", "TELEGRAM_HOME_CHANNEL_THREAD_ID": "17", "TELEGRAM_HOME_CHANNEL_NAME": "Ops"},
			chat.Target{ChatID: "-1001234567890", ThreadID: "17"}, "Ops"},
		{"platforms:\n  telegram:\n    home_channel: \"1001\"\n", nil, chat.Target{ChatID: "1001", DM: true}, "Home"},
		{"platforms:\n  telegram:\n    home_channel:\n      platform: telegram\n      chat_id: \"-1002222222222\"\n      name: Team\n      thread_id: \"5\"\n", nil,
			chat.Target{ChatID: "-1002222222222", ThreadID: "5"}, "Team"},
	} {
		cfg := configtest.MustLoad(t, c.yaml, c.env)
		o := settingsOf(cfg)
		if got, ok := o.Home(); !ok || got != c.want || o.HomeChannel.Name != c.name {
			t.Errorf("%q %v: home %+v %v named %q, want %+v named %q", c.yaml, c.env, got, ok, o.HomeChannel.Name, c.want, c.name)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%q: warnings %q", c.yaml, cfg.Warnings)
		}
	}
	if _, ok := settingsOf(configtest.MustLoad(t, "", nil)).Home(); ok {
		t.Error("a home chat without one set")
	}
	_, err := configtest.Load(t, "", map[string]string{"TELEGRAM_HOME_CHANNEL_THREAD_ID": "general"})
	if err == nil || !strings.Contains(err.Error(), "TELEGRAM_HOME_CHANNEL_THREAD_ID") {
		t.Errorf("a topic that is not a number: %v, want an error naming the variable", err)
	}
}

// Further bots: each an account of its own with Telegram's other settings
// and no home channel; names and tokens are checked, and an error never
// shows a token.
func TestTelegramAccounts(t *testing.T) {
	const support, sales = "222222222:AAHsupportBotTokenForHeraldTests0", "333333333:AAHsalesBotTokenForHeraldTests000"
	c := configtest.MustLoad(t, "", map[string]string{
		"TELEGRAM_BOT_TOKEN":     testBotToken,
		"TELEGRAM_HOME_CHANNEL":  "-1001234567890",
		"TELEGRAM_ACCOUNTS":      " support=" + support + ", sales=" + sales,
		"TELEGRAM_ALLOWED_USERS": "111",
	})
	accounts := settingsOf(c).Accounts()
	if len(accounts) != 2 {
		t.Fatalf("accounts: %v", accounts)
	}
	for name, token := range map[string]string{"telegram-support": support, "telegram-sales": sales} {
		o, ok := accounts[name].(*Options)
		if !ok || o.Token != token || o.BaseURL != DefaultBaseURL || o.HomeChannel.Chat != "" || len(o.MoreAccounts) != 0 || !o.Enabled() {
			t.Errorf("account %s: %+v", name, accounts[name])
		}
		a, err := New(*o, platform.Deps{})
		if err != nil || a.Name() != name {
			t.Errorf("account %s's adapter: %v, named %q", name, err, a.Name())
		}
	}
	for _, e := range c.Effective() {
		if e.Key == "platforms.telegram.accounts" && (e.Value != "support,sales" || !e.Secret) {
			t.Errorf("herald check shows %+v", e)
		}
	}

	for value, want := range map[string]string{
		"support":            `expected name=token pairs`,
		"Support=" + support: `expected name=token pairs`,
		"support=" + support + ",support=" + sales: `the account "support" is named twice`,
		"support=123:short":                        `account "support": expected a bot token`,
		"support=" + support + ",sales=" + support: `account "sales": its token is another account's`,
		"support=" + testBotToken:                  `the account "support" has TELEGRAM_BOT_TOKEN's token`,
	} {
		_, err := configtest.Load(t, "", map[string]string{"TELEGRAM_BOT_TOKEN": testBotToken, "TELEGRAM_ACCOUNTS": value})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TELEGRAM_ACCOUNTS=%q: %v, want %q", value, err, want)
		} else if strings.Contains(err.Error(), "AAH") {
			t.Errorf("the error shows a token: %v", err)
		}
	}
}
