// Package slack connects Herald to Slack: Socket Mode for events (no
// public HTTP endpoint), the Web API for answers, through
// github.com/slack-go/slack.
//
// Every Socket Mode envelope is acknowledged once its message is
// journalled, so an envelope Slack sends while Herald is down or before
// the journal has it is delivered again; a re-delivery has the same message
// (channel and ts), which the gateway's dedupe drops.
//
// Answers stream with Slack's own streaming for AI apps (chat.startStream,
// chat.appendStream, chat.stopStream) in threads, where Slack allows it;
// elsewhere, or once Slack refuses it, a message is posted and updated,
// paced to the budgets of those methods (see package stream). The status
// of a turn ("is thinking…", a running tool) shows with
// assistant.threads.setStatus where the app may set it.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Name is the platform's name, in config keys and chat.Source.Platform.
const Name = "slack"

// Slack's limits and Herald's defaults for them.
const (
	// DefaultAPIURL is Slack's Web API.
	DefaultAPIURL = "https://slack.com/api/"
	// maxText is the most one markdown_text (chat.startStream,
	// chat.appendStream, chat.stopStream) or the markdown blocks of one
	// message may hold: "Limit this field to 12,000 characters"
	// (docs.slack.dev/reference/methods/chat.startStream) and "the
	// cumulative limit for all markdown blocks in a single payload is
	// 12,000 characters" (docs.slack.dev/reference/block-kit/blocks/markdown-block).
	maxText = 12000
	// MaxLength is the longest message Herald writes, in characters of
	// markdown: maxText less room for the escapes of &, < and > that
	// rendering adds (see render).
	MaxLength = 10000
	// callTimeout bounds one Web API call.
	callTimeout = 30 * time.Second
	// statusEvery refreshes the status while nothing is shown: Slack
	// clears it "after two minutes" without a reply
	// (docs.slack.dev/reference/methods/assistant.threads.setStatus).
	statusEvery = 90 * time.Second
	// thinking is the status while the agent works.
	thinking = "is thinking…"
)

// Slack's rate limits (docs.slack.dev/apis/web-api/rate-limits).
var (
	// ChannelBudget is a channel's message budget: chat.postMessage
	// "generally allows posting one message per second per channel, while
	// also allowing short bursts" (same page, "Rate limits for
	// chat.postMessage").
	ChannelBudget = platform.Bucket{Rate: 1, Burst: 3}
	// updateBudget is the app's for chat.update and chat.delete, Tier 3:
	// "50+ per minute" for the workspace (same page, "Rate limit tiers").
	updateBudget = platform.Bucket{Rate: 50.0 / 60, Burst: 50}
	// streamBudget is the app's for chat.appendStream and chat.stopStream,
	// Tier 4: "100+ per minute".
	streamBudget = platform.Bucket{Rate: 100.0 / 60, Burst: 100}
	// statusBudget is a thread's for assistant.threads.setStatus, a
	// courtesy: one change a second.
	statusBudget = platform.Bucket{Rate: 1, Burst: 1}
)

// Adapter is the Slack platform.
type Adapter struct {
	opts   Options
	log    *slog.Logger
	api    *slack.Client
	files  *http.Client // for url_private downloads
	dialer *websocket.Dialer
	ready  chan struct{}
	once   sync.Once
	outage platform.Outage // of the Socket Mode connection

	me      identity
	threads *threads // channel threads the bot answers in
	names   *platform.Recent[string, string]

	mu      sync.Mutex
	streams map[string]*openStream // by channel and ts

	// Slack refused streaming, or the status, to this app: not asked again
	// until Herald restarts.
	noStreams, noStatus atomic.Bool
}

// Outage implements platform.Connection: Socket Mode has not been
// connected for a while.
func (a *Adapter) Outage() error { return a.outage.Err() }

// identity is who the bot is, from auth.test.
type identity struct {
	userID, botID, teamID string
}

var (
	_ platform.Adapter  = (*Adapter)(nil)
	_ platform.Statuser = (*Adapter)(nil)
	_ platform.Sealer   = (*Adapter)(nil)
)

// New returns an adapter; it makes no request before Run. d.State keeps
// the threads the bot answers in across restarts.
func New(opts Options, d platform.Deps) (*Adapter, error) {
	opts.BotToken, opts.AppToken = strings.TrimSpace(opts.BotToken), strings.TrimSpace(opts.AppToken)
	if opts.BotToken == "" || opts.AppToken == "" {
		return nil, errors.New("slack: both SLACK_BOT_TOKEN and SLACK_APP_TOKEN are required")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(opts.APIURL, "/") {
		opts.APIURL += "/"
	}
	if opts.Budget == (platform.Bucket{}) {
		opts.Budget = ChannelBudget
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	api := &http.Client{Transport: client.Transport, Timeout: callTimeout, CheckRedirect: client.CheckRedirect}
	a := &Adapter{
		opts:    opts,
		log:     d.Logger.With("platform", Name),
		files:   client,
		dialer:  platform.WebsocketDialer(client, callTimeout),
		ready:   make(chan struct{}),
		threads: newThreads(d.State),
		names:   platform.NewRecent[string, string](4096),
		streams: map[string]*openStream{},
	}
	a.api = slack.New(opts.BotToken,
		slack.OptionAPIURL(opts.APIURL),
		slack.OptionAppLevelToken(opts.AppToken),
		slack.OptionHTTPClient(api),
		slack.OptionLog(quiet{}),
	)
	return a, nil
}

// quiet drops slack-go's own log lines: the adapter logs what matters.
type quiet struct{}

func (quiet) Output(int, string) error { return nil }

// Name implements platform.Adapter.
func (a *Adapter) Name() string { return Name }

// Ready implements platform.Adapter: closed at the first hello of Socket
// Mode.
func (a *Adapter) Ready() <-chan struct{} { return a.ready }

// Caps implements platform.Adapter. Answers in threads stream natively
// unless Slack refused it; the status shows in threads unless Slack
// refused it.
func (a *Adapter) Caps(t chat.Target) platform.Caps {
	inThread := t.ThreadID != ""
	streams := a.streamsTo(t)
	account := updateBudget
	if streams {
		account = streamBudget
	}
	return platform.Caps{
		MaxLength:   MaxLength,
		Count:       format.Runes,
		Edit:        true,
		Threads:     true,
		Typing:      inThread && !a.noStatus.Load(),
		TypingEvery: statusEvery,
		Format:      format.Markdown,
		Appends:     streams,
		Status:      inThread,
		Budgets: []platform.Budget{
			{Classes: platform.Messages, Bucket: a.opts.Budget},
			{Classes: platform.Messages, Account: true, Bucket: account},
			{Classes: platform.Typing, Bucket: statusBudget},
		},
	}
}

// Run connects through Socket Mode and takes events until ctx ends. It
// returns an error when a token is refused.
func (a *Adapter) Run(ctx context.Context, h platform.Handler) error {
	auth, err := a.api.AuthTestContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("slack: checking SLACK_BOT_TOKEN (auth.test): %w", explain(err))
	}
	a.me = identity{userID: auth.UserID, botID: auth.BotID, teamID: auth.TeamID}
	a.threads.load(ctx, a.log)
	a.log.Info("connected to Slack", "team", auth.Team, "bot", auth.User)
	var back platform.Backoff
	for {
		err := a.connection(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if isFatal(err) {
			return fmt.Errorf("slack: opening Socket Mode with SLACK_APP_TOKEN (apps.connections.open): %w", explain(err))
		}
		a.outage.Failed(err)
		wait := back.Next()
		a.log.Warn("the Socket Mode connection ended, reconnecting", "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil
		}
	}
}

// connection runs one Socket Mode client, which reconnects by itself when
// Slack asks it to (a disconnect envelope) or stops sending pings, until
// it fails or ctx ends.
func (a *Adapter) connection(ctx context.Context, h platform.Handler) error {
	sm := socketmode.New(a.api, socketmode.OptionDialer(a.dialer), socketmode.OptionLog(quiet{}))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- sm.RunContext(runCtx) }()
	for {
		select {
		case err := <-done:
			return err
		case ev := <-sm.Events:
			a.event(ctx, sm, ev, h)
		}
	}
}

// event takes one event of the Socket Mode client.
func (a *Adapter) event(ctx context.Context, sm *socketmode.Client, ev socketmode.Event, h platform.Handler) {
	switch ev.Type {
	case socketmode.EventTypeHello:
		a.outage.Recovered()
		a.once.Do(func() { close(a.ready) })
	case socketmode.EventTypeConnectionError:
		if e, ok := ev.Data.(*slack.ConnectionErrorEvent); ok {
			a.outage.Failed(e.ErrorObj)
			a.log.Warn("connecting to Socket Mode failed", "error", explain(e.ErrorObj))
		}
	case socketmode.EventTypeEventsAPI:
		a.envelope(ctx, sm, ev.Request, h)
	case socketmode.EventTypeSlashCommand:
		a.slashCommand(ctx, sm, ev, h)
	case socketmode.EventTypeInteractive:
		a.ack(ctx, sm, ev.Request, nil)
	}
}

// envelope takes an events_api envelope: the message it carries is
// journalled, then the envelope acknowledged. An envelope whose message
// could not be journalled is left unacknowledged, and Slack sends it
// again.
func (a *Adapter) envelope(ctx context.Context, sm *socketmode.Client, req *socketmode.Request, h platform.Handler) {
	if req == nil {
		return
	}
	var p payload
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		a.log.Warn("an event could not be read", "error", err)
		a.ack(ctx, sm, req, nil) // it will not read better next time
		return
	}
	in, ok := a.inbound(ctx, p.Event)
	if ok {
		if err := h(ctx, in); err != nil {
			a.log.Warn("a message could not be journalled; Slack will send it again", "error", err, "retry_attempt", req.RetryAttempt)
			return
		}
	}
	a.ack(ctx, sm, req, nil)
}

// ack acknowledges an envelope, with an answer for slash commands.
func (a *Adapter) ack(ctx context.Context, sm *socketmode.Client, req *socketmode.Request, answer any) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := sm.AckCtx(ctx, req.EnvelopeID, answer); err != nil {
		a.log.Debug("an envelope could not be acknowledged", "error", err)
	}
}

// isFatal tells a refused token, which reconnecting cannot cure, from a
// connection that failed.
func isFatal(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		err = se
	}
	if err == nil {
		return false
	}
	switch err.Error() {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type", "missing_scope":
		return true
	}
	var code slack.StatusCodeError
	return errors.As(err, &code) && code.Code == http.StatusNotFound
}

// explain adds what a token error means to Slack's error code.
func explain(err error) error {
	if err == nil {
		return nil
	}
	hints := map[string]string{
		"invalid_auth":           "the token is not valid (revoked, or from another app)",
		"not_authed":             "no token was sent",
		"account_inactive":       "the app was uninstalled or the workspace deleted",
		"token_revoked":          "the token was revoked",
		"token_expired":          "the token expired",
		"not_allowed_token_type": "the token is of the wrong kind for this call",
		"missing_scope":          "the app lacks a scope; reinstall it from the manifest in the README",
	}
	if hint, ok := hints[err.Error()]; ok {
		return fmt.Errorf("%w: %s", err, hint)
	}
	return err
}
