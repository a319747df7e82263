package telegram

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-chat/herald/internal/chat"
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
	// HomeChannel is the chat for messages nobody asked for: a numeric chat id or
	// @channelname, and a forum topic's id.
	HomeChannel platform.Home
	// MaxMediaBytes caps a photo passed to the agent; 0 turns photos off.
	MaxMediaBytes int64
	// Budget is a chat's flood limit; zero means ChatBudget.
	Budget platform.Bucket

	// RequireMention makes a group's messages wait for a mention of the
	// bot (or a reply to it, a command, a MentionPatterns match), except
	// in FreeResponseChats. Off, as in Hermes, the bot takes every group
	// message Telegram gives it (with privacy mode on, as BotFather sets
	// it, Telegram gives it only commands, mentions and replies).
	RequireMention    bool
	FreeResponseChats []string
	// AllowedChats, when set, are the only groups the bot answers in
	// (private chats are not filtered); it authorizes nobody.
	AllowedChats []string
	// MentionPatterns are regular expressions (case is ignored) whose
	// match counts as a mention.
	MentionPatterns []*regexp.Regexp
	// IgnoredThreads are forum topics (message_thread_id) whose messages
	// are passed over.
	IgnoredThreads []string
	// Proxy carries the Bot API's requests: an http, https or socks5 URL.
	Proxy string
	// Reactions marks the asking message with 👀, then 👍 or 👎.
	Reactions bool
	// ReplyToMode says which messages of an answer reply to the message
	// answered: one of platform's reply modes ("" is first).
	ReplyToMode string
	// MoreAccounts are further bots' tokens by account name, each run as
	// an adapter of its own (see platform.Accounts); Account is the name
	// of the one these options run ("" for the main bot).
	MoreAccounts map[string]string
	Account      string
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
		{Key: "platforms.telegram.accounts", Env: "TELEGRAM_ACCOUNTS", Secret: true, Category: config.Messaging, Advanced: true,
			Description: "Further bots, each its own account beside TELEGRAM_BOT_TOKEN's: name=token pairs, comma-separated; each answers as telegram-<name>, with Telegram's other settings, and replicas spread the accounts",
			Prompt:      "More Telegram bots (name=token,…)",
			Set:         accounts(&o.MoreAccounts)},
		{Key: "platforms.telegram.base_url", Env: "TELEGRAM_BASE_URL", Default: DefaultBaseURL, Set: config.URL(&o.BaseURL), Category: config.Messaging, Advanced: true,
			AltKeys:     []string{"platforms.telegram.extra.base_url", "telegram.base_url"},
			Description: "Telegram Bot API server, for a self-hosted one; requests go to {base}/bot{token}/{method}",
			Prompt:      "Bot API server URL"},
		{Key: "platforms.telegram.home_channel", AltKeys: []string{platform.HomeChatKey(Name)}, Env: "TELEGRAM_HOME_CHANNEL", Category: config.Messaging,
			Description: "Telegram chat for messages nobody asked for: a chat id or @channelname",
			Prompt:      "Telegram home chat",
			Set: config.Checked(&o.HomeChannel.Chat, func(v string) error {
				if !chatRE.MatchString(v) {
					return fmt.Errorf("expected a chat id such as -1001234567890 or a @channelname, got %q", v)
				}
				return nil
			})},
		{Key: "platforms.telegram.require_mention", Env: "TELEGRAM_REQUIRE_MENTION", Default: "false", Set: config.Bool(&o.RequireMention), Category: config.Messaging,
			AltKeys:     []string{"platforms.telegram.extra.require_mention", "telegram.require_mention", "require_mention"},
			Description: "true: in groups, answer only messages that mention the bot, reply to it, are commands or match TELEGRAM_MENTION_PATTERNS; false (as in Hermes): every group message the bot receives",
			Prompt:      "Require a mention in Telegram groups"},
		{Key: "platforms.telegram.free_response_chats", Env: "TELEGRAM_FREE_RESPONSE_CHATS", Set: config.List(&o.FreeResponseChats, checkChatID), Category: config.Messaging,
			AltKeys:     []string{"platforms.telegram.extra.free_response_chats", "telegram.free_response_chats"},
			Description: "Group chat ids, comma-separated, where every message is answered even when TELEGRAM_REQUIRE_MENTION is true",
			Prompt:      "Telegram chats without a mention"},
		{Key: "platforms.telegram.allowed_chats", Env: "TELEGRAM_ALLOWED_CHATS", Set: config.List(&o.AllowedChats, checkChatID), Category: config.Messaging,
			AltKeys:     []string{"platforms.telegram.extra.allowed_chats", "telegram.allowed_chats"},
			Description: "Group chat ids, comma-separated: the only groups the bot answers in (private chats are not filtered; who may talk is still the allowlists')",
			Prompt:      "Telegram groups answered"},
		{Key: "platforms.telegram.mention_patterns", Env: "TELEGRAM_MENTION_PATTERNS", Category: config.Messaging, Advanced: true,
			AltKeys:     []string{"platforms.telegram.extra.mention_patterns", "telegram.mention_patterns"},
			Description: "Regular expressions, comma-separated, whose match in a group message counts as a mention of the bot (case is ignored)",
			Prompt:      "Telegram mention patterns",
			Set:         mentionPatterns(&o.MentionPatterns)},
		{Key: "platforms.telegram.ignored_threads", Env: "TELEGRAM_IGNORED_THREADS", Category: config.Messaging, Advanced: true,
			AltKeys:     []string{"platforms.telegram.extra.ignored_threads", "telegram.ignored_threads"},
			Description: "Forum topic ids (message_thread_id), comma-separated, whose messages the bot passes over",
			Prompt:      "Ignored Telegram topics",
			Set:         config.List(&o.IgnoredThreads, checkTopic)},
		{Key: "platforms.telegram.proxy", Env: "TELEGRAM_PROXY", Category: config.Messaging, Advanced: true,
			AltKeys:     []string{"platforms.telegram.extra.proxy", "telegram.proxy"},
			Description: "Proxy for the Bot API's requests: an http://, https:// or socks5:// URL",
			Prompt:      "Telegram proxy",
			Set:         config.ProxyURL(&o.Proxy)},
		platform.ReplyModeSetting(Name, "TELEGRAM_REPLY_TO_MODE", &o.ReplyToMode),
		{Key: "platforms.telegram.reactions", Env: "TELEGRAM_REACTIONS", Default: "false", Set: config.Bool(&o.Reactions), Category: config.Messaging,
			AltKeys:     []string{"platforms.telegram.extra.reactions", "telegram.reactions"},
			Description: "React to the message being answered with 👀, then 👍 or 👎 when the answer is done or failed",
			Prompt:      "Telegram reactions"},
		// 5 MiB: photos as Telegram compresses them are far smaller.
		{Key: "platforms.telegram.max_media_bytes", Env: "TELEGRAM_MAX_MEDIA_BYTES", Default: "5242880", Set: config.Bytes(&o.MaxMediaBytes, 0), Category: config.Messaging, Advanced: true,
			Description: "Largest photo, in bytes, passed from Telegram to the agent; 0 turns photos off",
			Prompt:      "Largest Telegram photo (bytes)"},
	}, slices.Concat(platform.HomeSettings(Name, "TELEGRAM_HOME_CHANNEL", &o.HomeChannel, "Home", checkTopic),
		platform.BudgetSettings(Name, &o.Budget, ChatBudget))...)
}

