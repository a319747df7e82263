// Package gateway is the runner: it takes each inbound message through
// dedupe, authorization, commands and the session lane to the backend, and
// delivers the answer back through the platform, journalling every step so
// that a restart loses nothing and answers nothing twice.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/texts"
)

// ErrShuttingDown is returned to adapters for messages that arrive during
// shutdown: they are not journalled, so the platform must deliver them again.
var ErrShuttingDown = errors.New("gateway: shutting down")

// Why a turn's context was cancelled.
var (
	errInterrupted = errors.New("interrupted by a newer message")
	errStopped     = errors.New("stopped by /stop")
	// errShutdown lets go of a turn whose run goes on on the agent
	// server (see agent.ErrDetached); other turns are cancelled.
	errShutdown = fmt.Errorf("gateway shutting down: %w", agent.ErrDetached)
)

// Options configure a Runner.
type Options struct {
	SessionKeys chat.SessionKeyOptions
	// BusyMode is "interrupt" (a new message cancels the running turn),
	// "steer" (it is handed to the running turn, where the backend steers;
	// see steerLocked) or
	// "queue" (it runs next).
	BusyMode string
	Access   Access
	// BusyAck tells the user, at most every busyAckEvery in a session,
	// what a message sent while a turn runs does.
	BusyAck bool
	// ResetTriggers are messages that start a new conversation, as /new
	// does (compared whole, in any case).
	ResetTriggers []string
	// SessionReset starts conversations afresh by themselves.
	SessionReset SessionReset
	// Homes are the platforms' configured home chats, where the agent's own
	// messages go when they name a platform but no chat; /sethome sets
	// one from a chat, over the configured one.
	Homes map[string]chat.Target
	// DeliverAnyChat lets the agent's own messages go to any chat, not
	// only to the home chats and those messages came from.
	DeliverAnyChat bool
	// PairUnknownDMs names the platforms where unknown users' DMs are
	// answered with a pairing code.
	PairUnknownDMs map[string]bool
	Streaming      stream.Options
	// PlatformStreaming turns streaming on or off for one platform, over
	// Streaming.Enabled.
	PlatformStreaming map[string]bool
	// NoTyping names the platforms whose typing indicator is off.
	NoTyping []string
	// QuietRestarts names the platforms whose chats are not told that a
	// restart or shutdown cut an answer short (Hermes's
	// gateway_restart_notification: false): the answer stays as far as it
	// got, and the log says so.
	QuietRestarts []string
	// ToolProgress is what chats show of the agent's tools (a mode of
	// config's display.tool_progress; "" shows all), and
	// PlatformToolProgress the same for one platform.
	ToolProgress         string
	PlatformToolProgress map[string]string
	// KeepThinking keeps the agent's <think> reasoning in the transcript
	// (it goes back to the agent with the history); by default the
	// transcript holds the answer as the user saw it.
	KeepThinking bool
	// ShutdownGrace is how long running turns may finish on shutdown.
	ShutdownGrace time.Duration
	// HistoryLimit is how many transcript entries go with each turn.
	HistoryLimit int
	// AgentUnreadyAfter is how many failures of the agent server in a row
	// (turns or checks) make the gateway unready; 0 means 3.
	AgentUnreadyAfter int
	// AgentCheckInterval is how often a failing agent server is checked
	// (agent.Pinger); 0 means 30 s.
	AgentCheckInterval time.Duration
	// Tracing makes a trace of each turn (OpenTelemetry); nil makes none.
	Tracing trace.TracerProvider
	Logger  *slog.Logger
	Metrics *ops.Metrics
}

// Store is what the runner keeps: the turn journal, the sessions and their
// transcripts, the chats and the outbox of the agent's own messages, the
// home chats /sethome sets (as states), and the pairings it hands out and
// checks.
type Store interface {
	store.Journal
	store.Sessions
	store.Transcripts
	store.Chats
	store.Outbox
	platform.StateStore
	CreatePairing(ctx context.Context, platform, userID, userName string) (store.Pairing, error)
	IsPaired(ctx context.Context, platform, userID string) (bool, error)
}

