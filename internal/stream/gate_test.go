package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// keys lists the chats g has a gate for, sorted.
func keys(g *Gates) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for k := range g.m {
		out = append(out, k.platform+"/"+k.chat)
	}
	slices.Sort(out)
	return out
}

// holders is how many hold the gate of a chat, -1 when it has none.
func holders(g *Gates, platform, chat string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.m[gateKey{platform, chat}]
	if h == nil {
		return -1
	}
	return h.holders
}

// aMessage is what sending a message asks of the budgets.
var aMessage = spend{class: platform.Messages, cost: 1}

// changeNow records a change in the chat now, as a delivery does.
func changeNow(gate *Gate) {
	if _, ok := gate.reserve(time.Now(), aMessage); !ok {
		panic("reserve refused a change to an open gate")
	}
}

// For gives every holder of a chat the same gate, and other chats, on the
// same or another platform, other gates.
func TestGatesForOneGatePerChat(t *testing.T) {
	var g Gates
	a, doneA := g.For("telegram", "1", nil)
	defer doneA()
	a2, doneA2 := g.For("telegram", "1", nil)
	defer doneA2()
	b, doneB := g.For("telegram", "2", nil)
	defer doneB()
	c, doneC := g.For("matrix", "1", nil)
	defer doneC()
	if a == nil || a2 != a {
		t.Errorf("two holders of one chat got %p and %p", a, a2)
	}
	if b == a || c == a || b == c {
		t.Errorf("different chats share gates: %p %p %p", a, b, c)
	}
	if n := holders(&g, "telegram", "1"); n != 2 {
		t.Errorf("telegram/1 has %d holders, want 2", n)
	}
}

// done gives the gate back once, however often it is called.
func TestGatesDoneOnce(t *testing.T) {
	var g Gates
	gate, done1 := g.For("p", "c", nil)
	_, done2 := g.For("p", "c", nil)
	done1()
	done1()
	if n := holders(&g, "p", "c"); n != 1 {
		t.Fatalf("after done twice by one of two holders: %d holders, want 1", n)
	}
	g.mu.Lock()
	g.sweep(time.Now())
	g.mu.Unlock()
	if n := holders(&g, "p", "c"); n != 1 {
		t.Fatalf("a sweep forgot a held quiet gate (holders %d)", n)
	}
	done2()
	done2()
	if n := holders(&g, "p", "c"); n != 0 {
		t.Fatalf("after both holders are done: %d holders, want 0", n)
	}
	g.mu.Lock()
	g.sweep(time.Now())
	g.mu.Unlock()
	if n := holders(&g, "p", "c"); n != -1 {
		t.Errorf("a quiet gate nobody holds survived a sweep (holders %d)", n)
	}
	if again, done := g.For("p", "c", nil); again == gate {
		t.Errorf("a forgotten gate came back")
	} else {
		done()
	}
}

// Once the map reaches sweepAt, For forgets the gates nobody holds whose
// chat has been quiet for forgetAfter, and keeps held ones, busy ones, and
// ones with a recent change or a penalty that ended less than forgetAfter
// ago or still runs.
func TestGatesForgetQuietGates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gates
		t0 := time.Now()
		held, doneHeld := g.For("p", "held", nil)
		defer doneHeld()
		changeNow(held)

		open := func(chat string) *Gate {
			gate, done := g.For("p", chat, nil)
			changeNow(gate)
			done()
			return gate
		}
		blocked := open("blocked")
		blocked.Block(t0.Add(time.Hour))
		lately := open("lately-blocked")
		lately.Block(t0.Add(30 * time.Second))
		busy := open("busy")
		recent := open("recent")
		var fillers []*Gate
		for i := range 59 {
			fillers = append(fillers, open(fmt.Sprint("filler-", i)))
		}
		if n := len(keys(&g)); n != 64 {
			t.Fatalf("%d gates before the sweep, want 64 (swept too early?)", n)
		}

		time.Sleep(forgetAfter + time.Second)
		changeNow(recent)
		if err := busy.take(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		defer busy.release()

		_, doneNew := g.For("p", "new", nil) // the map holds sweepAt gates: sweeps
		defer doneNew()
		want := []string{"p/blocked", "p/busy", "p/held", "p/lately-blocked", "p/new", "p/recent"}
		if got := keys(&g); !slices.Equal(got, want) {
			t.Fatalf("after the sweep the gates are %v, want %v", got, want)
		}
		if g.sweepAt != 64 {
			t.Errorf("next sweep at %d gates, want 64", g.sweepAt)
		}
		for chat, gate := range map[string]*Gate{"held": held, "blocked": blocked, "lately-blocked": lately, "busy": busy, "recent": recent} {
			again, done := g.For("p", chat, nil)
			if again != gate {
				t.Errorf("the gate of %s, kept, changed identity", chat)
			}
			done()
		}
		again, done := g.For("p", "filler-0", nil)
		defer done()
		if again == fillers[0] {
			t.Errorf("a forgotten gate came back")
		}
	})
}

