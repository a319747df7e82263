package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Gates hands out one Gate per chat, so that every delivery to a chat, and
// anything else sent there, shares that chat's rate-limit state. The zero
// value is ready to use.
type Gates struct {
	mu sync.Mutex
	m  map[gateKey]*Gate
}

type gateKey struct{ platform, chat string }

// For returns the gate of one chat on one platform, the same one every time.
func (g *Gates) For(platform, chatID string) *Gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[gateKey]*Gate)
	}
	k := gateKey{platform, chatID}
	gate := g.m[k]
	if gate == nil {
		gate = &Gate{}
		g.m[k] = gate
	}
	return gate
}

// Gate paces the changes made to one chat, lets one call at a time go to
// it, and holds the platform's penalty after a rate-limit answer: while a
// chat is blocked, nothing at all may be sent there. Because calls to a chat
// never overlap, a rate-limit answer closes the gate before anyone else's
// next call. The zero value is an open gate.
type Gate struct {
	mu           sync.Mutex
	slot         chan struct{} // holds a token while a call is in flight
	blockedUntil time.Time     // no call to the chat before this
	lastChange   time.Time     // when a message was last sent or edited
}

// Block keeps every call away from the chat until the given time, as the
// platform asked. A later block extends it; an earlier one changes nothing.
func (g *Gate) Block(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.blockedUntil) {
		g.blockedUntil = until
	}
}

// BlockedUntil tells until when the chat is under a rate-limit penalty
// (a time in the past when it is not).
func (g *Gate) BlockedUntil() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blockedUntil
}

// LastChange tells when a message was last sent or edited in the chat, the
// reference for pacing the next change.
func (g *Gate) LastChange() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastChange
}

// Do is for senders other than a Delivery (command replies, notices): it
// waits until a change may go to the chat (at least interval after the
// previous change, after any penalty, and with no other call in flight),
// then runs fn. If fn returns a *platform.RateLimitError, the chat is
// blocked for as long as it says. Do returns fn's error, or ctx's.
func (g *Gate) Do(ctx context.Context, interval time.Duration, fn func(context.Context) error) error {
	for {
		if err := g.take(ctx, nil); err != nil {
			return err
		}
		at, ok := g.reserve(time.Now(), interval, true)
		if ok {
			err := fn(ctx)
			g.penalize(err)
			g.release()
			return err
		}
		g.release()
		if err := sleep(ctx, time.Until(at)); err != nil {
			return err
		}
	}
}

// take waits for the chat's call slot; it fails when ctx ends or stop is
// closed first.
func (g *Gate) take(ctx context.Context, stop <-chan struct{}) error {
	g.mu.Lock()
	if g.slot == nil {
		g.slot = make(chan struct{}, 1)
	}
	slot := g.slot
	g.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return context.Canceled
	}
}

// release gives the call slot back.
func (g *Gate) release() {
	g.mu.Lock()
	slot := g.slot
	g.mu.Unlock()
	<-slot
}

// minPenalty is the shortest block after a rate-limit answer, so that a
// platform saying "retry after 0" is not hammered.
const minPenalty = 100 * time.Millisecond

// penalize blocks the chat if err is a rate-limit answer.
func (g *Gate) penalize(err error) {
	var rl *platform.RateLimitError
	if errors.As(err, &rl) {
		g.Block(time.Now().Add(max(rl.RetryAfter, minPenalty)))
	}
}

// reserve lets a call go out now if the chat is not blocked and, for a
// change, interval has passed since the last change (which it then records
// as now). Otherwise it returns when to ask again. The caller holds the slot.
func (g *Gate) reserve(now time.Time, interval time.Duration, change bool) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at := g.blockedUntil
	if change {
		if next := g.lastChange.Add(interval); next.After(at) {
			at = next
		}
	}
	if at.After(now) {
		return at, false
	}
	if change {
		g.lastChange = now
	}
	return now, true
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