// Runner is the gateway's pipeline.
type Runner struct {
	opts     Options
	live     atomic.Pointer[Options] // opts as Reload last changed them (see settings)
	backend  agent.Backend
	store    Store
	adapters map[string]platform.Adapter
	gates    *stream.Gates
	log      *slog.Logger
	metrics  *ops.Metrics
	tracer   trace.Tracer
	health   *agentHealth
	started  time.Time

	// turnsCtx parents every turn; cancelled only when the grace period ends.
	turnsCtx    context.Context
	cancelTurns context.CancelCauseFunc
	// sendCtx parents deliveries and replies, which outlive a cancelled turn
	// so that the user still gets the final text or a notice.
	sendCtx    context.Context
	cancelSend context.CancelFunc

	// stopping is closed when shutdown begins; waits that would hold it up end.
	stopping chan struct{}
	// resumed holds each platform's new messages back until the turns a
	// previous run left for it are dispatched, so that order is kept.
	resumed map[string]chan struct{}

	// outboxLoaded is closed once the sends a previous run left are queued
	// (see loadOutbox).
	outboxLoaded chan struct{}

	mu      sync.Mutex
	lanes   map[string]*lane
	closing bool
	// delivering keeps journalling and queueing a delivery one step (see
	// Deliver).
	delivering sync.Mutex
	// outbox holds the sends waiting for each chat (platform and chat id);
	// a chat with an entry has a goroutine sending them (see queueSend).
	outbox map[string][]sendRef
	// steerFallback logs once that steering fell back to queueing.
	steerFallback sync.Once
	work          sync.WaitGroup // lanes and replies in flight
}

// lane runs one session's turns one at a time.
type lane struct {
	key     string
	running *job
	queue   []*job
	acked   time.Time // when the session was last told what a message sent while busy does
}

// job is one turn waiting or running in a lane.
type job struct {
	adapter platform.Adapter
	turn    store.Turn
	ctx     context.Context
	cancel  context.CancelCauseFunc
	// span is the turn's span, once it runs (see execute and traced).
	span trace.Span
	// stopDelivery, set (under the runner's mu) once the final text is
	// being delivered, cuts that delivery short: a long answer can take
	// minutes of a platform's budget, and /stop or shutdown must reach it.
	stopDelivery context.CancelCauseFunc

	// The fields below serve busy mode steer, under the runner's mu but
	// where said. runID is the turn's run on the agent server, once known.
	runID string
	// steered are messages handed to this running turn; steering counts
	// the calls still out (waited on without the lock). ended refuses new
	// ones once the turn is over.
	steered  []*job
	steering sync.WaitGroup
	ended    bool
	// unread is what the turn's end says of steered text: true when the
	// agent did not read it (the turn failed, or the run's pending_steer
	// holds it). Set before ended.
	unread func(text string) bool
	// steerErr, on a steered job, is why its steer failed; written before
	// steering.Done.
	steerErr error
}

// New returns a runner. Adapters are looked up by their Name.
func New(opts Options, backend agent.Backend, st Store, adapters ...platform.Adapter) *Runner {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = ops.NewMetrics()
	}
	if opts.HistoryLimit == 0 {
		opts.HistoryLimit = 100
	}
	if opts.AgentUnreadyAfter == 0 {
		opts.AgentUnreadyAfter = 3
	}
	if opts.AgentCheckInterval == 0 {
		opts.AgentCheckInterval = 30 * time.Second
	}
	if opts.Tracing == nil {
		opts.Tracing = noop.NewTracerProvider()
	}
	r := &Runner{
		opts:         opts,
		backend:      backend,
		store:        st,
		adapters:     map[string]platform.Adapter{},
		gates:        &stream.Gates{},
		log:          opts.Logger,
		metrics:      opts.Metrics,
		tracer:       opts.Tracing.Tracer(tracerName),
		started:      time.Now(),
		lanes:        map[string]*lane{},
		outbox:       map[string][]sendRef{},
		stopping:     make(chan struct{}),
		outboxLoaded: make(chan struct{}),
		resumed:      map[string]chan struct{}{},
		health:       &agentHealth{unreadyAfter: opts.AgentUnreadyAfter, metrics: opts.Metrics},
	}
	r.live.Store(&opts)
	r.health.record(nil) // up until a turn says otherwise
	for _, a := range adapters {
		r.adapters[a.Name()] = a
		r.resumed[a.Name()] = make(chan struct{})
	}
	r.turnsCtx, r.cancelTurns = context.WithCancelCause(context.Background())
	r.sendCtx, r.cancelSend = context.WithCancel(context.Background())
	return r
}

