// Package platformtest runs platform adapters in their tests, alone or in
// the real gateway, with backends that count or script the agent's turns;
// and holds what the platforms' fake servers share.
package platformtest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/store/sqlite"

	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/memnet"
	"github.com/herald-chat/herald/internal/sim"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/stream"
)

// Run runs a with the handler h until the test ends or the returned stop
// is called, and returns once a is ready; a that stops before, or is not
// ready within readyWithin, fails the test, and so does an error from Run.
func Run(t testing.TB, a platform.Adapter, h platform.Handler, readyWithin time.Duration) (stop func()) {
	t.Helper()
	_, stop = start(t, a, readyWithin, func(ctx context.Context) error { return a.Run(ctx, h) })
	return stop
}

// Gateway is a gateway running in a test.
type Gateway struct {
	// Cancel ends the gateway's context without waiting: a crash, which
	// may come from inside the gateway (a handler).
	Cancel context.CancelFunc
	// Stop ends the gateway and waits for it; an error from its Run fails
	// the test. The test's end calls it too.
	Stop func()
	// Ready is the gateway's readiness, as /readyz reports it.
	Ready func() error
	// Runner is the gateway's runner, for what the tests ask of it
	// directly (deliveries).
	Runner *gateway.Runner
}

// GatewayOptions are a test gateway's: groups keyed per user, the allowed
// users let in everywhere, answers streamed (drafts or edits, every 300 ms
// or 24 characters, with a cursor), a second of shutdown grace, logs in
// the test's output.
func GatewayOptions(t testing.TB, allowed []string) gateway.Options {
	return gateway.Options{
		SessionKeys: chat.SessionKeyOptions{GroupPerUser: true},
		BusyMode:    "interrupt",
		Access:      gateway.Access{All: gateway.Allowlist{Users: allowed}, Platforms: map[string]gateway.Allowlist{}},
		Streaming: stream.Options{Enabled: true, Transport: "auto", EditInterval: 300 * time.Millisecond,
			BufferThreshold: 24, Cursor: " ▉", Logger: Logger(t)},
		ShutdownGrace: time.Second,
		Logger:        Logger(t),
	}
}

// StartGateway runs the real gateway (runner, delivery, store) with the
// one adapter a until the test ends or Stop is called, and returns once a
// is ready, as Run does.
func StartGateway(t testing.TB, opts gateway.Options, backend agent.Backend, st gateway.Store, a platform.Adapter, readyWithin time.Duration) *Gateway {
	t.Helper()
	runner := gateway.New(opts, backend, st, a)
	cancel, stop := start(t, a, readyWithin, runner.Run)
	return &Gateway{Cancel: cancel, Stop: stop, Ready: runner.Ready, Runner: runner}
}

// start runs run until the test ends or stop is called, and returns once
// a is ready; run ending before, or a not ready within readyWithin, fails
// the test, and so does an error from run.
func start(t testing.TB, a platform.Adapter, readyWithin time.Duration, run func(context.Context) error) (cancel context.CancelFunc, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", a.Name(), err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-a.Ready():
	case err := <-done:
		once.Do(func() {}) // it ended: nothing to stop
		cancel()
		t.Fatalf("%s stopped before it was ready: %v", a.Name(), err)
	case <-time.After(readyWithin):
		t.Fatalf("%s was not ready within %v", a.Name(), readyWithin)
	}
	return cancel, stop
}

// Logger logs into the test's output, from debug level on.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// MemState is a platform.StateStore in memory, for adapters tested
// without the gateway's store.
type MemState map[string]string

// State returns the value kept under name.
func (m MemState) State(_ context.Context, name string) (string, bool, error) {
	v, ok := m[name]
	return v, ok, nil
}

// SetState keeps value under name.
func (m MemState) SetState(_ context.Context, name, value string) error {
	m[name] = value
	return nil
}

// Changes lets tests wait on a fake server's state: the server calls
// Changed after each change, holding the lock it was made with, and
// WaitFor checks a condition again after each.
type Changes struct {
	mu sync.Locker
	ch chan struct{}
}

