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

// changeNow records a change in the chat now, as a delivery does.
func changeNow(gate *Gate) {
	if _, ok := gate.reserve(time.Now(), 0, true); !ok {
		panic("reserve refused a change to an open gate")
	}
}

// For gives every holder of a chat the same gate, and other chats, on the
// same or another platform, other gates.
func TestGatesForOneGatePerChat(t *testing.T) {
	var g Gates
	a, doneA := g.For("telegram", "1")
	defer doneA()
	a2, doneA2 := g.For("telegram", "1")
	defer doneA2()
	b, doneB := g.For("telegram", "2")
	defer doneB()
	c, doneC := g.For("matrix", "1")
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
	gate, done1 := g.For("p", "c")
	_, done2 := g.For("p", "c")
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
	if again, done := g.For("p", "c"); again == gate {
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
		held, doneHeld := g.For("p", "held")
		defer doneHeld()
		changeNow(held)

		open := func(chat string) *Gate {
			gate, done := g.For("p", chat)
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

		_, doneNew := g.For("p", "new") // the map holds sweepAt gates: sweeps
		defer doneNew()
		want := []string{"p/blocked", "p/busy", "p/held", "p/lately-blocked", "p/new", "p/recent"}
		if got := keys(&g); !slices.Equal(got, want) {
			t.Fatalf("after the sweep the gates are %v, want %v", got, want)
		}
		if g.sweepAt != 64 {
			t.Errorf("next sweep at %d gates, want 64", g.sweepAt)
		}
		for chat, gate := range map[string]*Gate{"held": held, "blocked": blocked, "lately-blocked": lately, "busy": busy, "recent": recent} {
			again, done := g.For("p", chat)
			if again != gate {
				t.Errorf("the gate of %s, kept, changed identity", chat)
			}
			done()
		}
		again, done := g.For("p", "filler-0")
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
			gate, done := g.For("p", chat)
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

// Do waits until the penalty a rate-limit answer set and the interval
// since the last change are over, and nothing else.
func TestGateDoWaits(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		err      error // returned by the first call
		wait     time.Duration
	}{
		{"rate limit", 0, &platform.RateLimitError{RetryAfter: 5 * time.Second}, 5 * time.Second},
		{"wrapped rate limit", 0, fmt.Errorf("send: %w", &platform.RateLimitError{RetryAfter: 3 * time.Second}), 3 * time.Second},
		{"retry after zero", 0, &platform.RateLimitError{}, minPenalty},
		{"penalty longer than the interval", time.Second, &platform.RateLimitError{RetryAfter: 5 * time.Second}, 5 * time.Second},
		{"interval longer than the penalty", 10 * time.Second, &platform.RateLimitError{RetryAfter: 5 * time.Second}, 10 * time.Second},
		{"interval only", 2 * time.Second, nil, 2 * time.Second},
		{"other errors set no penalty", 0, errors.New("boom"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g Gate
				ctx := context.Background()
				start := time.Now()
				err := g.Do(ctx, tc.interval, func(context.Context) error { return tc.err })
				if err != tc.err {
					t.Fatalf("Do returned %v, want %v", err, tc.err)
				}
				var ran time.Time
				if err := g.Do(ctx, tc.interval, func(context.Context) error { ran = time.Now(); return nil }); err != nil {
					t.Fatal(err)
				}
				if got := ran.Sub(start); got != tc.wait {
					t.Errorf("the next call ran after %v, want %v", got, tc.wait)
				}
			})
		})
	}
}

// A later Block extends the penalty; an earlier one does not shorten it.
func TestGateBlockExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gate
		start := time.Now()
		g.Block(start.Add(10 * time.Second))
		g.Block(start.Add(2 * time.Second))
		if err := g.Do(context.Background(), 0, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("Do ran after %v, want 10s", got)
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
		err := g.Do(ctx, 0, func(context.Context) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Errorf("Do during a block returned %v, ran %v; want context.Canceled without running", err, ran)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("Do returned after %v, want when the context ended (10s)", got)
		}

		// The gate is not left taken: once the penalty ends, calls go.
		if err := g.Do(context.Background(), 0, func(context.Context) error { return nil }); err != nil {
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
		if err := g.Do(short, 0, func(context.Context) error { ran = true; return nil }); !errors.Is(err, context.DeadlineExceeded) || ran {
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
			_ = g.Do(ctx, 0, func(context.Context) error {
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