// Ready reports nil once every adapter is connected, while their
// connections work and the agent server answers, else what is wrong. A
// runner shutting down is not ready: a load balancer sends nothing more.
func (r *Runner) Ready() error {
	select {
	case <-r.stopping:
		return errors.New("shutting down")
	default:
	}
	for name, a := range r.adapters {
		select {
		case <-a.Ready():
		default:
			return fmt.Errorf("platform %s is not connected yet", name)
		}
		if c, ok := a.(platform.Connection); ok {
			if err := c.Outage(); err != nil {
				return fmt.Errorf("platform %s: %w", name, err)
			}
		}
	}
	return r.health.err()
}

// Status says how what the runner depends on stands, for /readyz: the
// agent server, and each platform: "connected", "connecting" or its
// outage.
func (r *Runner) Status() (agent AgentState, platforms map[string]string) {
	platforms = map[string]string{}
	for name, a := range r.adapters {
		select {
		case <-a.Ready():
			platforms[name] = "connected"
		default:
			platforms[name] = "connecting"
			continue
		}
		if c, ok := a.(platform.Connection); ok {
			if err := c.Outage(); err != nil {
				platforms[name] = err.Error()
			}
		}
	}
	return r.health.state(), platforms
}

// Run connects the adapters, resumes turns a previous run left unfinished,
// and relays messages until ctx ends. Then it stops taking messages, lets
// running turns finish within the grace period, cancels the rest with a
// notice, and returns once everything it started has ended.
func (r *Runner) Run(ctx context.Context) error {
	// Turns left unfinished by a previous run are read before any adapter
	// can journal a new message, so a new message is never taken for one.
	pending, err := r.store.PendingTurns(ctx)
	if ctx.Err() != nil {
		return nil // stopped while starting: nothing was taken yet
	}
	if err != nil {
		return fmt.Errorf("reading unfinished turns: %w", err)
	}
	adapterCtx, stopAdapters := context.WithCancel(context.Background())
	var adapters sync.WaitGroup
	errc := make(chan error, len(r.adapters))
	for _, a := range r.adapters {
		adapters.Add(1)
		go func() {
			defer adapters.Done()
			if err := a.Run(adapterCtx, r.handler(a)); err != nil && adapterCtx.Err() == nil {
				errc <- fmt.Errorf("platform %s: %w", a.Name(), err)
			}
		}()
	}
	r.resume(pending)
	if err := r.loadOutbox(ctx); err != nil && ctx.Err() == nil {
		r.log.Error("the outbox could not be read; its deliveries wait for the next start", "error", err)
	}
	checkCtx, stopChecks := context.WithCancel(context.Background())
	checked := make(chan struct{})
	go func() { defer close(checked); r.checkAgent(checkCtx) }()
	defer func() { stopChecks(); <-checked }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	r.shutdown()
	stopAdapters()
	adapters.Wait()
	return runErr
}

// shutdown stops new work, waits for running turns up to the grace period,
// then cancels them; they end with a notice.
func (r *Runner) shutdown() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	close(r.stopping)
	done := make(chan struct{})
	go func() { r.work.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(r.opts.ShutdownGrace):
	}
	r.log.Info("grace period over, cancelling running turns")
	r.cancelTurns(errShutdown)
	r.mu.Lock()
	for _, l := range r.lanes {
		if l.running != nil && l.running.stopDelivery != nil {
			l.running.stopDelivery(errShutdown)
		}
	}
	r.mu.Unlock()
	select {
	case <-done:
	case <-time.After(r.opts.ShutdownGrace + 5*time.Second):
		r.log.Warn("deliveries still running at exit")
		r.cancelSend()
		<-done
	}
}

