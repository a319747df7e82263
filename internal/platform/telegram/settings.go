package telegram

import (
	"fmt"
	"regexp"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

func init() { platform.Register(Name, func() platform.Settings { return new(Options) }) }

// Options are Telegram's settings (TELEGRAM_*, platforms.telegram.*).
// Telegram is on when Token is set. Who may talk to the bot is in
// TELEGRAM_ALLOWED_USERS and TELEGRAM_ALLOW_ALL_USERS, which every
// platform has.
type Options struct {
	// Token is the bot's token from @BotFather. Required.
	Token string
	// BaseURL is the Bot API server, without a trailing slash; requests go
	// to {BaseURL}/bot{Token}/{method}. Empty means DefaultBaseURL.
	BaseURL string
	// HomeChannel is the chat for messages nobody asked for: a numeric
	// chat id or @channelname; empty means none.
	HomeChannel string
	// MaxMediaBytes caps a photo passed to the agent; 0 turns photos off.
	MaxMediaBytes int64
	// Budget is a chat's flood limit; zero means ChatBudget.
	Budget platform.Bucket
}

// tokenRE is the shape of a bot token: the bot's id, a colon, and a secret
// of letters, digits, "-" and "_".
var tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$`)

// chatRE is a chat id or a public @username.
var chatRE = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)

// Settings binds Telegram's settings to o.
func (o *Options) Settings() []config.Setting {
	return append([]config.Setting{
		{Key: "platforms.telegram.token", Env: "TELEGRAM_BOT_TOKEN", Secret: true, Category: config.Messaging,
			Description: "Telegram bot token from @BotFather; setting it turns Telegram on",
			Prompt:      "Telegram bot token", URL: "https://t.me/BotFather",
			Set: config.Checked(&o.Token, func(v string) error {
				if !tokenRE.MatchString(v) {
					// Never echo the value: it is a secret, even when mistyped.
					return fmt.Errorf("expected a bot token from @BotFather, shaped like 123456789:AAE…, got %d characters that are not one", len(v))
				}
				return nil
			})},
		{Key: "platforms.telegram.base_url", Env: "TELEGRAM_BASE_URL", Default: DefaultBaseURL, Set: config.URL(&o.BaseURL), Category: config.Messaging, Advanced: true,
			Description: "Telegram Bot API server, for a self-hosted one; requests go to {base}/bot{token}/{method}",
			Prompt:      "Bot API server URL"},
		{Key: "platforms.telegram.home_channel", Env: "TELEGRAM_HOME_CHANNEL", Category: config.Messaging,
			Description: "Telegram chat for messages nobody asked for: a chat id or @channelname",
			Prompt:      "Telegram home chat",
			Set: config.Checked(&o.HomeChannel, func(v string) error {
				if !chatRE.MatchString(v) {
					return fmt.Errorf("expected a chat id such as -1001234567890 or a @channelname, got %q", v)
				}
				return nil
			})},
		// 5 MiB: photos as Telegram compresses them are far smaller.
		{Key: "platforms.telegram.max_media_bytes", Env: "TELEGRAM_MAX_MEDIA_BYTES", Default: "5242880", Set: config.Bytes(&o.MaxMediaBytes, 0), Category: config.Messaging, Advanced: true,
			Description: "Largest photo, in bytes, passed from Telegram to the agent; 0 turns photos off",
			Prompt:      "Largest Telegram photo (bytes)"},
	}, platform.BudgetSettings(Name, &o.Budget, ChatBudget)...)
}

// Check has nothing to check across Telegram's settings.
func (o *Options) Check(*config.Config) error { return nil }

// Enabled tells whether a bot token is set.
func (o *Options) Enabled() bool { return o.Token != "" }

// Adapter builds the Telegram adapter.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }
