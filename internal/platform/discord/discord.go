// Package discord connects Herald to Discord: the gateway websocket for
// messages and commands, the REST API for answers, through
// github.com/bwmarrin/discordgo.
//
// Discord acknowledges nothing: a message dispatched while the gateway
// connection is down is replayed when the session resumes, and one that
// arrives while Herald is stopped, or that a fresh session never replays,
// is read back from the channel (see backfill), through the gateway's
// dedupe by message id, so that nothing is lost or answered twice.
//
// Answers are Discord markdown as the agent writes it; a message is
// created, then edited as the answer grows, paced to the channel's budget
// (see package stream). A 429 comes back as *platform.RateLimitError, and
// discordgo's limiter holds every call to a bucket whose X-RateLimit
// headers say it is empty until it resets. Pings are limited to the asking
// user with allowed_mentions.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/texts"
)

// Name is the platform's name, in config keys and chat.Source.Platform.
const Name = "discord"

// Discord's limits and Herald's defaults for them.
const (
	// MaxLength is the longest message content, in characters: "up to
	// 2000 characters" (discord.com/developers/docs/resources/message#create-message).
	MaxLength = 2000
	// DefaultBaseURL is Discord's site.
	DefaultBaseURL = "https://discord.com"
	// typingEvery refreshes the typing indicator before it ends: it
	// "lasts for 10 seconds" (discord.com/developers/docs/resources/channel#trigger-typing-indicator).
	typingEvery = 8 * time.Second
	// closeSettle is how long a lost connection takes to be closed by
	// every goroutine of discordgo's that noticed: its close holds the
	// session for a second.
	closeSettle = 2 * time.Second
	// callTimeout bounds one REST call.
	callTimeout = 30 * time.Second
	// intents are the gateway events the bot asks for: servers and their
	// channels, messages in servers and DMs, and their text, which is a
	// privileged intent (discord.com/developers/docs/events/gateway#gateway-intents).
	intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages |
		discordgo.IntentsDirectMessages | discordgo.IntentsMessageContent
)

// Discord's rate limits. Discord publishes no figures for its per-route
// buckets and tells clients to read the X-RateLimit headers
// (discord.com/developers/docs/topics/rate-limits); the buckets for
// creating and editing messages in a channel answer 5 per 5 seconds.
var (
	// ChannelBudget is a channel's message budget: five at once, then one
	// a second.
	ChannelBudget = platform.Bucket{Rate: 1, Burst: 5}
	// MarkerBudget is a channel's for reactions: "rate limits are applied
	// on a per-route basis" (same page), so adding and removing reactions
	// have buckets of their own, apart from the messages'. One change of
	// marker (a removal and an addition) at once, then one call a second;
	// discordgo spaces reactions by its own 200 ms besides.
	MarkerBudget = platform.Bucket{Rate: 1, Burst: 2}
	// TypingBudget is a channel's for the typing indicator, a route of its
	// own too (same page); one call at a time, refreshed every typingEvery.
	TypingBudget = platform.Bucket{Rate: 1, Burst: 1}
	// GlobalBudget is the bot's: "50 requests per second"
	// (discord.com/developers/docs/topics/rate-limits#global-rate-limit).
	GlobalBudget = platform.Bucket{Rate: 50, Burst: 50}
)

func init() {
	// discordgo speaks version 9 by default; Herald's requests are
	// rewritten to version 10 (see rewrite), and so is the gateway's.
	discordgo.APIVersion = "10"
	// discordgo logs errors with the log package; send them to slog,
	// where they belong, at debug level: the adapter logs what matters.
	discordgo.Logger = func(_, _ int, format string, a ...any) {
		slog.Debug("discordgo: " + fmt.Sprintf(format, a...))
	}
}

