package slack

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

func init() { platform.Register(Name, func() platform.Settings { return new(Options) }) }

// Options are Slack's settings, under Hermes's names where Hermes has them
// (SLACK_*). Slack is on when both tokens are set. Who may talk to the bot
// is in SLACK_ALLOWED_USERS and SLACK_ALLOW_ALL_USERS, which every platform
// has.
type Options struct {
	// BotToken (xoxb-…) makes the Web API calls; AppToken (xapp-…, with
	// connections:write) opens the Socket Mode connection.
	BotToken, AppToken string
	// APIURL is where Web API methods go, {APIURL}{method}; empty means
	// DefaultAPIURL. Socket Mode connects to the URL that
	// apps.connections.open returns.
	APIURL string
	// HomeChannel is the channel (and thread) for messages nobody asked for.
	HomeChannel platform.Home
	// MaxMediaBytes caps an image passed to the agent; 0 turns images off.
	MaxMediaBytes int64
	// Budget is a channel's message budget; zero means ChannelBudget.
	Budget platform.Bucket
	// FlatReplies answers a mention in a channel in the channel rather
	// than in a thread on it (Hermes's reply_in_thread: false); messages
	// in a thread are still answered there.
	FlatReplies bool
}

// checkToken says what is wrong with a token that should have the prefix
// want (the kind of token a variable takes), naming the variable the token
// belongs in when it is of another kind. It never echoes the token.
func checkToken(v, want string) error {
	kinds := map[string]string{
		"xoxb-": "a bot token (xoxb-…), which belongs in SLACK_BOT_TOKEN",
		"xapp-": "an app-level token (xapp-…), which belongs in SLACK_APP_TOKEN",
		"xoxp-": "a user token (xoxp-…); Herald acts as the app's bot, not as a user",
		"xoxe-": "a refresh or configuration token (xoxe-…), which Herald does not use",
	}
	if strings.HasPrefix(v, want) && len(v) > len(want)+8 {
		return nil
	}
	wanted := map[string]string{
		"xoxb-": "the Bot User OAuth Token (xoxb-…) from OAuth & Permissions",
		"xapp-": "an app-level token (xapp-…) with the connections:write scope, from Basic Information → App-Level Tokens",
	}[want]
	for prefix, kind := range kinds {
		if strings.HasPrefix(v, prefix) {
			return fmt.Errorf("this is %s; expected %s", kind, wanted)
		}
	}
	return fmt.Errorf("expected %s, got %d characters that are not one", wanted, len(v))
}

// checkChannel says what is wrong with a channel id.
func checkChannel(v string) error {
	if len(v) < 9 || !strings.ContainsRune("CGD", rune(v[0])) || strings.ToUpper(v) != v {
		return fmt.Errorf("expected a channel id such as C0123456789 (channel details → About, at the bottom), got %q", v)
	}
	return nil
}

// Settings binds Slack's settings to o.
func (o *Options) Settings() []config.Setting {
	msg := config.Messaging
	return append([]config.Setting{
		{Key: "platforms.slack.bot_token", Env: "SLACK_BOT_TOKEN", Secret: true, Category: msg,
			Description: "Slack Bot User OAuth Token (xoxb-…, api.slack.com/apps → your app → OAuth & Permissions); with SLACK_APP_TOKEN it turns Slack on",
			Prompt:      "Slack bot token", URL: "https://api.slack.com/apps",
			Set: config.Checked(&o.BotToken, func(v string) error { return checkToken(v, "xoxb-") })},
		{Key: "platforms.slack.app_token", Env: "SLACK_APP_TOKEN", Secret: true, Category: msg,
			Description: "Slack app-level token (xapp-…, with connections:write) for Socket Mode; with SLACK_BOT_TOKEN it turns Slack on",
			Prompt:      "Slack app token", URL: "https://api.slack.com/apps",
			Set: config.Checked(&o.AppToken, func(v string) error { return checkToken(v, "xapp-") })},
		{Key: "platforms.slack.api_url", Env: "SLACK_API_URL", Default: DefaultAPIURL, Set: config.URL(&o.APIURL), Category: msg, Advanced: true,
			Description: "Slack's Web API, for a proxy or a test server: methods go to {url}{method}, and Socket Mode connects where apps.connections.open says",
			Prompt:      "Slack API URL"},
		{Key: "platforms.slack.home_channel", AltKeys: []string{platform.HomeChatKey(Name)}, Env: "SLACK_HOME_CHANNEL", Set: config.Checked(&o.HomeChannel.Chat, checkChannel), Category: msg,
			Description: "Slack channel id for messages nobody asked for",
			Prompt:      "Slack home channel"},
		{Key: "platforms.slack.reply_in_thread", AltKeys: []string{"platforms.slack.extra.reply_in_thread", "slack.reply_in_thread"}, Default: "true",
			Description: "true (as in Hermes): a mention in a channel is answered in a thread on it, a session of its own; false: in the channel, in its author's session there",
			Set: func(v string) (string, error) {
				var inThread bool
				shown, err := config.Bool(&inThread)(v)
				o.FlatReplies = !inThread
				return shown, err
			}},
		// 5 MiB, as for Telegram and Discord: the image travels to the
		// agent inline.
		{Key: "platforms.slack.max_media_bytes", Env: "SLACK_MAX_MEDIA_BYTES", Default: "5242880", Set: config.Bytes(&o.MaxMediaBytes, 0), Category: msg, Advanced: true,
			Description: "Largest image, in bytes, passed from Slack to the agent; 0 turns images off",
			Prompt:      "Largest Slack image (bytes)"},
	}, slices.Concat(platform.HomeSettings(Name, "SLACK_HOME_CHANNEL", &o.HomeChannel, "", checkThreadTS),
		platform.BudgetSettings(Name, &o.Budget, ChannelBudget))...)
}

// threadTSRE is a message's timestamp, which names its thread.
var threadTSRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// checkThreadTS accepts a thread's timestamp, such as 1712345678.123456.
func checkThreadTS(v string) error {
	if !threadTSRE.MatchString(v) {
		return fmt.Errorf("expected a thread's timestamp such as 1712345678.123456, got %q", v)
	}
	return nil
}

// Home is the home channel, in its thread if one is set.
func (o *Options) Home() (chat.Target, bool) { return o.HomeChannel.Target(false) }

// Check wants both tokens or neither: one alone is a half-made setup.
func (o *Options) Check(*config.Config) error {
	switch {
	case o.BotToken != "" && o.AppToken == "":
		return errors.New("SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is not: Herald connects through Socket Mode, which needs an app-level token (xapp-…) with connections:write")
	case o.AppToken != "" && o.BotToken == "":
		return errors.New("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: answers are posted with the bot token (xoxb-…)")
	}
	return nil
}

// Enabled tells whether both tokens are set.
func (o *Options) Enabled() bool { return o.BotToken != "" && o.AppToken != "" }

// Adapter builds the Slack adapter.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }
