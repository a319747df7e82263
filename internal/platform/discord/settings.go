package discord

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/platform"
)

func init() { platform.Register(Name, func() platform.Settings { return new(Options) }) }

// Options are Discord's settings, under Hermes's names where Hermes has
// them (DISCORD_*, discord.* in config.yaml). Discord is on when Token is
// set. Who may talk to the bot is in DISCORD_ALLOWED_USERS and
// DISCORD_ALLOW_ALL_USERS, which every platform has.
type Options struct {
	// Token is the bot's token from the developer portal. Required.
	Token string
	// BaseURL is Discord's site, without a trailing slash: REST calls go
	// to {BaseURL}/api/v10/…, and the gateway is the URL that
	// {BaseURL}/api/v10/gateway/bot names. Empty means DefaultBaseURL.
	BaseURL string
	// HomeChannel is the channel (and thread) for messages nobody asked for.
	HomeChannel platform.Home
	// RequireMention: in server channels, only messages that mention the
	// bot, reply to it, are in a thread it started, or are commands.
	RequireMention bool
	// FreeResponseChannels take every message without a mention.
	FreeResponseChannels []string
	// AllowedChannels, when set, are the only server channels (or their
	// threads) the bot reads; IgnoredChannels are never read. DMs are
	// exempt from both.
	AllowedChannels, IgnoredChannels []string
	// AutoThread answers a top-level channel message in a thread started
	// on it, except in NoThreadChannels.
	AutoThread       bool
	NoThreadChannels []string
	// Reactions marks asking messages with 👀, ✅ and ❌ (see TurnStatus).
	Reactions bool
	// ReplyToMode says which messages of an answer reply to the message
	// answered: one of platform's reply modes ("" is first).
	ReplyToMode string
	// Backfill is how far back, at start, the messages of recent
	// conversations are read again, so that those sent while Herald was
	// stopped are answered; 0 turns it off.
	Backfill time.Duration
	// MaxMediaBytes caps an image passed to the agent; 0 turns images off.
	MaxMediaBytes int64
	// Budget is a channel's message budget; zero means ChannelBudget.
	Budget platform.Bucket
}

// snowflakeRE is the shape of a Discord id: a snowflake, in decimal.
var snowflakeRE = regexp.MustCompile(`^[0-9]{15,21}$`)

// checkSnowflake says what is wrong with a channel id.
func checkSnowflake(v string) error {
	if !snowflakeRE.MatchString(v) {
		return fmt.Errorf("expected a channel id (a number of 17 to 20 digits: right-click the channel, Copy Channel ID), got %q", v)
	}
	return nil
}

// tokenRE is the shape of a bot token: three dot-separated parts of
// base64url, the first the bot's id.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}$`)

// Settings binds Discord's settings to o.
func (o *Options) Settings() []config.Setting {
	msg := config.Messaging
	return append([]config.Setting{
		{Key: "platforms.discord.token", Env: "DISCORD_BOT_TOKEN", Secret: true, Category: msg,
			Description: "Discord bot token (developer portal → your application → Bot); setting it turns Discord on",
			Prompt:      "Discord bot token", URL: "https://discord.com/developers/applications",
			Set: config.Checked(&o.Token, func(v string) error {
				v = strings.TrimPrefix(v, "Bot ")
				if !tokenRE.MatchString(v) {
					// Never echo the value: it is a secret, even when mistyped.
					return fmt.Errorf("expected a bot token from the developer portal, three parts joined by dots, got %d characters that are not one", len(v))
				}
				return nil
			})},
		{Key: "platforms.discord.base_url", Env: "DISCORD_BASE_URL", Default: DefaultBaseURL, Set: config.URL(&o.BaseURL), Category: msg, Advanced: true,
			Description: "Discord's site, for a proxy or a test server; REST calls go to {base}/api/v10/ and the gateway is the one {base}/api/v10/gateway/bot names",
			Prompt:      "Discord base URL"},
		{Key: "platforms.discord.home_channel", AltKeys: []string{platform.HomeChatKey(Name)}, Env: "DISCORD_HOME_CHANNEL", Set: config.Checked(&o.HomeChannel.Chat, checkSnowflake), Category: msg,
			Description: "Discord channel id for messages nobody asked for",
			Prompt:      "Discord home channel"},
		{Key: "discord.require_mention", Env: "DISCORD_REQUIRE_MENTION", Default: "true", Set: config.Bool(&o.RequireMention), Category: msg,
			Description: "In server channels, answer only messages that mention the bot, reply to it or are in a thread it started",
			Prompt:      "Require a mention in Discord channels"},
		{Key: "discord.free_response_channels", Env: "DISCORD_FREE_RESPONSE_CHANNELS", Set: config.List(&o.FreeResponseChannels, checkSnowflake), Category: msg,
			Description: "Discord channel ids where every message is answered without a mention, comma-separated",
			Prompt:      "Discord free-response channels"},
		{Key: "discord.allowed_channels", Env: "DISCORD_ALLOWED_CHANNELS", Set: config.List(&o.AllowedChannels, checkSnowflake), Category: msg, Advanced: true,
			Description: "When set, the only Discord server channels the bot reads (and their threads), comma-separated; DMs are not affected",
			Prompt:      "Discord allowed channels"},
		{Key: "discord.ignored_channels", Env: "DISCORD_IGNORED_CHANNELS", Set: config.List(&o.IgnoredChannels, checkSnowflake), Category: msg, Advanced: true,
			Description: "Discord channel ids the bot never answers in, even when mentioned, comma-separated",
			Prompt:      "Discord ignored channels"},
		{Key: "discord.auto_thread", Env: "DISCORD_AUTO_THREAD", Default: "true", Set: config.Bool(&o.AutoThread), Category: msg,
			Description: "Answer a mention in a server channel in a new thread started on the message",
			Prompt:      "Discord auto-thread"},
		{Key: "discord.no_thread_channels", Env: "DISCORD_NO_THREAD_CHANNELS", Set: config.List(&o.NoThreadChannels, checkSnowflake), Category: msg, Advanced: true,
			Description: "Discord channel ids where answers go in the channel even with auto-thread on, comma-separated",
			Prompt:      "Discord channels without auto-thread"},
		{Key: "discord.reactions", Env: "DISCORD_REACTIONS", Default: "true", Set: config.Bool(&o.Reactions), Category: msg,
			Description: "Mark the message being answered with 👀, then ✅ or ❌",
			Prompt:      "Discord reactions"},
		platform.ReplyModeSetting(Name, "DISCORD_REPLY_TO_MODE", &o.ReplyToMode),
		{Key: "platforms.discord.backfill", Env: "DISCORD_BACKFILL", Default: "10m", Set: config.Duration(&o.Backfill), Category: msg, Advanced: true,
			Description: "How far back, at start, messages sent to recent Discord conversations while Herald was stopped are read and answered; 0 turns it off",
			Prompt:      "Discord backfill window"},
		// 5 MiB, as for Telegram: the image travels to the agent inline.
		{Key: "platforms.discord.max_media_bytes", Env: "DISCORD_MAX_MEDIA_BYTES", Default: "5242880", Set: config.Bytes(&o.MaxMediaBytes, 0), Category: msg, Advanced: true,
			Description: "Largest image, in bytes, passed from Discord to the agent; 0 turns images off",
			Prompt:      "Largest Discord image (bytes)"},
	}, slices.Concat(platform.HomeSettings(Name, "DISCORD_HOME_CHANNEL", &o.HomeChannel, "Home", checkSnowflake),
		platform.BudgetSettings(Name, &o.Budget, ChannelBudget))...)
}

// Home is the home channel, in its thread if one is set.
func (o *Options) Home() (chat.Target, bool) { return o.HomeChannel.Target(false) }

// Check has nothing to check across Discord's settings.
func (o *Options) Check(*config.Config) error { return nil }

// Enabled tells whether a bot token is set.
func (o *Options) Enabled() bool { return o.Token != "" }

// Adapter builds the Discord adapter.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }
