// Package telegram connects Herald to Telegram through the Bot API, with
// long polling.
//
// Updates are acknowledged to Telegram only once the gateway has journalled
// them: the adapter polls getUpdates itself (the client library's polling
// loop confirms updates before they are handled), hands each message to the
// gateway's handler, and only then advances and persists the update offset.
// A restart therefore neither loses nor replays a message; an update that
// Telegram delivers twice carries the same event id and the gateway drops it.
//
// Answers are rendered from markdown into Telegram's HTML style. In private
// chats the gateway previews answers with sendMessageDraft and sends the
// final text once; elsewhere it edits a message as the answer grows (see
// package stream). Rate limits (429 with retry_after) come back as
// *platform.RateLimitError, so that nothing more goes to the chat until the
// penalty is over; "message is not modified" is a success; a text Telegram
// cannot parse is sent again as plain text.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/texts"
)

// Name is the platform's name, in config keys and chat.Source.Platform.
const Name = "telegram"

// Telegram's limits and Herald's defaults for them.
const (
	// MaxLength is the longest message, in UTF-16 code units of the text
	// Telegram shows (after parsing the HTML): the Bot API's sendMessage
	// "text" limit (core.telegram.org/bots/api#sendmessage).
	MaxLength = 4096
	// DefaultBaseURL is the Bot API server.
	DefaultBaseURL = "https://api.telegram.org"
	// pollTimeout is how long one getUpdates call waits for updates.
	pollTimeout = 30 * time.Second
)

// Telegram's flood limits, from the Bot API FAQ ("My bot is hitting
// limits, how do I avoid this?", core.telegram.org/bots/faq): in one chat,
// no more than about one message a second, with short bursts tolerated;
// in a group, no more than 20 messages a minute; overall, about 30
// messages a second. Edits and drafts count as messages.
var (
	// ChatBudget is a chat's: one a second. The burst of 3 is the "short
	// burst" Telegram lets through, and lets a short answer's first and
	// final text go out at once.
	ChatBudget = platform.Bucket{Rate: 1, Burst: 3}
	// GroupBudget is a group's: 20 a minute.
	GroupBudget = platform.Bucket{Rate: 20.0 / 60, Burst: 20}
	// BotBudget is the whole bot's: 30 a second.
	BotBudget = platform.Bucket{Rate: 30, Burst: 30}
)

// Flavour names the markup the adapter sends: Telegram's HTML subset.
const Flavour format.Flavour = "telegram-html"

// menu is the gateway's commands as Telegram's menu lists them; they are
// registered with setMyCommands at start.
func menu() []models.BotCommand {
	cmds := make([]models.BotCommand, len(chat.Commands))
	for i, c := range chat.Commands {
		cmds[i] = models.BotCommand{Command: c.Word, Description: texts.MenuEntry(c)}
	}
	return cmds
}

// Adapter is the Telegram platform.
type Adapter struct {
	name      string // "telegram", or a further account's (see platform.AccountName)
	opts      Options
	state     platform.StateStore // nil keeps the offset in memory only
	log       *slog.Logger
	bot       *bot.Bot
	client    *http.Client // for getUpdates and file downloads
	transport *http.Transport
	botID     int64
	stateKey  string
	ready     chan struct{}
	// replies says which messages of an answer reply to the message it
	// answers (TELEGRAM_REPLY_TO_MODE).
	replies *platform.Replies
	outage  platform.Outage // of getUpdates

	mu       sync.Mutex
	started  bool
	username string // the bot's username, once known
}

var (
	_ platform.Adapter    = (*Adapter)(nil)
	_ platform.Drafter    = (*Adapter)(nil)
	_ platform.TurnMarker = (*Adapter)(nil)
	_ platform.Connection = (*Adapter)(nil)
)

// Outage implements platform.Connection: getUpdates has failed for a while.
func (a *Adapter) Outage() error { return a.outage.Err() }