// NewChanges returns Changes for a state guarded by mu.
func NewChanges(mu sync.Locker) *Changes {
	return &Changes{mu: mu, ch: make(chan struct{})}
}

// Changed wakes everyone waiting for a change. The lock is held.
func (c *Changes) Changed() {
	close(c.ch)
	c.ch = make(chan struct{})
}

// Next is closed at the next change. The lock is held.
func (c *Changes) Next() <-chan struct{} { return c.ch }

// WaitFor waits until cond, called after each change, returns true, or
// ctx ends. The lock is not held.
func (c *Changes) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ch := c.ch
		c.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Counting wraps a backend, recording every turn it ran and its result.
type Counting struct {
	agent.Backend
	mu      sync.Mutex
	turns   []agent.Turn
	results map[string]agent.Result // by the user's message
}

// Count records the turns b runs.
func Count(b agent.Backend) *Counting {
	return &Counting{Backend: b, results: map[string]agent.Result{}}
}

// Run runs the turn on the wrapped backend and records it.
func (c *Counting) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	c.mu.Lock()
	c.turns = append(c.turns, turn)
	c.mu.Unlock()
	res := c.Backend.Run(ctx, turn, emit)
	c.mu.Lock()
	c.results[turn.Message] = res
	c.mu.Unlock()
	return res
}

// Turns are the turns run so far, in order.
func (c *Counting) Turns() []agent.Turn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]agent.Turn(nil), c.turns...)
}

// Calls counts the turns run for a message.
func (c *Counting) Calls(message string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.turns {
		if t.Message == message {
			n++
		}
	}
	return n
}

// Final returns what the chat must show at the end of the turn for a
// message, once the backend has answered it.
func (c *Counting) Final(message string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, ok := c.results[message]
	return format.StripThinking(res.FinalResponse), ok
}

// Store opens a SQLite store in the test's directory, closed when the
// test ends.
func Store(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Serve starts an HTTP server for a fake platform with h, on ln when given
// (a memnet listener, for a test in a synctest bubble), else on a loopback
// port.
func Serve(h http.Handler, ln net.Listener) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	if ln != nil {
		ts.Listener.Close()
		ts.Listener = ln
	}
	ts.Start()
	return ts
}

// Waiter is a fake server whose state changes can be waited on.
type Waiter interface {
	WaitFor(ctx context.Context, cond func() bool) error
}

// WaitFor waits until cond holds, re-checking it whenever srv's state
// changes, for at most timeout; the test fails saying what it waited for.
func WaitFor(t testing.TB, srv Waiter, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Sim starts the Hermes API simulator on the network n, until the test
// ends, and returns it with a backend that talks to it, counting its
// turns.
func Sim(t testing.TB, n *memnet.Network, opts sim.Options) (*sim.Server, *Counting) {
	opts.AllowSessionWithoutKey = true
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := sim.New(opts)
	url := n.Serve(t, s)
	return s, Count(hermes.New(hermes.Config{URL: url, ConnectTimeout: time.Second, IdleTimeout: time.Minute, HTTPClient: n.Client()}))
}

// Scripted is a backend that streams a fixed markdown answer in pieces of
// Piece bytes (whole characters), one every Every, like a model writing.
type Scripted struct {
	Answer string
	Piece  int
	Every  time.Duration
}

// Name names the backend.
func (s Scripted) Name() string { return "scripted" }

// Run streams the answer.
func (s Scripted) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	tick := time.NewTicker(s.Every)
	defer tick.Stop()
	rest := s.Answer
	for rest != "" {
		n := min(s.Piece, len(rest))
		for n < len(rest) && rest[n]&0xC0 == 0x80 {
			n++ // not a character's first byte
		}
		emit(agent.Event{Kind: agent.EventDelta, Text: rest[:n]})
		rest = rest[n:]
		select {
		case <-tick.C:
		case <-ctx.Done():
			return agent.Result{Err: ctx.Err(), SessionID: turn.SessionID}
		}
	}
	return agent.Result{FinalResponse: s.Answer, Text: s.Answer, SessionID: turn.SessionID}
}
