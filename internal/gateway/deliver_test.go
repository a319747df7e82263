package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/texts"
)

// deliverOptions are the test options with a configured home chat.
func deliverOptions() Options {
	opts := defaultOptions()
	opts.Homes = map[string]chat.Target{"fake": {ChatID: "home"}}
	return opts
}

// deliver asks the runner for a delivery and fails the test if it refuses.
func (h *harness) deliver(key, target, text string) store.Delivery {
	h.t.Helper()
	d, _, err := h.runner.Deliver(context.Background(), key, target, text)
	if err != nil {
		h.t.Fatalf("delivering %q to %q: %v", key, target, err)
	}
	return d
}

// settled waits until every send of a delivery is settled, and returns it.
func (h *harness) settled(id int64) store.Delivery {
	h.t.Helper()
	var d store.Delivery
	eventually(h.t, "the delivery to be settled", func() bool {
		var err error
		if d, err = h.runner.DeliveryState(context.Background(), id); err != nil {
			h.t.Fatal(err)
		}
		for _, s := range d.Sends {
			if s.Status == store.Queued || s.Status == store.Sending {
				return false
			}
		}
		return true
	})
	return d
}

func TestDeliverToTargets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, deliverOptions(), &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "hi", "e1"))
		h.finalIs("dm-alice", "echo: hi")
		sessionID, _, err := h.store.SessionID(context.Background(), "fake:dm:dm-alice")
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []struct {
			target string
			chats  []string
		}{
			{"home", []string{"home"}},
			{"all", []string{"home"}},
			{"fake", []string{"home"}},
			{"fake:dm-alice", []string{"dm-alice"}},
			{"fake:home:topic", []string{"home"}},
			{"origin:" + sessionID, []string{"dm-alice"}},
			{"fake, fake:dm-alice ,home", []string{"home", "dm-alice"}},
		} {
			text := fmt.Sprintf("report %d", i)
			d := h.settled(h.deliver(fmt.Sprint(i), c.target, text).ID)
			if len(d.Sends) != len(c.chats) {
				t.Fatalf("%q: sends %+v, want to %q", c.target, d.Sends, c.chats)
			}
			for j, s := range d.Sends {
				if s.Status != store.Sent || s.Target.ChatID != c.chats[j] || len(s.MessageIDs) != 1 {
					t.Errorf("%q: send %d is %+v, want sent to %s", c.target, j, s, c.chats[j])
				}
			}
			if s := d.Sends[0]; c.target == "fake:home:topic" && s.Target.ThreadID != "topic" {
				t.Errorf("%q went to thread %q", c.target, s.Target.ThreadID)
			}
		}
		// What reached a conversation is in its transcript as a notice,
		// which the agent is never given.
		var notices []string
		for _, e := range h.transcript("dm-alice") {
			if e.Role == chat.Notice {
				notices = append(notices, e.Content)
			}
		}
		if !slices.Equal(notices, []string{"report 3", "report 5", "report 6"}) {
			t.Errorf("alice's transcript holds the notices %q, want the three reports sent there", notices)
		}
		h.plat.deliver(t, dm("alice", "next", "e2"))
		h.finalIs("dm-alice", "echo: hi", "report 3", "report 5", "report 6", "echo: next")
		if hist := h.be.turns()[1].History; slices.ContainsFunc(hist, func(m chat.Message) bool { return strings.HasPrefix(m.Content, "report") }) {
			t.Errorf("the agent was given a delivered message: %+v", hist)
		}
		if got := h.plat.shown("home"); len(got) != 5 || got[0] != "report 0" || got[3] != "report 4" || got[4] != "report 6" {
			t.Errorf("the home chat shows %q", got)
		}

		// mallory is not allowed: her DM made the chat known, not a place
		// for reports.
		h.plat.deliver(t, dm("mallory", "hello?", "e9"))
		h.allSettled()
		for _, target := range []string{"", "nosuch", "nosuch:1", "fake:stranger", "fake:dm-alice:9", "origin:20260101_000000_abcdef", "fake,nosuch", "fake:dm-mallory"} {
			bad := target[strings.LastIndex(target, ",")+1:]
			if _, _, err := h.runner.Deliver(context.Background(), "bad-"+target, target, "x"); !errors.Is(err, ErrUnknownTarget) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
				t.Errorf("target %q: %v, want ErrUnknownTarget naming it", target, err)
			}
		}
		if got := h.plat.shown("stranger"); len(got) != 0 {
			t.Errorf("an unknown chat got %q", got)
		}
	})
}

func TestDeliverWithoutAHome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		for _, target := range []string{"home", "all", "fake"} {
			if _, _, err := h.runner.Deliver(context.Background(), target, target, "x"); !errors.Is(err, ErrUnknownTarget) || !strings.Contains(err.Error(), "home channel") {
				t.Errorf("target %q without a home: %v, want ErrUnknownTarget saying there is no home channel", target, err)
			}
		}
	})
}

func TestDeliverToAnyChatWhenAllowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.DeliverAnyChat = true
		h := start(t, opts, &backend{answer: echo}, "")
		h.settled(h.deliver("k", "fake:stranger", "hello").ID)
		h.finalIs("stranger", "hello")
		// A chat id with colons stays whole unless its end is a thread's id.
		for target, want := range map[string]chat.Target{
			"fake:!abc:example.org":       {ChatID: "!abc:example.org"},
			"fake:!abc:example.org:$root": {ChatID: "!abc:example.org", ThreadID: "$root"},
			"fake:-100:17":                {ChatID: "-100", ThreadID: "17"},
		} {
			d := h.settled(h.deliver(target, target, "x").ID)
			if got := d.Sends[0].Target; got.ChatID != want.ChatID || got.ThreadID != want.ThreadID {
				t.Errorf("%s went to %+v, want %+v", target, got, want)
			}
		}
	})
}

func TestDeliverOncePerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, deliverOptions(), &backend{answer: echo}, path)
		first := h.deliver("job-1", "home", "the report")
		h.settled(first.ID)
		again, created, err := h.runner.Deliver(context.Background(), "job-1", "home", "the report")
		if err != nil || created || again.ID != first.ID {
			t.Errorf("the same key again: %+v, created %v, %v; want the first delivery", again, created, err)
		}
		if _, _, err := h.runner.Deliver(context.Background(), "job-1", "home", "another report"); !errors.Is(err, ErrKeyReused) {
			t.Errorf("the key with another text: %v, want ErrKeyReused", err)
		}
		// A key is its delivery even when its target names no chat any
		// more: a retry after /new replaced the session it named.
		h.plat.deliver(t, dm("alice", "hi", "e1"))
		h.finalIs("dm-alice", "echo: hi")
		sessionID, _, _ := h.store.SessionID(context.Background(), "fake:dm:dm-alice")
		origin := h.deliver("job-2", "origin:"+sessionID, "to alice")
		h.settled(origin.ID)
		h.plat.deliver(t, dm("alice", "/new", "e2"))
		h.finalIs("dm-alice", "echo: hi", "to alice", texts.NewSession)
		if again, created, err := h.runner.Deliver(context.Background(), "job-2", "origin:"+sessionID, "to alice"); err != nil || created || again.ID != origin.ID {
			t.Errorf("the key again after /new: %+v, created %v, %v; want the first delivery", again, created, err)
		}
		h.stop()

		// And after a restart.
		h2 := start(t, deliverOptions(), &backend{answer: echo}, path)
		h2.plat.adopt(h.plat)
		if again, created, err := h2.runner.Deliver(context.Background(), "job-1", "home", "the report"); err != nil || created || again.ID != first.ID {
			t.Errorf("the same key after a restart: %+v, created %v, %v", again, created, err)
		}
		h2.stop()
		if got := h2.plat.shown("home"); len(got) != 1 {
			t.Errorf("the home chat shows %q, want the report once", got)
		}
	})
}

// unready is a platform that never connects: what is delivered to it
// stays journalled.
type unready struct{ *fakePlatform }

func (unready) Ready() <-chan struct{} { return nil }

// A kill after the delivery was journalled, before its call: the next start
// sends it, once.
func TestDeliveryJournalledBeforeAKillIsSentAfterTheRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		h := startOn(t, deliverOptions(), &backend{answer: echo}, path, func(f *fakePlatform) platform.Adapter { return unready{f} })
		d := h.deliver("job-1", "home", "the report")
		h.crash()

		h2 := start(t, deliverOptions(), &backend{answer: echo}, path)
		if got := h2.settled(d.ID); got.Sends[0].Status != store.Sent {
			t.Errorf("after the restart the delivery is %+v, want sent", got)
		}
		h2.finalIs("home", "the report")
		if _, created, err := h2.runner.Deliver(context.Background(), "job-1", "home", "the report"); err != nil || created {
			t.Errorf("the key again after the restart: created %v, %v", created, err)
		}
		h2.stop()
		if got := h2.plat.shown("home"); len(got) != 1 {
			t.Errorf("the home chat shows %q, want the report once", got)
		}
	})
}

// A kill inside the call, after the platform applied it: the send was
// marked sending before the call, so the restart does not send it again
// and reports it uncertain.
func TestDeliveryKilledInsideItsCallIsNotSentTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		wrap, wait := killing(true, func(text string) bool { return text == "the report" })
		h := startOn(t, deliverOptions(), &backend{answer: echo}, path, wrap)
		d := h.deliver("job-1", "home", "the report")
		wait(h)

		h2 := start(t, deliverOptions(), &backend{answer: echo}, path)
		h2.plat.adopt(h.plat)
		got := h2.settled(d.ID)
		if s := got.Sends[0]; s.Status != store.Uncertain || s.Error == "" {
			t.Errorf("after the restart the send is %+v, want uncertain with why", s)
		}
		h2.stop()
		if got := h2.plat.shown("home"); len(got) != 1 || got[0] != "the report" {
			t.Errorf("the home chat shows %q, want the report once", got)
		}
	})
}

func TestDeliveriesToAChatKeepTheirOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, deliverOptions(), &backend{answer: echo}, "")
		var want []string
		var last store.Delivery
		for i := range 30 {
			want = append(want, fmt.Sprintf("report %d", i))
			last = h.deliver(fmt.Sprint(i), "home", want[i])
		}
		h.settled(last.ID)
		h.finalIs("home", want...)
	})
}

func TestSetHome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := deliverOptions()
		// carol may talk in every group, but is not named.
		opts.Access.Platforms = map[string]Allowlist{"fake": {GroupChats: []string{"*"}}}
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: echo}, path)

		h.plat.deliver(t, group("carol", "/sethome", "e1", true))
		h.finalIs("room", texts.HomeRefused)
		h.settled(h.deliver("k1", "fake", "to the configured home").ID)
		h.finalIs("home", "to the configured home")

		h.plat.deliver(t, group("alice", "!set-home", "e2", true))
		h.finalIs("room", texts.HomeRefused, texts.HomeSet("Room"))
		h.settled(h.deliver("k2", "fake", "to the new home").ID)
		h.finalIs("room", texts.HomeRefused, texts.HomeSet("Room"), "to the new home")
		h.stop()

		// It is kept across restarts.
		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.settled(h2.deliver("k3", "home", "still there").ID)
		h2.finalIs("room", "still there")
		if got := h2.plat.shown("home"); len(got) != 0 {
			t.Errorf("the configured home got %q after /sethome", got)
		}
	})
}