// Adapter is the Discord platform.
type Adapter struct {
	opts      Options
	state     platform.StateStore // nil keeps the positions in memory only
	log       *slog.Logger
	s         *discordgo.Session
	client    *http.Client // for attachments
	transport *http.Transport
	ready     chan struct{}

	// Signals from discordgo's event handlers to Run.
	disconnected chan struct{}
	outage       platform.Outage        // of the gateway connection
	fresh        chan map[string]string // a new session started (READY): the conversations to read back

	mu      sync.Mutex
	started bool
	ctx     context.Context // Run's
	handler platform.Handler
	me      *discordgo.User
	appID   string

	channels     *platform.Recent[string, *discordgo.Channel]
	threadNames  *platform.Recent[string, string] // asking message → name of the thread its answer starts
	replies      *platform.Replies                // which messages of an answer reply to the asking one
	threads      *platform.Recent[string, bool]   // threads known to exist
	interactions *interactions
	seen         *seen
	work         sync.WaitGroup // goroutines Run waits for
	stopping     bool           // Run is waiting for work: no more may start
}

var (
	_ platform.Adapter    = (*Adapter)(nil)
	_ platform.TurnMarker = (*Adapter)(nil)
)

// New returns an adapter; it makes no request before Run. d.State keeps
// the last message seen in each conversation across restarts, for the
// backfill.
func New(opts Options, d platform.Deps) (*Adapter, error) {
	opts.Token = strings.TrimPrefix(strings.TrimSpace(opts.Token), "Bot ")
	if opts.Token == "" {
		return nil, errors.New("discord: a bot token is required (DISCORD_BOT_TOKEN)")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.Budget == (platform.Bucket{}) {
		opts.Budget = ChannelBudget
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Adapter{
		opts:         opts,
		state:        d.State,
		log:          d.Logger.With("platform", Name),
		ready:        make(chan struct{}),
		disconnected: make(chan struct{}, 1),
		fresh:        make(chan map[string]string, 1),
		channels:     platform.NewRecent[string, *discordgo.Channel](4096),
		threadNames:  platform.NewRecent[string, string](1024),
		replies:      platform.NewReplies(opts.ReplyToMode),
		threads:      platform.NewRecent[string, bool](4096),
		interactions: newInteractions(),
	}
	a.client = d.HTTPClient
	if a.client == nil {
		a.transport = http.DefaultTransport.(*http.Transport).Clone()
		a.client = &http.Client{Transport: a.transport}
	}
	rewritten, err := newRewrite(opts.BaseURL, a.client.Transport)
	if err != nil {
		return nil, fmt.Errorf("discord: DISCORD_BASE_URL: %w", err)
	}
	s, err := discordgo.New("Bot " + opts.Token)
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	s.Client = &http.Client{Transport: &globalHold{next: rewritten}, Timeout: callTimeout}
	s.Dialer = platform.WebsocketDialer(a.client, callTimeout)
	s.Identify.Intents = intents
	// Herald reconnects itself, from Run, so that nothing reconnects
	// after Run ended; and a 429 is the gateway's to wait out, not a
	// sleep inside a call.
	s.ShouldReconnectOnError = false
	s.ShouldRetryOnRateLimit = false
	// A POST repeated after a 502 may post a message twice; the delivery
	// knows better what to retry.
	s.MaxRestRetries = 0
	// Handlers run in order, on the connection's reader: a message is
	// journalled before the next one is read.
	s.SyncEvents = true
	// The state tracks channels and threads only (their kind and parent
	// decide how a message is answered); members and the rest would grow
	// with every server the bot is in.
	st := discordgo.NewState()
	st.TrackEmojis, st.TrackMembers, st.TrackThreadMembers, st.TrackRoles = false, false, false, false
	st.TrackVoice, st.TrackPresences = false, false
	s.State = st
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) { a.onReady(r) })
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) { signal(a.disconnected) })
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if a.enter() {
			defer a.work.Done()
			a.onMessage(m.Message)
		}
	})
	s.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) {
		if a.enter() {
			defer a.work.Done()
			a.onInteraction(i.Interaction)
		}
	})
	a.s = s
	return a, nil
}

// drain forgets a signal sent to c.
func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// signal wakes whoever waits on c, once however many times it is called.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Name returns "discord".
func (a *Adapter) Name() string { return Name }