func (r *Runner) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

// handler is what an adapter calls for each message: journal it (dropping
// a duplicate), then dispatch it without waiting for the answer.
func (r *Runner) handler(a platform.Adapter) platform.Handler {
	return func(ctx context.Context, in chat.Inbound) error {
		select {
		case <-r.resumed[a.Name()]:
		case <-r.stopping:
			return ErrShuttingDown
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.isClosing() {
			return ErrShuttingDown
		}
		in.Source.Platform = a.Name()
		if in.Received.IsZero() {
			in.Received = time.Now()
		}
		key := chat.SessionKey(in.Source, r.opts.SessionKeys)
		turn, err := r.store.Receive(ctx, key, in)
		if errors.Is(err, store.ErrDuplicate) {
			r.log.Debug("dropping a message already received", "platform", a.Name(), "event", in.EventID)
			return nil
		}
		if err != nil {
			return fmt.Errorf("journalling the message: %w", err)
		}
		r.dispatch(ctx, a, turn)
		return nil
	}
}

// dispatch decides what a journalled message becomes: nothing (not allowed,
// not addressed), a command, or a turn in its session's lane.
func (r *Runner) dispatch(ctx context.Context, a platform.Adapter, turn store.Turn) {
	in := turn.Inbound
	if !r.allowed(ctx, in.Source) {
		r.turnLog(turn).Debug("dropping a message from a user not allowed", "user", in.Source.UserID)
		if in.Source.ChatType == chat.DM && r.settings().PairUnknownDMs[in.Source.Platform] {
			r.replyAsync(a, turn, func(ctx context.Context) string {
				p, err := r.store.CreatePairing(ctx, in.Source.Platform, in.Source.UserID, in.Source.UserName)
				if err != nil {
					r.turnLog(turn).Error("creating a pairing code failed", "error", err)
					return ""
				}
				return texts.Pairing(p.Code)
			})
			return
		}
		r.finishTurn(context.Background(), turn, store.Delivered, "ignored: user not allowed")
		return
	}
	if in.Source.ChatType != chat.DM && !in.Mentioned {
		r.finishTurn(context.Background(), turn, store.Delivered, "ignored: not addressed to the bot")
		return
	}
	if cmd, ok := chat.Command(in.Text); ok {
		r.command(a, turn, cmd)
		return
	}
	if r.isResetTrigger(in.Text) {
		r.command(a, turn, "new")
		return
	}
	r.enqueue(a, turn)
}

// enqueue puts a turn in its session's lane. In interrupt mode a running
// turn is cancelled first; what it showed stays.
func (r *Runner) enqueue(a platform.Adapter, turn store.Turn) {
	ctx, cancel := context.WithCancelCause(r.turnsCtx)
	j := &job{adapter: a, turn: turn, ctx: ctx, cancel: cancel}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		cancel(nil)
		return // stays Received in the journal; the next start runs it
	}
	l := r.lanes[turn.SessionKey]
	if l == nil {
		l = &lane{key: turn.SessionKey, running: j}
		r.lanes[turn.SessionKey] = l
		r.work.Add(1)
		go r.runLane(l)
		return
	}
	if l.running == nil {
		l.queue = append(l.queue, j)
		return
	}
	mode := r.settings().BusyMode
	switch {
	case mode == "queue":
	case mode == "steer" && r.steerLocked(l.running, j):
		r.ackBusyLocked(l, j, mode)
		return
	case mode == "steer":
		mode = "queue"
	default:
		l.running.cancel(errInterrupted)
	}
	l.queue = append(l.queue, j)
	r.ackBusyLocked(l, j, mode)
}

// busyAckEvery is how often at most a session is told what its messages
// sent while a turn runs do (Hermes's debounce).
const busyAckEvery = 30 * time.Second

