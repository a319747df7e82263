package slack

import "github.com/herald-chat/herald/internal/config"

// Hermes's Slack settings that its gateway code and reference of
// environment variables pin down (as read in December 2026), marked for
// the README's compatibility table; a test in internal/app holds them to
// the registry.
func init() {
	config.RegisterHermes([]config.Compat{
		{Name: "SLACK_BOT_TOKEN", Mark: config.Same},
		{Name: "SLACK_APP_TOKEN", Mark: config.Same},
		{Name: "SLACK_ALLOWED_USERS", Mark: config.Same},
		{Name: "SLACK_HOME_CHANNEL", Mark: config.Same},
		{Name: "SLACK_HOME_CHANNEL_THREAD_ID", Mark: config.Same},
		{Name: "SLACK_HOME_CHANNEL_NAME", Mark: config.Same},
	}...)
}