// Caps declares Discord's limits: 2000 characters, edits, threads,
// typing, markdown as the agent writes it; the channel's budgets for
// messages (platforms.discord.rate and .burst override it), reactions and
// typing, each a route of its own, and the bot's.
func (a *Adapter) Caps(chat.Target) platform.Caps {
	c := platform.Caps{
		MaxLength:   MaxLength,
		Count:       format.Runes,
		Edit:        true,
		Threads:     true,
		Typing:      true,
		TypingEvery: typingEvery,
		Cursor:      true,
		Format:      format.Markdown,
		Budgets: []platform.Budget{
			{Classes: platform.Messages, Bucket: a.opts.Budget},
			{Classes: platform.Markers, Bucket: MarkerBudget},
			{Classes: platform.Typing, Bucket: TypingBudget},
			{Classes: platform.Messages | platform.Markers | platform.Typing, Account: true, Bucket: GlobalBudget},
		},
	}
	if a.opts.Reactions {
		c.MarkerCalls = 2
	}
	return c
}

// Ready is closed once the bot is connected to the gateway and its
// commands registered.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// bot is the bot's user and application, once the gateway said READY.
func (a *Adapter) bot() (me *discordgo.User, appID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.me, a.appID
}

// Run checks the token, connects to the gateway, registers the commands,
// reads back what recent conversations missed, and receives messages
// until ctx ends, handing each to h. A dropped connection is resumed (or a
// new session started, then read back). Run fails when Discord refuses
// the token or the intents: those do not mend by retrying.
func (a *Adapter) Run(ctx context.Context, h platform.Handler) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("discord: Run called twice")
	}
	a.started, a.ctx, a.handler = true, ctx, h
	a.mu.Unlock()
	if a.transport != nil {
		defer a.transport.CloseIdleConnections()
	}
	defer func() {
		a.mu.Lock()
		a.stopping = true
		a.mu.Unlock()
		a.work.Wait()
	}()

	me, err := a.identify(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	if a.seen, err = loadSeen(ctx, a.state, "discord."+me.ID+".seen", a.log); err != nil {
		return nil // ctx ended
	}
	defer a.s.Close() // also when ctx ends while connecting
	if err := a.connect(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	a.registerCommands(ctx)
	close(a.ready)
	a.log.Info("discord connected", "bot", me.Username, "id", me.ID)
	for {
		select {
		case <-ctx.Done():
			a.log.Info("discord stopped")
			return nil
		case recent := <-a.fresh:
			a.backfill(ctx, recent)
		case <-a.disconnected:
			a.outage.Failed(errGatewayClosed)
			a.log.Info("the Discord gateway connection closed; resuming")
			// discordgo's reader and heartbeat both close the session when
			// the connection fails, and the later close would cut (and,
			// with code 1000, end) a new connection made in between: let
			// them finish first.
			if !platform.Sleep(ctx, closeSettle) {
				return nil
			}
			drain(a.disconnected)
			if err := a.connect(ctx); err != nil || ctx.Err() != nil {
				return err
			}
		}
	}
}

// enter counts a piece of work that Run waits for before it returns (a
// handler of discordgo's, which its Close does not wait for), unless Run
// is ending; the caller calls a.work.Done when it is over.
func (a *Adapter) enter() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping {
		return false
	}
	a.work.Add(1)
	return true
}

// goWork runs f in a goroutine that Run waits for, unless Run is ending.
func (a *Adapter) goWork(f func()) {
	if a.enter() {
		go func() {
			defer a.work.Done()
			f()
		}()
	}
}

