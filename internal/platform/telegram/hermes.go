package telegram

import "github.com/herald-chat/herald/internal/config"

// Hermes's Telegram settings (its telegram adapter and reference of environment
// variables, as read in December 2026), marked for the README's
// compatibility table; a test in internal/app holds them to the registry.
func init() {
	config.RegisterHermes([]config.Compat{
		{Name: "TELEGRAM_BOT_TOKEN", Mark: config.Same},
		{Name: "TELEGRAM_ALLOWED_USERS", Mark: config.Same},
		{Name: "TELEGRAM_ALLOW_ALL_USERS", Mark: config.Same, Default: "false"},
		{Name: "TELEGRAM_HOME_CHANNEL", Mark: config.Same},
		{Name: "TELEGRAM_REQUIRE_MENTION", Mark: config.Same, Default: "false"},
		{Name: "TELEGRAM_FREE_RESPONSE_CHATS", Mark: config.Same},
		{Name: "TELEGRAM_MENTION_PATTERNS", Mark: config.Same},
		{Name: "TELEGRAM_IGNORED_THREADS", Mark: config.Same},
		{Name: "TELEGRAM_PROXY", Mark: config.Same},
		{Name: "platforms.telegram.extra.base_url", Mark: config.Same, Default: "https://api.telegram.org"},
		{Name: "TELEGRAM_ALLOWED_CHATS", Mark: config.Same},
		{Name: "TELEGRAM_GROUP_ALLOWED_USERS", Mark: config.Same},
		{Name: "TELEGRAM_GROUP_ALLOWED_CHATS", Mark: config.Same},
		{Name: "TELEGRAM_REPLY_TO_MODE", Mark: config.Same, Default: "first"},
		{Name: "TELEGRAM_REACTIONS", Mark: config.Same, Default: "false"},
		{Name: "TELEGRAM_HOME_CHANNEL_THREAD_ID", Mark: config.Same},
		{Name: "TELEGRAM_HOME_CHANNEL_NAME", Mark: config.Same, Default: "Home"},
	}...)
}