// When a sweep forgets nothing, the next one waits until the map has
// doubled, so a map of busy chats is not swept at every call.
func TestGatesSweepWhenDoubled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gates
		var dones []func()
		hold := func(chat string) {
			gate, done := g.For("p", chat, nil)
			changeNow(gate)
			dones = append(dones, done)
		}
		for i := range 65 { // the 65th call finds 64 gates, all held
			hold(fmt.Sprint("first-", i))
		}
		if n := len(keys(&g)); n != 65 || g.sweepAt != 128 {
			t.Fatalf("%d gates, next sweep at %d; want 65 and 128", n, g.sweepAt)
		}
		for _, done := range dones {
			done()
		}
		dones = nil
		time.Sleep(2 * forgetAfter)
		for i := range 63 { // up to 128 gates: no sweep yet
			hold(fmt.Sprint("second-", i))
		}
		if n := len(keys(&g)); n != 128 {
			t.Fatalf("%d gates, want 128: swept before the map doubled", n)
		}
		hold("last") // sweeps the 65 first ones, released and quiet
		if n := len(keys(&g)); n != 64 {
			t.Errorf("%d gates after the sweep, want 64", n)
		}
		if g.sweepAt != 126 {
			t.Errorf("next sweep at %d, want 126", g.sweepAt)
		}
		for _, done := range dones {
			done()
		}
	})
}

// do waits until the penalty a rate-limit answer set is over and the
// budgets hold the call's tokens, and nothing else.
func TestGateDoWaits(t *testing.T) {
	perSecond := []platform.Budget{{Classes: platform.Messages, Bucket: platform.Bucket{Rate: 1, Burst: 1}}}
	tests := []struct {
		name    string
		budgets []platform.Budget
		err     error // returned by the first call
		wait    time.Duration
	}{
		{"rate limit", nil, &platform.RateLimitError{RetryAfter: 5 * time.Second}, 5 * time.Second},
		{"wrapped rate limit", nil, fmt.Errorf("send: %w", &platform.RateLimitError{RetryAfter: 3 * time.Second}), 3 * time.Second},
		{"retry after zero", nil, &platform.RateLimitError{}, minPenalty},
		{"penalty longer than the refill", perSecond, &platform.RateLimitError{RetryAfter: 5 * time.Second}, 5 * time.Second},
		{"refill longer than the penalty", perSecond, &platform.RateLimitError{RetryAfter: time.Second / 2}, time.Second},
		{"refill only", perSecond, nil, time.Second},
		{"other errors set no penalty", nil, errors.New("boom"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var gs Gates
				g, done := gs.For("p", "c", tc.budgets)
				defer done()
				ctx := context.Background()
				start := time.Now()
				err := g.do(ctx, aMessage, func(context.Context) error { return tc.err })
				if err != tc.err {
					t.Fatalf("do returned %v, want %v", err, tc.err)
				}
				var ran time.Time
				if err := g.do(ctx, aMessage, func(context.Context) error { ran = time.Now(); return nil }); err != nil {
					t.Fatal(err)
				}
				if got := ran.Sub(start); got != tc.wait {
					t.Errorf("the next call ran after %v, want %v", got, tc.wait)
				}
			})
		})
	}
}

// A call takes a token from every budget of its class, and only when each
// keeps what the call must leave there; the other classes' budgets are
// untouched. An account's budget is one bucket for all of its chats.
func TestGateBudgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budgets := []platform.Budget{
			{Classes: platform.Messages | platform.Drafts, Bucket: platform.Bucket{Rate: 1, Burst: 3}},
			{Classes: platform.Messages | platform.Markers, Account: true, Bucket: platform.Bucket{Rate: 0.5, Burst: 4}},
		}
		var gs Gates
		a, doneA := gs.For("p", "a", budgets)
		defer doneA()
		b, doneB := gs.For("p", "b", budgets)
		defer doneB()
		now := time.Now()
		keepOne := spend{class: platform.Messages, cost: 1, keep: 1}
		for i := range 2 {
			if _, ok := a.reserve(now, keepOne); !ok {
				t.Fatalf("intermediate call %d refused with 3 tokens in the chat's budget", i+1)
			}
		}
		// The chat's budget holds 1: an intermediate call must leave it for
		// the final text, which may take it.
		if at, ok := a.reserve(now, keepOne); ok || at != now.Add(time.Second) {
			t.Errorf("a call that would spend the last token: ok %v, again at +%v; want refused until +1s", ok, at.Sub(now))
		}
		if _, ok := a.reserve(now, aMessage); !ok {
			t.Fatal("the final text was refused the token kept for it")
		}
		// Chat a spent 3 of the account's 4: chat b has its own chat budget
		// but finds 1 in the account's.
		if _, ok := b.reserve(now, aMessage); !ok {
			t.Fatal("chat b refused with a token left in the account's budget")
		}
		if at, ok := b.reserve(now, aMessage); ok || at != now.Add(2*time.Second) {
			t.Errorf("chat b over the account's budget: ok %v, again at +%v; want refused until +2s", ok, at.Sub(now))
		}
		// Typing draws on none of these budgets.
		if _, ok := a.reserve(now, spend{class: platform.Typing, cost: 1}); !ok {
			t.Error("typing refused, though no budget counts it")
		}
	})
}