// ackBusyLocked tells the user what j, sent while a turn runs, does (mode:
// interrupt, queue or steer), unless the session was told less than
// busyAckEvery ago. The notice is not journalled: a restart loses at most
// this courtesy.
func (r *Runner) ackBusyLocked(l *lane, j *job, mode string) {
	if !r.settings().BusyAck || time.Since(l.acked) < busyAckEvery {
		return
	}
	l.acked = time.Now()
	target := j.turn.Inbound.AnswerTarget()
	r.work.Add(1)
	go func() {
		defer r.work.Done()
		if err := r.reply(j.adapter, target, texts.BusyAck(mode), stream.Params{}); err != nil {
			r.turnLog(j.turn).Info("acknowledging a message sent while a turn runs failed", "error", err)
		}
	}()
}

// steerLocked hands j's message to the running turn, as Hermes's busy mode
// steer does: the agent reads it after its next tool call. It reports
// false where that cannot be (a backend that steers nothing, a turn with
// no run yet or already over, a message with images), and j waits its
// turn instead, as in queue mode. The call itself is made without the
// lock; the lane settles j when the running turn ends (settleSteered).
func (r *Runner) steerLocked(running, j *job) bool {
	steerer, ok := r.backend.(agent.Steerer)
	in := j.turn.Inbound
	if !ok || running.runID == "" || running.ended || len(in.Attachments) > 0 || strings.TrimSpace(in.Text) == "" {
		r.steerFallback.Do(func() {
			r.log.Info("busy_input_mode is steer, but this message cannot be steered into the running turn (the agent server takes no steering, or the turn has no run yet); it waits its turn, as in queue mode")
		})
		return false
	}
	running.steered = append(running.steered, j)
	running.steering.Add(1)
	go func() {
		defer running.steering.Done()
		if err := steerer.Steer(r.turnsCtx, running.runID, in.Text); err != nil {
			r.turnLog(j.turn).Info("steering a message into the running turn failed; it waits its turn", "error", err)
			j.steerErr = err
		}
	}()
	return true
}

// settleSteered settles the messages steered into the turn j, which has
// ended: those the agent read are done; the others run as turns of their
// own, first in the lane, so that nothing is lost.
func (r *Runner) settleSteered(l *lane, j *job) {
	r.mu.Lock()
	j.ended = true
	r.mu.Unlock()
	j.steering.Wait()
	r.mu.Lock()
	var read, again []*job
	for _, s := range j.steered {
		if s.steerErr != nil || j.unread == nil || j.unread(s.turn.Inbound.Text) {
			again = append(again, s)
		} else {
			read = append(read, s)
		}
	}
	l.queue = append(again, l.queue...)
	r.mu.Unlock()
	for _, s := range read {
		s.cancel(nil)
		r.finishTurn(context.Background(), s.turn, store.Delivered, fmt.Sprintf("steered into turn %d", j.turn.ID))
	}
}

// runLane runs a lane's turns in order until it is empty. During shutdown
// queued turns are left in the journal; the next start resumes them.
func (r *Runner) runLane(l *lane) {
	defer r.work.Done()
	for {
		r.mu.Lock()
		j := l.running
		r.mu.Unlock()
		r.execute(j)
		j.cancel(nil)
		r.settleSteered(l, j)

		r.mu.Lock()
		if len(l.queue) == 0 || r.closing {
			for _, left := range l.queue {
				left.cancel(nil) // stays Received in the journal for the next start
			}
			delete(r.lanes, l.key)
			r.mu.Unlock()
			return
		}
		l.running, l.queue = l.queue[0], l.queue[1:]
		r.mu.Unlock()
	}
}

// cancelLane cancels a session's running turn and, when clear is set, drops
// its queued turns (marking them delivered: the user asked for that). It
// reports whether a turn was running.
func (r *Runner) cancelLane(key string, cause error, clear bool) bool {
	r.mu.Lock()
	l := r.lanes[key]
	var dropped []*job
	running := l != nil && l.running != nil
	if running {
		l.running.cancel(cause)
		if l.running.stopDelivery != nil {
			l.running.stopDelivery(cause)
		}
		if clear {
			// Messages steered into the running turn go with the queue.
			dropped = append(l.queue, l.running.steered...)
			l.queue, l.running.steered = nil, nil
		}
	}
	r.mu.Unlock()
	for _, j := range dropped {
		j.cancel(nil)
		r.finishTurn(context.Background(), j.turn, store.Delivered, "dropped by a command")
	}
	return running
}

