package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Gates hands out one Gate per chat, so that every delivery to a chat, and
// anything else sent there, shares that chat's budgets and rate-limit
// state, and keeps the budgets of each bot account, which all its chats
// share. A gate nobody holds whose chat has been quiet for a while is
// forgotten, so that a gateway serving many chats over months does not
// keep one for each. The zero value is ready to use.
type Gates struct {
	mu       sync.Mutex
	m        map[gateKey]*heldGate
	accounts map[accountKey]*account
	sweepAt  int // the map's size at which forgotten gates are swept out
}

type gateKey struct{ platform, chat string }

// accountKey names an account's budget: the same declared budget of the
// same platform is one bucket.
type accountKey struct {
	platform string
	budget   platform.Budget
}

// account is a budget of a whole bot account, shared by its chats' gates.
type account struct {
	mu     sync.Mutex
	tokens *platform.Tokens
}

// heldGate is a gate and how many hold it.
type heldGate struct {
	gate    *Gate
	holders int
}

// forgetAfter is how long a chat must have been quiet, free of any
// penalty and with its budgets full, before its gate may be forgotten: a
// new gate then allows nothing the old one would have refused.
const forgetAfter = time.Minute

// For returns the gate of one chat on one platform, the same one to every
// holder, with the platform's budgets for the chat; done gives it back,
// and must be called once the holder no longer sends to the chat.
func (g *Gates) For(platformName, chatID string, budgets []platform.Budget) (gate *Gate, done func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[gateKey]*heldGate)
		g.accounts = make(map[accountKey]*account)
	}
	now := time.Now()
	if len(g.m) >= g.sweepAt {
		g.sweep(now)
	}
	k := gateKey{platformName, chatID}
	h := g.m[k]
	if h == nil {
		h = &heldGate{gate: g.newGate(platformName, budgets, now)}
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

// newGate makes a chat's gate, its budgets full, sharing the account's
// budgets with the platform's other chats. The caller holds g.mu.
func (g *Gates) newGate(platformName string, budgets []platform.Budget, now time.Time) *Gate {
	gate := &Gate{}
	for _, b := range budgets {
		if !b.Account {
			gate.limits = append(gate.limits, limit{classes: b.Classes, tokens: b.Full(now)})
			continue
		}
		k := accountKey{platformName, b}
		a := g.accounts[k]
		if a == nil {
			a = &account{tokens: b.Full(now)}
			g.accounts[k] = a
		}
		gate.limits = append(gate.limits, limit{classes: b.Classes, tokens: a.tokens, shared: &a.mu})
	}
	return gate
}

// sweep forgets the gates nobody holds whose chats are quiet, and sets the
// next sweep for when the map has doubled, so sweeping costs little per
// call. The caller holds g.mu.
func (g *Gates) sweep(now time.Time) {
	for k, h := range g.m {
		if h.holders == 0 && h.gate.quietSince(now, now.Add(-forgetAfter)) {
			delete(g.m, k)
		}
	}
	g.sweepAt = max(2*len(g.m), 64)
}

// Gate spends one chat's budgets, lets one call at a time go to it, and
// holds the platform's penalty after a rate-limit answer: while a chat is
// blocked, nothing at all may be sent there. Because calls to a chat never
// overlap, a rate-limit answer closes the gate before anyone else's next
// call. The zero value is an open gate with no budgets.
type Gate struct {
	mu           sync.Mutex
	slot         chan struct{} // holds a token while a call is in flight
	blockedUntil time.Time     // no call to the chat before this
	lastChange   time.Time     // when a message or draft was last sent or edited
	limits       []limit
}

// limit is one budget as the gate spends it: its own bucket, or an
// account's, guarded by the account's lock.
type limit struct {
	classes platform.Class
	tokens  *platform.Tokens
	shared  *sync.Mutex // the account's; nil for the chat's own budget
}

// spend is what a call asks of the budgets: its class, how many tokens it
// takes, and what it must leave in the budgets text draws on: keep tokens
// for its own answer's text still to come (its final text), and, with
// spare, room for the next answer to show at once (its first and final
// text on an account's budget, which other chats share; its first in a
// chat's own). Markers have nothing kept for them: they are skipped
// before text is delayed.
type spend struct {
	class platform.Class
	cost  int
	keep  int
	spare bool
}

// keepIn is how many tokens s must leave in the budget l.
func (s spend) keepIn(l limit) float64 {
	if l.classes&(platform.Messages|platform.Drafts) == 0 {
		return 0
	}
	n := s.keep
	switch {
	case s.spare && l.shared != nil:
		n += 2
	case s.spare:
		n++
	}
	return float64(n)
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

// LastChange tells when a message or draft was last sent or edited in the
// chat, the reference for the streaming edit interval.
func (g *Gate) LastChange() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastChange
}

// do waits until s may go to the chat (after any penalty, with no other
// call in flight, and the budgets holding what it needs), then runs fn.
// If fn returns a *platform.RateLimitError, the chat is blocked for as
// long as it says. It returns fn's error, or ctx's.
func (g *Gate) do(ctx context.Context, s spend, fn func(context.Context) error) error {
	for {
		if err := g.take(ctx, nil); err != nil {
			return err
		}
		at, ok := g.reserve(time.Now(), s)
		if ok {
			err := fn(ctx)
			g.penalize(err)
			g.release()
			return err
		}
		g.release()
		if !platform.Sleep(ctx, time.Until(at)) {
			return ctx.Err()
		}
	}
}

// try is do for calls that are a courtesy (a turn's marker): when the
// budgets do not hold what s needs now, it is skipped, and try reports
// false.
func (g *Gate) try(ctx context.Context, s spend, fn func(context.Context) error) (bool, error) {
	if err := g.take(ctx, nil); err != nil {
		return false, err
	}
	defer g.release()
	if _, ok := g.reserve(time.Now(), s); !ok {
		return false, nil
	}
	err := fn(ctx)
	g.penalize(err)
	return true, err
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

// reserve lets a call go out now if the chat is not blocked and every
// budget of its class holds its cost besides what it must keep: then the
// tokens are taken (and a message or draft is recorded as the chat's last
// change). Otherwise it returns when to ask again. The caller holds the
// slot.
func (g *Gate) reserve(now time.Time, s spend) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lockShared()
	defer g.unlockShared()
	at := g.blockedUntil
	for _, l := range g.limits {
		if l.classes&s.class == 0 {
			continue
		}
		when := l.tokens.When(now, float64(s.cost)+s.keepIn(l))
		if when.IsZero() {
			// More than the budget can ever hold: wait for it to be full.
			when = l.tokens.When(now, float64(l.tokens.Shape().Burst))
		}
		if when.After(at) {
			at = when
		}
	}
	if at.After(now) {
		return at, false
	}
	for _, l := range g.limits {
		if l.classes&s.class != 0 {
			l.tokens.Take(now, float64(s.cost))
		}
	}
	if s.class&(platform.Messages|platform.Drafts) != 0 {
		g.lastChange = now
	}
	return now, true
}

// refund gives back n of the tokens s took, for calls that were not made.
func (g *Gate) refund(s spend, n int) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lockShared()
	defer g.unlockShared()
	for _, l := range g.limits {
		if l.classes&s.class != 0 {
			l.tokens.Return(now, float64(n))
		}
	}
}

