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
)

// Name is the platform's name, in config keys and chat.Source.Platform.
const Name = "telegram"

// Telegram's limits and Herald's defaults for them.
const (
	// MaxLength is the longest message, in UTF-16 code units of the text
	// Telegram shows (after parsing the HTML).
	MaxLength = 4096
	// DefaultBaseURL is the Bot API server.
	DefaultBaseURL = "https://api.telegram.org"
	// DefaultMaxMediaBytes caps a photo passed to the agent.
	DefaultMaxMediaBytes = 5 << 20
	// DefaultEditInterval keeps changes to one chat to about one per second,
	// Telegram's advice.
	DefaultEditInterval = time.Second
	// DefaultPollTimeout is how long one getUpdates call waits for updates.
	DefaultPollTimeout = 30 * time.Second
)

// Flavour names the markup the adapter sends: Telegram's HTML subset.
const Flavour format.Flavour = "telegram-html"

// Options configure the adapter.
type Options struct {
	// Token is the bot's token from @BotFather. Required.
	Token string
	// BaseURL is the Bot API server; requests go to {BaseURL}/bot{Token}/{method}.
	// Empty means DefaultBaseURL.
	BaseURL string
	// HomeChannel is the chat for messages nobody asked for (a numeric
	// chat id or @channelname); empty means none.
	HomeChannel string
	// MaxMediaBytes caps the size of a photo downloaded for the agent;
	// 0 means DefaultMaxMediaBytes, negative turns photos off.
	MaxMediaBytes int64
	// State keeps the update offset across restarts; nil keeps it in
	// memory only (a restart then relies on the gateway's dedupe).
	State platform.StateStore
	// Logger receives the adapter's logs; nil discards them.
	Logger *slog.Logger
	// EditInterval is the least time between two changes to one chat;
	// 0 means DefaultEditInterval.
	EditInterval time.Duration
	// PollTimeout is how long one getUpdates call waits; 0 means
	// DefaultPollTimeout.
	PollTimeout time.Duration
	// HTTPClient makes the requests; nil means a client of the adapter's own.
	HTTPClient *http.Client
}

// Commands are the gateway's commands, registered with setMyCommands so
// Telegram offers them in its menu.
var Commands = []models.BotCommand{
	{Command: "new", Description: "Start a new conversation"},
	{Command: "reset", Description: "Start a new conversation (same as /new)"},
	{Command: "stop", Description: "Stop the answer being written"},
	{Command: "status", Description: "Session, agent server and uptime"},
	{Command: "help", Description: "List the commands"},
}

// Adapter is the Telegram platform.
type Adapter struct {
	opts      Options
	log       *slog.Logger
	bot       *bot.Bot
	client    *http.Client // for getUpdates and file downloads
	transport *http.Transport
	botID     int64
	stateKey  string
	ready     chan struct{}

	mu       sync.Mutex
	started  bool
	username string // the bot's username, once known
}

var (
	_ platform.Adapter = (*Adapter)(nil)
	_ platform.Drafter = (*Adapter)(nil)
)

// New returns an adapter; it makes no request before Run.
func New(opts Options) (*Adapter, error) {
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
	if opts.MaxMediaBytes == 0 {
		opts.MaxMediaBytes = DefaultMaxMediaBytes
	}
	if opts.EditInterval <= 0 {
		opts.EditInterval = DefaultEditInterval
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = DefaultPollTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		opts:     opts,
		log:      opts.Logger.With("platform", Name),
		botID:    botID,
		stateKey: fmt.Sprintf("telegram.%d.update_offset", botID),
		ready:    make(chan struct{}),
	}
	a.client = opts.HTTPClient
	if a.client == nil {
		a.transport = http.DefaultTransport.(*http.Transport).Clone()
		a.client = &http.Client{Transport: a.transport}
	}
	// API calls other than getUpdates get a bound of their own.
	calls := &http.Client{Transport: a.client.Transport, Timeout: 30 * time.Second}
	a.bot, err = bot.New(opts.Token,
		bot.WithSkipGetMe(),
		bot.WithServerURL(opts.BaseURL),
		bot.WithHTTPClient(opts.PollTimeout, calls),
		bot.WithErrorsHandler(func(err error) { a.log.Debug("bot API client", "error", a.redact(err)) }),
		bot.WithDebugHandler(func(string, ...any) {}),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", a.redact(err))
	}
	return a, nil
}

// Name returns "telegram".
func (a *Adapter) Name() string { return Name }

// Caps declares Telegram's limits: 4096 UTF-16 units, edits, drafts in
// private chats, forum topics, typing, and about one change per second.
func (a *Adapter) Caps() platform.Caps {
	return platform.Caps{
		MaxLength:    MaxLength,
		Count:        format.UTF16,
		Edit:         true,
		Draft:        true,
		Threads:      true,
		Typing:       true,
		Cursor:       true,
		Format:       Flavour,
		EditInterval: a.opts.EditInterval,
	}
}

// Ready is closed once the bot is known to Telegram and polling.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// Home is where messages nobody asked for go (TELEGRAM_HOME_CHANNEL); ok
// is false when none is configured.
func (a *Adapter) Home() (platform.Target, bool) {
	if a.opts.HomeChannel == "" {
		return platform.Target{}, false
	}
	return platform.Target{ChatID: a.opts.HomeChannel}, true
}

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
	if _, err := a.bot.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: Commands}); err != nil && ctx.Err() == nil {
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
	delay := time.Second
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
		a.log.Warn("reaching the Bot API failed; retrying", "error", a.redact(err), "in", delay)
		if !sleep(ctx, delay) {
			return nil, nil
		}
		delay = min(delay*2, time.Minute)
	}
}

// loadOffset reads the persisted update offset, retrying while the store
// fails: polling without it could confirm updates not yet journalled.
func (a *Adapter) loadOffset(ctx context.Context) (int64, error) {
	if a.opts.State == nil {
		return 0, nil
	}
	delay := time.Second
	for {
		v, ok, err := a.opts.State.State(ctx, a.stateKey)
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
		a.log.Error("reading the update offset failed; retrying", "error", err, "in", delay)
		if !sleep(ctx, delay) {
			return 0, ctx.Err()
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// sleep waits for d; it reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redact removes the token from an error's text: the Bot API's URLs hold
// it, and so do errors that quote them.
func (a *Adapter) redact(err error) error {
	if err == nil {
		return nil
	}
	if !strings.Contains(err.Error(), a.opts.Token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), a.opts.Token, "<token>"), err: err}
}

// redactedError shows an error's text without the token, keeping the error
// for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// chatSource describes where a message came from.
func chatSource(m *models.Message) chat.Source {
	src := chat.Source{
		Platform:  Name,
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