// identify asks Discord who the bot is, retrying until it answers; a
// refused token ends it with an error.
func (a *Adapter) identify(ctx context.Context) (*discordgo.User, error) {
	var delay platform.Backoff
	for {
		me, err := a.s.User("@me", discordgo.WithContext(ctx))
		if err == nil {
			return me, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if tokenRefused(err) {
			return nil, errTokenRefused
		}
		wait := delay.Next()
		a.log.Warn("reaching Discord failed; retrying", "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil, nil
		}
	}
}

// errGatewayClosed is the outage while the gateway connection is closed.
var errGatewayClosed = errors.New("the Discord gateway connection closed")

// Outage implements platform.Connection: the gateway connection has been
// closed, and not opened again, for a while.
func (a *Adapter) Outage() error { return a.outage.Err() }

// errTokenRefused says Discord answered 401: the token is wrong or was
// reset.
var errTokenRefused = errors.New("discord: the bot token was refused (DISCORD_BOT_TOKEN): copy it again from the developer portal, Bot → Reset Token")

// tokenRefused tells a REST call that Discord answered with 401.
func tokenRefused(err error) bool {
	var rest *discordgo.RESTError
	return errors.As(err, &rest) && rest.Response != nil && rest.Response.StatusCode == http.StatusUnauthorized
}

// connect opens the gateway connection, resuming the session if there is
// one, and retries until it is open or ctx ends. Close codes that say the
// configuration is wrong end it with an error naming what to change.
func (a *Adapter) connect(ctx context.Context) error {
	var delay platform.Backoff
	for {
		err := a.s.Open()
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			a.outage.Recovered()
			return nil
		}
		a.outage.Failed(err)
		if fatal := closeError(err); fatal != nil {
			return fatal
		}
		if tokenRefused(err) { // the token was reset while Herald ran
			return errTokenRefused
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := delay.Next()
		a.log.Warn("connecting to the Discord gateway failed; retrying", "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil
		}
	}
}

// closeError explains the gateway's close codes that retrying cannot mend
// (discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes);
// nil for the others.
func closeError(err error) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return nil
	}
	switch ce.Code {
	case 4004:
		return errors.New("discord: the gateway refused the bot token (4004 Authentication failed): set DISCORD_BOT_TOKEN to the token from the developer portal, Bot → Reset Token")
	case 4014:
		return errors.New("discord: the gateway refused the Message Content intent (4014 Disallowed intents): in the developer portal (https://discord.com/developers/applications), open the application, Bot → Privileged Gateway Intents, and turn on MESSAGE CONTENT INTENT")
	case 4013:
		return fmt.Errorf("discord: the gateway refused the intents Herald asks for (4013 Invalid intents): %w", err)
	case 4010, 4011, 4012:
		return fmt.Errorf("discord: the gateway refused the connection (%d %s); sharding or an old API version is not supported", ce.Code, ce.Text)
	}
	return nil
}

// onReady keeps who the bot is, and asks Run to read back what a new
// session may have missed (at start, or after Discord invalidated the
// last one). The conversations to read back are taken now, before the
// session's first message moves their positions past what was missed.
func (a *Adapter) onReady(r *discordgo.Ready) {
	a.mu.Lock()
	a.me = r.User
	if r.Application != nil {
		a.appID = r.Application.ID
	}
	a.mu.Unlock()
	recent := a.seen.begin(time.Now())
	select {
	case old := <-a.fresh: // a backfill not started yet: one does for both
		maps.Insert(recent, maps.All(old))
	default:
	}
	a.fresh <- recent
}

// registerCommands registers the gateway's commands as the application's
// slash commands, replacing what was registered before.
func (a *Adapter) registerCommands(ctx context.Context) {
	_, appID := a.bot()
	if appID == "" {
		a.log.Warn("Discord did not say the application's id; slash commands are not registered")
		return
	}
	cmds := make([]*discordgo.ApplicationCommand, 0, len(chat.Commands))
	for _, c := range chat.Commands {
		cmds = append(cmds, &discordgo.ApplicationCommand{
			Name: c.Word, Description: texts.MenuEntry(c), Type: discordgo.ChatApplicationCommand,
		})
	}
	if _, err := a.s.ApplicationCommandBulkOverwrite(appID, "", cmds, discordgo.WithContext(ctx)); err != nil && ctx.Err() == nil {
		a.log.Warn("registering the slash commands failed; typed commands still work", "error", err)
	}
}
