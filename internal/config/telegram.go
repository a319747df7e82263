package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Telegram holds the Telegram settings (platforms.telegram.*). Telegram is
// enabled when Token is set. Who may talk to the bot is in
// PlatformAccess["telegram"] (TELEGRAM_ALLOWED_USERS, TELEGRAM_ALLOW_ALL_USERS).
type Telegram struct {
	// Token is the bot token from @BotFather; empty leaves Telegram off.
	Token string
	// BaseURL is the Bot API server, without a trailing slash; requests go
	// to {BaseURL}/bot{Token}/{method}.
	BaseURL string
	// HomeChannel is the chat for messages nobody asked for: a numeric
	// chat id or @channelname; empty means none.
	HomeChannel string
	// MaxMediaBytes caps a photo passed to the agent; 0 turns photos off.
	MaxMediaBytes int64
}

// Enabled tells whether Telegram is configured.
func (t Telegram) Enabled() bool { return t.Token != "" }

// telegramTokenRE is the shape of a bot token: the bot's id, a colon, and
// a secret of letters, digits, "-" and "_".
var telegramTokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$`)

// telegramChatRE is a chat id or a public @username.
var telegramChatRE = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)

func init() {
	registry = append(registry,
		Var{Name: "TELEGRAM_BOT_TOKEN", Description: "Telegram bot token from @BotFather; setting it turns Telegram on", Prompt: "Telegram bot token", URL: "https://t.me/BotFather", Secret: true, Category: Messaging},
		Var{Name: "TELEGRAM_BASE_URL", Description: "Telegram Bot API server, for a self-hosted one (default https://api.telegram.org)", Prompt: "Bot API server URL", Category: Messaging, Advanced: true},
		Var{Name: "TELEGRAM_HOME_CHANNEL", Description: "Telegram chat for messages nobody asked for: a chat id or @channelname", Prompt: "Telegram home chat", Category: Messaging},
		Var{Name: "TELEGRAM_MAX_MEDIA_BYTES", Description: "Largest photo, in bytes, passed from Telegram to the agent; 0 turns photos off (default 5242880)", Prompt: "Largest Telegram photo (bytes)", Category: Messaging, Advanced: true},
	)
	settings = append(settings,
		setting{key: "platforms.telegram.token", env: "TELEGRAM_BOT_TOKEN", secret: true, set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" && !telegramTokenRE.MatchString(v) {
				// Never echo the value: it is a secret, even when mistyped.
				return fmt.Errorf("expected a bot token from @BotFather, shaped like 123456789:AAE…, got %d characters that are not one", len(v))
			}
			c.Telegram.Token = v
			return nil
		}},
		setting{key: "platforms.telegram.base_url", env: "TELEGRAM_BASE_URL", def: "https://api.telegram.org", set: func(c *Config, v string) error {
			if err := setURL(&c.Telegram.BaseURL, v); err != nil {
				return err
			}
			if c.Telegram.BaseURL == "" {
				c.Telegram.BaseURL = "https://api.telegram.org"
			}
			return nil
		}},
		setting{key: "platforms.telegram.home_channel", env: "TELEGRAM_HOME_CHANNEL", set: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if v != "" && !telegramChatRE.MatchString(v) {
				return fmt.Errorf("expected a chat id such as -1001234567890 or a @channelname, got %q", v)
			}
			c.Telegram.HomeChannel = v
			return nil
		}},
		setting{key: "platforms.telegram.max_media_bytes", env: "TELEGRAM_MAX_MEDIA_BYTES", def: "5242880", set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("expected a number of bytes (0 or more), got %q", v)
			}
			c.Telegram.MaxMediaBytes = n
			return nil
		}},
	)
}