// finishTurn records a turn's end (see durably); ctx carries the turn's
// span, if it ran.
func (r *Runner) finishTurn(ctx context.Context, turn store.Turn, status store.TurnStatus, note string) {
	r.durably(ctx, "recording a turn's end", r.turnLog(turn), func(ctx context.Context) error {
		return r.store.SetTurnStatus(ctx, turn.ID, status, note)
	})
}

// durablyRetry is how long a journal write that failed waits before it is
// tried again (our choice: a full disk is not freed in milliseconds).
const durablyRetry = 5 * time.Second

// durably makes a journal write that a turn's (or a delivery's) state
// depends on, trying it again after a failure (a full disk) until it
// succeeds or shutdown begins: what is not recorded would be done again,
// or told again, after a restart. The caller waits, as nothing else can
// be journalled either. log names what the write is about (a turn's
// logger, say); each attempt is a span of the turn ctx carries (see
// journal).
func (r *Runner) durably(ctx context.Context, what string, log *slog.Logger, write func(context.Context) error) {
	for attempt := 1; ; attempt++ {
		err := journal(ctx, what, write)
		if err == nil {
			if attempt > 1 {
				log.Info(what+" succeeded after a failure", "attempts", attempt)
			}
			return
		}
		if attempt == 1 {
			log.Error(what+" failed; trying again", "error", err, "every", durablyRetry)
		}
		select {
		case <-r.stopping:
			log.Error(what+" failed; the next start takes it up", "error", err)
			return
		case <-time.After(durablyRetry):
		}
	}
}

// sessionID returns the conversation's session, starting one if there is
// none; a /new that starts one meanwhile wins.
func (r *Runner) sessionID(ctx context.Context, key string) (string, error) {
	for {
		id, ok, err := r.store.SessionID(ctx, key)
		if err != nil || ok {
			return id, err
		}
		id = chat.NewSessionID(time.Now())
		started, err := r.store.SwapSessionID(ctx, key, "", id)
		if err != nil || started {
			return id, err
		}
	}
}

// turnLog is the logger of a turn's lines: each carries the turn, its
// platform, chat (and thread) and session key, so that one turn can be
// followed through the log; execute adds the session id once it is read.
func (r *Runner) turnLog(turn store.Turn) *slog.Logger {
	src := turn.Inbound.Source
	args := []any{"turn", turn.ID, "platform", src.Platform, "chat", src.ChatID}
	if src.ThreadID != "" {
		args = append(args, "thread", src.ThreadID)
	}
	return r.log.With(append(args, "session_key", turn.SessionKey)...)
}

// TranscriptReader is the part of the store that Transcripts reads.
type TranscriptReader interface {
	SessionID(ctx context.Context, key string) (id string, ok bool, err error)
	History(ctx context.Context, sessionID string, limit int) ([]store.Entry, error)
}

// Transcripts returns what reads the current conversation of the chat a
// message comes from, keyed as the runner keys sessions, for platforms
// that show history (the web chat after a reload). It needs no runner, so
// an adapter can be given it before the runner exists.
func Transcripts(st TranscriptReader, keys chat.SessionKeyOptions) func(ctx context.Context, src chat.Source) ([]chat.Message, error) {
	return func(ctx context.Context, src chat.Source) ([]chat.Message, error) {
		id, ok, err := st.SessionID(ctx, chat.SessionKey(src, keys))
		if err != nil || !ok {
			return nil, err
		}
		entries, err := st.History(ctx, id, 0)
		if err != nil {
			return nil, err
		}
		msgs := messages(entries)
		for i, m := range msgs {
			if m.Role == chat.Assistant {
				// As the user saw it, even when the transcript keeps the
				// reasoning (gateway.Options.KeepThinking).
				msgs[i].Content = format.StripThinking(m.Content)
			}
		}
		return msgs, nil
	}
}

// messages are transcript entries as the agent and the platforms see them.
func messages(entries []store.Entry) []chat.Message {
	msgs := make([]chat.Message, len(entries))
	for i, e := range entries {
		msgs[i] = chat.Message{Role: e.Role, Content: e.Content}
	}
	return msgs
}
