package gateway

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/texts"
)

func TestSessionResetDue(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 4, h, m, 0, 0, time.Local) }
	for _, c := range []struct {
		mode       string
		last, now  time.Time
		wantReason bool
	}{
		{"none", at(0, 0), at(23, 0), false},
		{"idle", at(10, 0), at(11, 59), false},
		{"idle", at(10, 0), at(12, 1), true},
		{"daily", at(3, 59), at(4, 0), true},
		{"daily", at(4, 0), at(23, 0), false},
		{"daily", at(5, 0).AddDate(0, 0, -1), at(3, 0), false}, // after yesterday's 4:00
		{"daily", at(3, 0).AddDate(0, 0, -1), at(3, 0), true},
		{"both", at(10, 0), at(12, 1), true},
		{"both", at(3, 0), at(4, 30), true},
	} {
		p := SessionReset{Mode: c.mode, Idle: 2 * time.Hour, AtHour: 4}
		if got := p.due(c.last, c.now); (got != "") != c.wantReason {
			t.Errorf("%s, last %v, now %v: %q, want a reason %v", c.mode, c.last, c.now, got, c.wantReason)
		}
	}
}

// A conversation idle for longer than the policy allows starts afresh:
// the next turn has a new session and no history, and the user is told.
func TestSessionResetWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.SessionReset = SessionReset{Mode: "idle", Idle: time.Hour, Notify: true}
		h := start(t, opts, &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "one", "e1"))
		h.finalIs("dm-alice", "echo: one")
		h.plat.deliver(t, dm("alice", "two", "e2"))
		h.finalIs("dm-alice", "echo: one", "echo: two")
		time.Sleep(2 * time.Hour)
		h.plat.deliver(t, dm("alice", "three", "e3"))
		eventually(t, "the third answer", func() bool { return len(h.plat.shown("dm-alice")) == 4 })
		h.allSettled()
		shown := h.plat.shown("dm-alice")
		if !strings.HasPrefix(shown[2], texts.SessionReset("no message for 2h")[:20]) || !strings.Contains(shown[2], "no message for 2h 00m") || shown[3] != "echo: three" {
			t.Errorf("chat shows %q, want the reset notice then the answer", shown)
		}
		turns := h.be.turns()
		if turns[1].SessionID != turns[0].SessionID || turns[2].SessionID == turns[1].SessionID || len(turns[2].History) != 0 {
			t.Errorf("sessions %q %q %q, third history %v; want the third in a new, empty session", turns[0].SessionID, turns[1].SessionID, turns[2].SessionID, turns[2].History)
		}
	})
}

// session_reset.notify_exclude_platforms: the conversation starts afresh
// as ever, and the user on that platform is not told.
func TestSessionResetQuietOnAnExcludedPlatform(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.SessionReset = SessionReset{Mode: "idle", Idle: time.Hour, Notify: true, Quiet: []string{"fake"}}
		h := start(t, opts, &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "one", "e1"))
		h.finalIs("dm-alice", "echo: one")
		time.Sleep(2 * time.Hour)
		h.plat.deliver(t, dm("alice", "two", "e2"))
		h.finalIs("dm-alice", "echo: one", "echo: two")
		if turns := h.be.turns(); turns[1].SessionID == turns[0].SessionID {
			t.Errorf("the second message stayed in session %q", turns[0].SessionID)
		}
	})
}

// A reset trigger starts a new conversation as /new does.
func TestResetTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.ResetTriggers = []string{"/new", "/reset", "fresh start"}
		h := start(t, opts, &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "one", "e1"))
		h.finalIs("dm-alice", "echo: one")
		h.plat.deliver(t, dm("alice", "  Fresh Start ", "e2"))
		h.finalIs("dm-alice", "echo: one", texts.NewSession)
		h.plat.deliver(t, dm("alice", "two", "e3"))
		h.finalIs("dm-alice", "echo: one", texts.NewSession, "echo: two")
		if turns := h.be.turns(); len(turns) != 2 || turns[1].SessionID == turns[0].SessionID {
			t.Errorf("turns %+v, want two in different sessions", turns)
		}
	})
}