// budgets returns, for each budget of s's class, its level and shape at
// now less what s must keep there, for planning how to spread what is
// left.
func (g *Gate) budgets(now time.Time, s spend) []spare {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lockShared()
	defer g.unlockShared()
	var out []spare
	for _, l := range g.limits {
		if l.classes&s.class != 0 {
			keep := s.keepIn(l)
			out = append(out, spare{level: l.tokens.Level(now) - keep, room: float64(l.tokens.Shape().Burst) - keep, rate: l.tokens.Shape().Rate})
		}
	}
	return out
}

// lockShared and unlockShared take the account budgets' locks, in the
// gate's order, which is the same for every gate of a platform.
func (g *Gate) lockShared() {
	for _, l := range g.limits {
		if l.shared != nil {
			l.shared.Lock()
		}
	}
}

func (g *Gate) unlockShared() {
	for _, l := range g.limits {
		if l.shared != nil {
			l.shared.Unlock()
		}
	}
}

// quietSince tells whether the chat has had no change and no penalty
// since t, no call is in flight, and its own budgets are full at now.
func (g *Gate) quietSince(now, t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.slot) != 0 || !g.lastChange.Before(t) || !g.blockedUntil.Before(t) {
		return false
	}
	for _, l := range g.limits {
		if l.shared == nil && l.tokens.Level(now) < float64(l.tokens.Shape().Burst) {
			return false
		}
	}
	return true
}