// New returns an adapter; it makes no request before Run. d.State keeps
// the update offset across restarts (without it a restart relies on the
// gateway's dedupe).
func New(opts Options, d platform.Deps) (*Adapter, error) {
	opts.Token = strings.TrimSpace(opts.Token)
	if opts.Token == "" {
		return nil, errors.New("telegram: a bot token is required (TELEGRAM_BOT_TOKEN)")
	}
	idText, _, ok := strings.Cut(opts.Token, ":")
	botID, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || botID <= 0 {
		return nil, errors.New("telegram: the bot token is malformed: expected the form 123456789:AA… that @BotFather gives (TELEGRAM_BOT_TOKEN)")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Budget == (platform.Bucket{}) {
		opts.Budget = ChatBudget
	}
	name := Name
	if opts.Account != "" {
		name = platform.AccountName(Name, opts.Account)
	}
	a := &Adapter{
		name:     name,
		opts:     opts,
		state:    d.State,
		log:      d.Logger.With("platform", name),
		botID:    botID,
		stateKey: fmt.Sprintf("telegram.%d.update_offset", botID),
		ready:    make(chan struct{}),
		replies:  platform.NewReplies(opts.ReplyToMode),
	}
	a.client = d.HTTPClient
	if a.client == nil {
		if a.transport, err = platform.Transport(opts.Proxy); err != nil {
			return nil, fmt.Errorf("telegram: TELEGRAM_PROXY: %w", err)
		}
		a.client = &http.Client{Transport: a.transport}
	}
	// API calls other than getUpdates get a bound of their own.
	calls := &http.Client{Transport: a.client.Transport, Timeout: 30 * time.Second}
	a.bot, err = bot.New(opts.Token,
		bot.WithSkipGetMe(),
		bot.WithServerURL(opts.BaseURL),
		bot.WithHTTPClient(pollTimeout, calls),
		bot.WithErrorsHandler(func(err error) { a.log.Debug("bot API client", "error", a.redact(err)) }),
		bot.WithDebugHandler(func(string, ...any) {}),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", a.redact(err))
	}
	return a, nil
}

// Name returns "telegram", or a further account's name (see
// platform.AccountName).
func (a *Adapter) Name() string { return a.name }

// Caps declares Telegram's limits: 4096 UTF-16 units, edits, drafts in
// private chats only (sendMessageDraft refuses others), forum topics,
// typing, and the flood limits: the chat's budget (platforms.telegram.rate
// and .burst override it), a group's, and the bot's.
func (a *Adapter) Caps(t chat.Target) platform.Caps {
	text := platform.Messages | platform.Drafts
	budgets := []platform.Budget{{Classes: text, Bucket: a.opts.Budget}}
	if !t.DM {
		budgets = append(budgets, platform.Budget{Classes: text, Bucket: GroupBudget})
	}
	// Reactions count against the bot's overall budget only: the Bot API
	// FAQ's per-chat limit speaks of messages.
	budgets = append(budgets, platform.Budget{Classes: text | platform.Typing | platform.Markers, Account: true, Bucket: BotBudget})
	caps := platform.Caps{
		MaxLength: MaxLength,
		Count:     format.UTF16,
		Edit:      true,
		Draft:     t.DM,
		Threads:   true,
		Typing:    true,
		Cursor:    true,
		Format:    Flavour,
		Budgets:   budgets,
	}
	if a.opts.Reactions {
		caps.MarkerCalls = 1 // setMessageReaction replaces the reaction before
	}
	return caps
}

// reactionEmoji are the reactions of TELEGRAM_REACTIONS, as Hermes sets
// them.
var reactionEmoji = map[platform.TurnState]string{platform.TurnWorking: "👀", platform.TurnDone: "👍", platform.TurnFailed: "👎"}

// TurnStatus marks the asking message (t.ReplyTo) with a turn's state when
// TELEGRAM_REACTIONS is on: 👀 while the answer is written, then 👍 or
// 👎, each replacing the one before (platform.TurnMarker).
func (a *Adapter) TurnStatus(ctx context.Context, t chat.Target, state platform.TurnState) (int, error) {
	emoji, known := reactionEmoji[state]
	msgID, err := strconv.Atoi(t.ReplyTo)
	if !a.opts.Reactions || err != nil {
		return 0, nil
	}
	if !known {
		return 0, fmt.Errorf("telegram: unknown turn status %q", state)
	}
	chat, err := chatID(t)
	if err != nil {
		return 0, err
	}
	_, err = a.bot.SetMessageReaction(ctx, &bot.SetMessageReactionParams{
		ChatID:    chat,
		MessageID: msgID,
		Reaction:  []models.ReactionType{{Type: models.ReactionTypeTypeEmoji, ReactionTypeEmoji: &models.ReactionTypeEmoji{Emoji: emoji}}},
	})
	if err != nil {
		return 1, a.apiError(err)
	}
	return 1, nil
}

// Ready is closed once the bot is known to Telegram and polling.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// Username is the bot's username, known once Run has started.
func (a *Adapter) Username() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.username
}