// accountRE is an account's name: short, lowercase, and safe in a
// delivery target and a directory name.
var accountRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// accounts stores name=token pairs, comma-separated; what it shows names
// the accounts, never their tokens.
func accounts(dst *map[string]string) func(string) (string, error) {
	return func(v string) (string, error) {
		var pairs []string
		if _, err := config.List(&pairs, nil)(v); err != nil {
			return "", err
		}
		var got map[string]string
		var names []string
		for _, pair := range pairs {
			name, token, ok := strings.Cut(pair, "=")
			name, token = strings.TrimSpace(name), strings.TrimSpace(token)
			switch {
			case !ok || !accountRE.MatchString(name):
				return "", errors.New("expected name=token pairs, each name of lowercase letters, digits and _ (at most 32)")
			case got[name] != "":
				return "", fmt.Errorf("the account %q is named twice", name)
			case !tokenRE.MatchString(token):
				return "", fmt.Errorf("account %q: expected a bot token from @BotFather, shaped like 123456789:AAE…", name)
			case slices.Contains(slices.Collect(maps.Values(got)), token):
				return "", fmt.Errorf("account %q: its token is another account's", name)
			}
			if got == nil {
				got = map[string]string{}
			}
			got[name] = token
			names = append(names, name)
		}
		*dst = got
		return strings.Join(names, ","), nil
	}
}

// Accounts implements platform.Accounts: each further bot with Telegram's
// other settings, its home channel aside (the delivery API goes through
// the main bot).
func (o *Options) Accounts() map[string]platform.Settings {
	more := map[string]platform.Settings{}
	for name, token := range o.MoreAccounts {
		account := *o
		account.Token, account.Account, account.MoreAccounts = token, name, nil
		account.HomeChannel = platform.Home{}
		more[platform.AccountName(Name, name)] = &account
	}
	return more
}

// checkTopic accepts a forum topic's id (message_thread_id).
func checkTopic(v string) error {
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		return fmt.Errorf("expected topic ids (whole numbers), got %q", v)
	}
	return nil
}

// Home is the home chat; a user's id (a positive number) is a private
// chat with them.
func (o *Options) Home() (chat.Target, bool) {
	id, err := strconv.ParseInt(o.HomeChannel.Chat, 10, 64)
	return o.HomeChannel.Target(err == nil && id > 0)
}

// checkChatID accepts a chat id.
func checkChatID(v string) error {
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		return fmt.Errorf("expected chat ids such as -1001234567890, got %q", v)
	}
	return nil
}

// mentionPatterns compiles comma-separated regular expressions, case
// ignored.
func mentionPatterns(dst *[]*regexp.Regexp) func(string) (string, error) {
	return func(v string) (string, error) {
		var sources []string
		shown, err := config.List(&sources, nil)(v)
		if err != nil {
			return "", err
		}
		*dst = nil
		for _, s := range sources {
			re, err := regexp.Compile("(?i)" + s)
			if err != nil {
				return "", fmt.Errorf("%q is not a regular expression: %w", s, err)
			}
			*dst = append(*dst, re)
		}
		return shown, nil
	}
}

// Check refuses a further account with the main bot's token: two
// adapters would poll one bot.
func (o *Options) Check(*config.Config) error {
	for name, token := range o.MoreAccounts {
		if token == o.Token {
			return fmt.Errorf("TELEGRAM_ACCOUNTS: the account %q has TELEGRAM_BOT_TOKEN's token", name)
		}
	}
	return nil
}

// Enabled tells whether a bot token is set.
func (o *Options) Enabled() bool { return o.Token != "" }

// Adapter builds the Telegram adapter.
func (o *Options) Adapter(d platform.Deps) (platform.Adapter, error) { return New(*o, d) }