// try skips a courtesy call the budgets cannot spare, without waiting.
func TestGateTrySkipsWhenShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gs Gates
		g, done := gs.For("p", "c", []platform.Budget{{Classes: platform.Messages | platform.Markers, Bucket: platform.Bucket{Rate: 0.2, Burst: 4}}})
		defer done()
		marker := spend{class: platform.Markers, cost: 2, keep: 2}
		calls := 0
		mark := func(context.Context) error { calls++; return nil }
		if ran, err := g.try(context.Background(), marker, mark); !ran || err != nil {
			t.Fatalf("a marker with 4 tokens for its 2 and the 2 it keeps: ran %v, %v", ran, err)
		}
		start := time.Now()
		if ran, err := g.try(context.Background(), marker, mark); ran || err != nil || calls != 1 {
			t.Errorf("a marker that would eat the answer's tokens: ran %v, %v, %d calls; want skipped", ran, err, calls)
		}
		if time.Since(start) != 0 {
			t.Errorf("try waited %v", time.Since(start))
		}
	})
}

// A later Block extends the penalty; an earlier one does not shorten it.
func TestGateBlockExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gate
		start := time.Now()
		g.Block(start.Add(10 * time.Second))
		g.Block(start.Add(2 * time.Second))
		if err := g.do(context.Background(), aMessage, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("do ran after %v, want 10s", got)
		}
	})
}

// Do gives up with the context's error when it ends during a penalty or
// while another call holds the chat, without running fn.
func TestGateDoContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gate
		start := time.Now()
		g.Block(start.Add(time.Hour))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(10*time.Second, cancel)
		ran := false
		err := g.do(ctx, aMessage, func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Errorf("Do during a block returned %v, ran %v; want context.Canceled without running", err, ran)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("Do returned after %v, want when the context ended (10s)", got)
		}

		// The gate is not left taken: once the penalty ends, calls go.
		if err := g.do(context.Background(), aMessage, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Hour {
			t.Errorf("the next call ran after %v, want at the penalty's end (1h)", got)
		}

		// Another call in flight: Do waits for it until its context ends.
		if err := g.take(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(context.Background(), time.Second)
		defer cancelShort()
		if err := g.do(short, aMessage, func(context.Context) error { ran = true; return nil }); !errors.Is(err, context.DeadlineExceeded) || ran {
			t.Errorf("Do while the chat is busy returned %v, ran %v; want the deadline without running", err, ran)
		}
		g.release()
	})
}

// Calls to one chat never overlap: a second Do waits for the first's fn.
func TestGateDoOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gate
		ctx := context.Background()
		spans := make(chan [2]time.Time, 2)
		call := func() {
			_ = g.do(ctx, aMessage, func(context.Context) error {
				from := time.Now()
				time.Sleep(time.Second)
				spans <- [2]time.Time{from, time.Now()}
				return nil
			})
		}
		go call()
		go call()
		a, b := <-spans, <-spans
		if a[0].Before(b[1]) && b[0].Before(a[1]) {
			t.Errorf("calls overlapped: %v–%v and %v–%v", a[0], a[1], b[0], b[1])
		}
	})
}

// With spare, a call leaves room for the next answer besides its own final
// text: one token more in a chat's own budget (its first text), two in an
// account's, which other chats draw on too (their first and final text).
// From 6 tokens that is 4 calls (2 left) and 3 (3 left).
func TestGateSpareLeavesRoomForTheNextAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			account bool
			allowed int // calls from a full bucket of 6
		}{{false, 4}, {true, 3}} {
			var gs Gates
			g, done := gs.For("p", "c", []platform.Budget{{Classes: platform.Messages, Account: tc.account, Bucket: platform.Bucket{Rate: 0.01, Burst: 6}}})
			edit := spend{class: platform.Messages, cost: 1, keep: 1, spare: true}
			n := 0
			for ; n < 10; n++ {
				if _, ok := g.reserve(time.Now(), edit); !ok {
					break
				}
			}
			done()
			if n != tc.allowed {
				t.Errorf("account %v: %d intermediate calls from 6 tokens, want %d", tc.account, n, tc.allowed)
			}
		}
	})
}

// A marker's calls are provided for at their most; those it did not make
// go back into the budgets, up to their burst.
func TestGateRefund(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gs Gates
		g, done := gs.For("p", "c", []platform.Budget{{Classes: platform.Messages | platform.Markers, Account: true, Bucket: platform.Bucket{Rate: 0.01, Burst: 5}}})
		defer done()
		marker := spend{class: platform.Markers, cost: 2}
		if _, ok := g.reserve(time.Now(), marker); !ok {
			t.Fatal("marker refused")
		}
		g.refund(marker, 1)
		g.refund(marker, 5) // never above the burst
		n := 0
		for ; n < 10; n++ {
			if _, ok := g.reserve(time.Now(), aMessage); !ok {
				break
			}
		}
		if n != 5 {
			t.Errorf("%d messages after the refunds, want the burst of 5", n)
		}
	})
}