// Run identifies the bot, registers the gateway's commands, and polls for
// updates until ctx ends, handing each message to h. An update is
// acknowledged (the offset moves past it and is saved) only after h
// returned nil for it; when h fails, the same update is tried again after
// a pause. Run fails only when Telegram refuses the token.
func (a *Adapter) Run(ctx context.Context, h platform.Handler) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("telegram: Run called twice")
	}
	a.started = true
	a.mu.Unlock()
	if a.transport != nil {
		defer a.transport.CloseIdleConnections()
	}

	me, err := a.identify(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	a.mu.Lock()
	a.username = me.Username
	a.mu.Unlock()
	if _, err := a.bot.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: menu()}); err != nil && ctx.Err() == nil {
		a.log.Warn("registering the bot's commands failed", "error", a.redact(err))
	}
	offset, err := a.loadOffset(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	close(a.ready)
	a.log.Info("telegram connected", "bot", "@"+me.Username, "offset", offset)
	a.poll(ctx, h, offset)
	a.log.Info("telegram stopped")
	return nil
}

// identify asks Telegram who the bot is, retrying until it answers; a
// refused token ends it with an error.
func (a *Adapter) identify(ctx context.Context) (*models.User, error) {
	var delay platform.Backoff
	for {
		me, err := a.bot.GetMe(ctx)
		if err == nil {
			return me, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if errors.Is(err, bot.ErrorUnauthorized) || errors.Is(err, bot.ErrorNotFound) {
			return nil, fmt.Errorf("telegram: the bot token was refused (TELEGRAM_BOT_TOKEN): %w", a.redact(err))
		}
		wait := delay.Next()
		a.log.Warn("reaching the Bot API failed; retrying", "error", a.redact(err), "in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil, nil
		}
	}
}

// loadOffset reads the persisted update offset, retrying while the store
// fails: polling without it could confirm updates not yet journalled.
func (a *Adapter) loadOffset(ctx context.Context) (int64, error) {
	if a.state == nil {
		return 0, nil
	}
	delay := platform.Backoff{Max: 30 * time.Second}
	for {
		v, ok, err := a.state.State(ctx, a.stateKey)
		if err == nil {
			if !ok {
				return 0, nil
			}
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				// Start from what Telegram still holds; the gateway drops
				// the messages it journalled already.
				a.log.Error("the saved update offset is not a number; starting from Telegram's", "offset", v)
				return 0, nil
			}
			return n, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		wait := delay.Next()
		a.log.Error("reading the update offset failed; retrying", "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return 0, ctx.Err()
		}
	}
}

// redact removes the token from an error's text: the Bot API's URLs hold
// it, and so do errors that quote them.
func (a *Adapter) redact(err error) error {
	return platform.Redacted(err, func(s string) string { return strings.ReplaceAll(s, a.opts.Token, "<token>") })
}

// chatSource describes where a message to the adapter named name came
// from.
func chatSource(name string, m *models.Message) chat.Source {
	src := chat.Source{
		Platform:  name,
		ChatID:    strconv.FormatInt(m.Chat.ID, 10),
		MessageID: strconv.Itoa(m.ID),
	}
	switch m.Chat.Type {
	case models.ChatTypePrivate:
		src.ChatType = chat.DM
		src.ChatName = strings.TrimSpace(m.Chat.FirstName + " " + m.Chat.LastName)
	case models.ChatTypeChannel:
		src.ChatType = chat.Channel
		src.ChatName = m.Chat.Title
	default:
		src.ChatType = chat.Group
		src.ChatName = m.Chat.Title
	}
	if m.IsTopicMessage && m.MessageThreadID != 0 {
		src.ChatType = chat.Thread
		src.ThreadID = strconv.Itoa(m.MessageThreadID)
	}
	switch {
	case m.From != nil:
		src.UserID = strconv.FormatInt(m.From.ID, 10)
		src.UserName = m.From.Username
		if src.UserName == "" {
			src.UserName = strings.TrimSpace(m.From.FirstName + " " + m.From.LastName)
		}
	case m.SenderChat != nil:
		src.UserID = strconv.FormatInt(m.SenderChat.ID, 10)
		src.UserName = m.SenderChat.Title
	}
	return src
}
