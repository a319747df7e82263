package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Gates hands out one Gate per chat, so that every delivery to a chat, and
// anything else sent there, shares that chat's rate-limit state. A gate
// nobody holds whose chat has been quiet for a while is forgotten, so that
// a gateway serving many chats over months does not keep one for each. The
// zero value is ready to use.
type Gates struct {
	mu      sync.Mutex
	m       map[gateKey]*heldGate
	sweepAt int // the map's size at which forgotten gates are swept out
}

type gateKey struct{ platform, chat string }

// heldGate is a gate and how many hold it.
type heldGate struct {
	gate    *Gate
	holders int
}

// forgetAfter is how long a chat must have been quiet, and free of any
// penalty, before its gate may be forgotten: longer than any interval a
// platform paces changes by, so a new gate allows nothing the old one
// would have refused.
const forgetAfter = time.Minute

// For returns the gate of one chat on one platform, the same one to every
// holder; done gives it back, and must be called once the holder no
// longer sends to the chat.
func (g *Gates) For(platform, chatID string) (gate *Gate, done func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[gateKey]*heldGate)
	}
	if len(g.m) >= g.sweepAt {
		g.sweep(time.Now())
	}
	k := gateKey{platform, chatID}
	h := g.m[k]
	if h == nil {
		h = &heldGate{gate: &Gate{}}
		g.m[k] = h
	}
	h.holders++
	var once sync.Once
	return h.gate, func() {
		once.Do(func() {
			g.mu.Lock()
			h.holders--
			g.mu.Unlock()
		})
	}
}

// sweep forgets the gates nobody holds whose chats are quiet, and sets the
// next sweep for when the map has doubled, so sweeping costs little per
// call. The caller holds g.mu.
func (g *Gates) sweep(now time.Time) {
	for k, h := range g.m {
		if h.holders == 0 && h.gate.quietSince(now.Add(-forgetAfter)) {
			delete(g.m, k)
		}
	}
	g.sweepAt = max(2*len(g.m), 64)
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

// quietSince tells whether the chat has had no change and no penalty
// since t, and no call is in flight.
func (g *Gate) quietSince(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.slot) == 0 && g.lastChange.Before(t) && g.blockedUntil.Before(t)
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
