// Package platformtest runs platform adapters in their tests.
package platformtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Run runs a with the handler h until the test ends or the returned stop
// is called, and returns once a is ready; a that stops before, or is not
// ready within readyWithin, fails the test, and so does an error from Run.
func Run(t testing.TB, a platform.Adapter, h platform.Handler, readyWithin time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, h) }()
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
		t.Fatalf("%s stopped before it was ready: %v", a.Name(), err)
	case <-time.After(readyWithin):
		t.Fatalf("%s was not ready within %v", a.Name(), readyWithin)
	}
	return stop
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
