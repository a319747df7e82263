package discord

import "github.com/herald-chat/herald/internal/config"

// Hermes's Discord settings that its gateway code and reference of
// environment variables pin down (as read in December 2026), marked for
// the README's compatibility table; a test in internal/app holds them to
// the registry.
func init() {
	config.RegisterHermes([]config.Compat{
		{Name: "DISCORD_BOT_TOKEN", Mark: config.Same},
		{Name: "DISCORD_ALLOWED_USERS", Mark: config.Same},
		{Name: "DISCORD_HOME_CHANNEL", Mark: config.Same},
		{Name: "DISCORD_HOME_CHANNEL_THREAD_ID", Mark: config.Same},
		{Name: "DISCORD_HOME_CHANNEL_NAME", Mark: config.Same, Default: "Home"},
		{Name: "DISCORD_REPLY_TO_MODE", Mark: config.Same, Default: "first"},
		{Name: "DISCORD_AUTO_THREAD", Mark: config.Same, Default: "true"},
	}...)
}
