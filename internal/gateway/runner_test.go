package gateway

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/texts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	t      *testing.T
	plat   *fakePlatform
	be     *backend
	store  *sqlite.Store
	runner *Runner
	cancel context.CancelFunc
	done   chan error
}

func defaultOptions() Options {
	return Options{
		SessionKeys:   chat.SessionKeyOptions{GroupPerUser: true},
		BusyMode:      "interrupt",
		Access:        Access{All: Allowlist{Users: []string{"alice", "bob"}}},
		Streaming:     stream.Options{Enabled: true, Transport: "auto", EditInterval: time.Millisecond, BufferThreshold: 1, Cursor: " ▉"},
		ShutdownGrace: 5 * time.Second,
	}
}

// start runs a runner over a store file (a new one when path is empty).
func start(t *testing.T, opts Options, be *backend, path string) *harness {
	t.Helper()
	return startOn(t, opts, be, path, func(f *fakePlatform) platform.Adapter { return f })
}

// startOn is start with the fake platform wrapped by wrap.
func startOn(t *testing.T, opts Options, be *backend, path string, wrap func(*fakePlatform) platform.Adapter) *harness {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "state.db")
	}
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, plat: newFakePlatform("fake"), be: be, store: st, done: make(chan error, 1)}
	h.runner = New(opts, be, st, wrap(h.plat))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.runner.Run(ctx) }()
	<-h.plat.ready
	t.Cleanup(func() { h.stop() })
	return h
}

// stop shuts the runner down gracefully and closes the store; it is safe to
// call twice.
func (h *harness) stop() error {
	h.cancel()
	err, ok := <-h.done
	if ok {
		close(h.done)
		h.store.Close()
	}
	return err
}

func (h *harness) finalIs(chatID string, want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !reflect.DeepEqual(h.plat.shown(chatID), want) {
		if time.Now().After(deadline) {
			h.t.Fatalf("chat %s shows %.200q, want %.200q", chatID, h.plat.shown(chatID), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) pending() []store.Turn {
	turns, err := h.store.PendingTurns(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return turns
}

func (h *harness) allSettled() {
	h.t.Helper()
	eventually(h.t, "every turn to be settled in the journal", func() bool { return len(h.pending()) == 0 })
}

func TestAnswerStreamsIntoTheChatAndIsRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		if err := h.plat.deliver(t, dm("alice", "hello", "e1")); err != nil {
			t.Fatal(err)
		}
		h.finalIs("dm-alice", "echo: hello")
		h.allSettled()

		if err := h.plat.deliver(t, dm("alice", "again", "e2")); err != nil {
			t.Fatal(err)
		}
		h.finalIs("dm-alice", "echo: hello", "echo: again")
		h.allSettled()
		turns := h.be.turns()
		want := []chat.Message{{Role: chat.User, Content: "hello"}, {Role: chat.Assistant, Content: "echo: hello"}}
		if len(turns) != 2 || !reflect.DeepEqual(turns[1].History, want) {
			t.Fatalf("second turn's history = %+v, want %+v", turns[1].History, want)
		}
		if turns[0].SessionID != turns[1].SessionID || turns[0].SessionID == "" {
			t.Errorf("session ids %q, %q: want one session", turns[0].SessionID, turns[1].SessionID)
		}
		if turns[1].Source.UserID != "alice" || turns[1].Source.Platform != "fake" {
			t.Errorf("source = %+v", turns[1].Source)
		}
	})
}

func TestDuplicateEventIsAnsweredOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		for range 3 {
			if err := h.plat.deliver(t, dm("alice", "hello", "same-event")); err != nil {
				t.Fatal(err)
			}
		}
		h.finalIs("dm-alice", "echo: hello")
		h.allSettled()
		if n := len(h.be.turns()); n != 1 {
			t.Errorf("backend called %d times, want 1", n)
		}
	})
}

func TestAuthorization(t *testing.T) {
	cases := []struct {
		name   string
		access Access
		user   string
		want   bool
	}{
		{"nobody by default", Access{}, "alice", false},
		{"gateway list", Access{All: Allowlist{Users: []string{"alice"}}}, "alice", true},
		{"not on the gateway list", Access{All: Allowlist{Users: []string{"alice"}}}, "mallory", false},
		{"gateway star", Access{All: Allowlist{Users: []string{"*"}}}, "mallory", true},
		{"gateway allow all", Access{All: Allowlist{AllowAll: true}}, "mallory", true},
		{"platform list", Access{Platforms: map[string]Allowlist{"fake": {Users: []string{"alice"}}}}, "alice", true},
		{"platform allow all", Access{Platforms: map[string]Allowlist{"fake": {AllowAll: true}}}, "mallory", true},
		{"another platform's list", Access{Platforms: map[string]Allowlist{"telegram": {AllowAll: true}}}, "alice", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := defaultOptions()
				opts.Access = c.access
				h := start(t, opts, &backend{answer: echo}, "")
				if err := h.plat.deliver(t, dm(c.user, "hi", "e1")); err != nil {
					t.Fatal(err)
				}
				h.allSettled()
				called := len(h.be.turns()) == 1
				if called != c.want {
					t.Fatalf("backend called = %v, want %v", called, c.want)
				}
				if !c.want && len(h.plat.shown("dm-"+c.user)) != 0 {
					t.Errorf("a denied user got a reply: %q", h.plat.shown("dm-"+c.user))
				}
			})
		})
	}
}

// The group allowlists (Hermes's TELEGRAM_GROUP_ALLOWED_USERS and
// _CHATS) let their users, or every member of their chats, talk in groups,
// and nobody in a DM.
func TestGroupAuthorization(t *testing.T) {
	fake := func(a Allowlist) Access { return Access{Platforms: map[string]Allowlist{"fake": a}} }
	for _, c := range []struct {
		name   string
		access Access
		in     chat.Inbound
		want   bool
	}{
		{"group user in a group", fake(Allowlist{GroupUsers: []string{"carol"}}), group("carol", "hi", "e1", true), true},
		{"group user in a DM", fake(Allowlist{GroupUsers: []string{"carol"}}), dm("carol", "hi", "e1"), false},
		{"member of an allowed group", fake(Allowlist{GroupChats: []string{"room"}}), group("mallory", "hi", "e1", true), true},
		{"member of every group", fake(Allowlist{GroupChats: []string{"*"}}), group("mallory", "hi", "e1", true), true},
		{"member of another group", fake(Allowlist{GroupChats: []string{"elsewhere"}}), group("mallory", "hi", "e1", true), false},
		{"allowed group, in a DM", fake(Allowlist{GroupChats: []string{"*"}}), dm("mallory", "hi", "e1"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := defaultOptions()
				opts.Access = c.access
				h := start(t, opts, &backend{answer: echo}, "")
				if err := h.plat.deliver(t, c.in); err != nil {
					t.Fatal(err)
				}
				h.allSettled()
				if called := len(h.be.turns()) == 1; called != c.want {
					t.Fatalf("backend called = %v, want %v", called, c.want)
				}
			})
		})
	}
}

func TestPairingLetsAnApprovedUserIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.PairUnknownDMs = map[string]bool{"fake": true}
		h := start(t, opts, &backend{answer: echo}, "")
		if err := h.plat.deliver(t, dm("carol", "hi", "e1")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a pairing code", func() bool { return len(h.plat.shown("dm-carol")) == 1 })
		reply := h.plat.shown("dm-carol")[0]
		i := strings.Index(reply, "herald pairing approve ")
		if i < 0 || len(h.be.turns()) != 0 {
			t.Fatalf("reply = %q, backend calls = %d", reply, len(h.be.turns()))
		}
		code := strings.Fields(reply[i+len("herald pairing approve "):])[0]
		code = strings.Trim(code, "`")
		if _, err := h.store.ApprovePairing(context.Background(), code); err != nil {
			t.Fatalf("approving %q: %v", code, err)
		}
		if err := h.plat.deliver(t, dm("carol", "now?", "e2")); err != nil {
			t.Fatal(err)
		}
		h.finalIs("dm-carol", reply, "echo: now?")
		// A group message from an unknown user never gets a code.
		if err := h.plat.deliver(t, group("dave", "hi", "e3", true)); err != nil {
			t.Fatal(err)
		}
		h.allSettled()
		if got := h.plat.shown("room"); len(got) != 0 {
			t.Errorf("group got %q", got)
		}
	})
}

func TestGroupNeedsAMentionAndKeysSessionsPerUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		if err := h.plat.deliver(t, group("alice", "chatter", "e1", false)); err != nil {
			t.Fatal(err)
		}
		h.allSettled()
		if len(h.be.turns()) != 0 {
			t.Fatal("answered a group message without a mention")
		}
		h.plat.deliver(t, group("alice", "@bot one", "e2", true))
		h.finalIs("room", "echo: @bot one")
		h.allSettled()
		h.plat.deliver(t, group("bob", "@bot two", "e3", true))
		h.finalIs("room", "echo: @bot one", "echo: @bot two")
		h.allSettled()
		if ids := sessionIDs(h.be.turns()); len(ids) != 2 {
			t.Errorf("sessions = %v, want one per user", ids)
		}
	})
}

func TestThreadIsSharedByItsParticipants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		for i, user := range []string{"alice", "bob"} {
			in := group(user, "in thread", "t"+user, true)
			in.Source.ChatType, in.Source.ThreadID = chat.Thread, "thread-1"
			h.plat.deliver(t, in)
			eventually(t, "the answer", func() bool { return len(h.plat.shown("room")) == i+1 })
			h.allSettled()
		}
		if ids := sessionIDs(h.be.turns()); len(ids) != 1 {
			t.Errorf("sessions = %v, want one shared by the thread", ids)
		}
	})
}

func TestCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "/help", "c1"))
		eventually(t, "help", func() bool { return len(h.plat.shown("dm-alice")) == 1 })
		if got := h.plat.shown("dm-alice")[0]; !strings.Contains(got, "/new") || !strings.Contains(got, "/stop") {
			t.Errorf("help = %q", got)
		}

		h.plat.deliver(t, dm("alice", "hello", "c2"))
		eventually(t, "the answer", func() bool { return len(h.plat.shown("dm-alice")) == 2 })
		h.allSettled()
		first := h.be.turns()[0].SessionID

		h.plat.deliver(t, dm("alice", "!status", "c3"))
		eventually(t, "status", func() bool { return len(h.plat.shown("dm-alice")) == 3 })
		if got := h.plat.shown("dm-alice")[2]; !strings.Contains(got, first) || !strings.Contains(got, "scripted") {
			t.Errorf("status = %q, want the session id and backend", got)
		}

		h.plat.deliver(t, dm("alice", "/reset", "c4"))
		eventually(t, "reset", func() bool { return len(h.plat.shown("dm-alice")) == 4 })
		if got := h.plat.shown("dm-alice")[3]; got != texts.NewSession {
			t.Errorf("reset = %q", got)
		}
		h.allSettled()
		h.plat.deliver(t, dm("alice", "/unknown words", "c5"))
		eventually(t, "the agent's answer", func() bool { return len(h.plat.shown("dm-alice")) == 5 })
		h.allSettled()
		turns := h.be.turns()
		last := turns[len(turns)-1]
		if last.Message != "/unknown words" || last.SessionID == first || len(last.History) != 0 {
			t.Errorf("after /reset: message %q, session %q (old %q), history %d", last.Message, last.SessionID, first, len(last.History))
		}
		if got := h.plat.shown("dm-alice")[4]; got != "echo: /unknown words" {
			t.Errorf("answer = %q", got)
		}
	})
}

// blocking answers with "working" and then waits until released or cancelled.
type blocking struct {
	started  chan agent.Turn
	release  chan struct{}
	canceled chan string
}

func newBlocking() *blocking {
	return &blocking{started: make(chan agent.Turn, 10), release: make(chan struct{}), canceled: make(chan string, 10)}
}

func (b *blocking) answer(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	emit(agent.Event{Kind: agent.EventDelta, Text: "working on " + turn.Message})
	b.started <- turn
	text := "working on " + turn.Message
	select {
	case <-b.release:
		return agent.Result{FinalResponse: text + ", done", Text: text + ", done", SessionID: turn.SessionID}
	case <-ctx.Done():
		b.canceled <- turn.Message
		return agent.Result{FinalResponse: agent.FinalText("Proxy", text, ctx.Err()), Text: text, SessionID: turn.SessionID, Err: ctx.Err()}
	}
}

func TestStopCancelsTheRunningTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		h := start(t, defaultOptions(), &backend{answer: b.answer}, "")
		h.plat.deliver(t, dm("alice", "long task", "e1"))
		<-b.started
		h.plat.deliver(t, dm("alice", "/stop", "e2"))
		if got := <-b.canceled; got != "long task" {
			t.Fatalf("cancelled %q", got)
		}
		h.finalIs("dm-alice", "working on long task\n\n⏹ Stopped.")
		h.allSettled()

		h.plat.deliver(t, dm("alice", "/stop", "e3"))
		h.finalIs("dm-alice", "working on long task\n\n⏹ Stopped.", texts.NothingToStop)
	})
}

func TestInterruptModeCancelsAndRunsTheNewMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		h := start(t, defaultOptions(), &backend{answer: b.answer}, "")
		h.plat.deliver(t, dm("alice", "first", "e1"))
		<-b.started
		h.plat.deliver(t, dm("alice", "second", "e2"))
		if got := <-b.canceled; got != "first" {
			t.Fatalf("cancelled %q, want first", got)
		}
		if got := (<-b.started).Message; got != "second" {
			t.Fatalf("then ran %q", got)
		}
		close(b.release)
		h.finalIs("dm-alice", "working on first", "working on second, done")
		h.allSettled()
	})
}

// stallingSessions is a store whose first session read waits until its
// turn is cancelled, as a read that a newer message overtakes.
type stallingSessions struct {
	*sqlite.Store
	reading chan struct{}
	once    sync.Once
}

func (s *stallingSessions) SessionID(ctx context.Context, key string) (string, bool, error) {
	stall := false
	s.once.Do(func() { stall = true })
	if stall {
		close(s.reading)
		<-ctx.Done()
		return "", false, ctx.Err()
	}
	return s.Store.SessionID(ctx, key)
}

// A message that interrupts a turn still reading its session: that turn
// ends as replaced ("not run"), not as a failure of the store.
func TestInterruptWhileReadingTheSession(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stalling := &stallingSessions{Store: st, reading: make(chan struct{})}
	plat := newFakePlatform("fake")
	r := New(defaultOptions(), &backend{answer: echo}, stalling, plat)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-plat.ready
	plat.deliver(t, dm("alice", "first", "e1"))
	<-stalling.reading
	plat.deliver(t, dm("alice", "second", "e2"))
	eventually(t, "both turns to end", func() bool {
		turns, err := st.Turns(context.Background(), store.AllTurns, 10)
		return err == nil && len(turns) == 2 && turns[0].Status == store.Delivered && turns[1].Status != store.Received && turns[1].Status != store.Running
	})
	turns, _ := st.Turns(context.Background(), store.AllTurns, 10)
	if first := turns[1]; first.Status != store.Delivered || first.Error != "not run: "+errInterrupted.Error() {
		t.Errorf("the interrupted turn ended %s (%q)", first.Status, first.Error)
	}
}

func TestQueueModeRunsMessagesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.BusyMode = "queue"
		h := start(t, opts, &backend{answer: b.answer}, "")
		h.plat.deliver(t, dm("alice", "first", "e1"))
		<-b.started
		h.plat.deliver(t, dm("alice", "second", "e2"))
		select {
		case turn := <-b.started:
			t.Fatalf("%q started while the first turn ran", turn.Message)
		case <-b.canceled:
			t.Fatal("queue mode cancelled the running turn")
		case <-time.After(50 * time.Millisecond): // nothing may happen; this only bounds the wait
		}
		close(b.release)
		h.finalIs("dm-alice", "working on first, done", "working on second, done")
		h.allSettled()
	})
}

func TestGracefulShutdownLetsRunningTurnsFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		h := start(t, defaultOptions(), &backend{answer: b.answer}, "")
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		stopped := make(chan error, 1)
		go func() { stopped <- h.stop() }()
		eventually(t, "the runner to start shutting down", h.runner.isClosing)
		if err := h.runner.Ready(); err == nil || err.Error() != "shutting down" {
			t.Errorf("Ready while shutting down: %v", err)
		}
		if err := h.plat.deliver(t, dm("alice", "late", "late")); !errors.Is(err, ErrShuttingDown) {
			t.Errorf("a message during shutdown: err = %v, want ErrShuttingDown (so the platform redelivers it)", err)
		}
		close(b.release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if got := h.plat.shown("dm-alice"); !reflect.DeepEqual(got, []string{"working on task, done"}) {
			t.Errorf("shown = %q", got)
		}
	})
}

func TestShutdownAfterGraceCancelsWithANotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.ShutdownGrace = 20 * time.Millisecond
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: b.answer}, path)
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		want := []string{"working on task\n\n" + texts.ShutdownNotice}
		if got := h.plat.shown("dm-alice"); !reflect.DeepEqual(got, want) {
			t.Errorf("shown = %q, want %q", got, want)
		}
		// The turn was settled: a restart does not answer it again.
		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.allSettled()
		if n := len(h2.be.turns()); n != 0 {
			t.Errorf("restart ran %d turns again", n)
		}
	})
}

// crash abandons a runner as a killed process would: nothing more reaches
// the chat or the journal.
func (h *harness) crash() {
	h.plat.kill()
	h.store.Close()
	h.cancel()
	<-h.done
	close(h.done)
}

func TestCrashBeforeAnythingShownIsResumedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.Streaming.Enabled = false // nothing is shown until the end
		opts.ShutdownGrace = 0
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: b.answer}, path)
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		h.crash()

		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.finalIs("dm-alice", "echo: task")
		h2.allSettled()
		if n := len(h2.be.turns()); n != 1 {
			t.Errorf("resumed turn ran %d times", n)
		}
		if got := h.plat.shown("dm-alice"); len(got) != 0 {
			t.Errorf("the crashed run showed %q", got)
		}
	})
}

// crashMidAnswer runs alice's "task" until its partial answer is shown,
// then crashes, and returns the options and journal to restart with.
func crashMidAnswer(t *testing.T) (Options, string) {
	b := newBlocking()
	opts := defaultOptions()
	opts.ShutdownGrace = 0
	path := filepath.Join(t.TempDir(), "state.db")
	h := start(t, opts, &backend{answer: b.answer}, path)
	h.plat.deliver(t, dm("alice", "task", "e1"))
	<-b.started
	eventually(t, "the partial answer to be shown and journalled", func() bool {
		turns := h.pending()
		return len(h.plat.shown("dm-alice")) == 1 && len(turns) == 1 && turns[0].Shown
	})
	h.crash()
	return opts, path
}

func TestCrashAfterTextShownGetsOneNotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts, path := crashMidAnswer(t)
		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.finalIs("dm-alice", texts.InterruptedByRestart("task"))
		h2.allSettled()
		if n := len(h2.be.turns()); n != 0 {
			t.Errorf("a shown turn ran again %d times", n)
		}
		// The notice is kept in the transcript (the web chat's history
		// shows it) and never sent to the agent.
		notice := store.Entry{Role: chat.Notice, Content: texts.InterruptedByRestart("task")}
		if got := h2.transcript("dm-alice"); len(got) != 1 || got[0].Role != notice.Role || got[0].Content != notice.Content {
			t.Errorf("transcript %+v, want the notice", got)
		}
		shown, err := Transcripts(h2.store, opts.SessionKeys)(context.Background(), chat.Source{Platform: "fake", ChatID: "dm-alice", ChatType: chat.DM, UserID: "alice"})
		if err != nil || len(shown) != 1 || shown[0].Role != chat.Notice {
			t.Errorf("the chat's history is %+v (%v), want the notice", shown, err)
		}
		h2.plat.deliver(t, dm("alice", "next", "e2"))
		eventually(t, "the next answer", func() bool { return len(h2.be.turns()) == 1 })
		if hist := h2.be.turns()[0].History; slices.ContainsFunc(hist, func(m chat.Message) bool { return m.Role == chat.Notice }) {
			t.Errorf("the agent got the notice in its history: %+v", hist)
		}
		h3 := start(t, opts, &backend{answer: echo}, path)
		h3.allSettled()
		if got := h3.plat.shown("dm-alice"); len(got) != 0 {
			t.Errorf("a second restart sent %q", got)
		}
	})
}

// killing makes a platform that kills the process inside the first call
// whose text satisfies cond: once the chat shows it, before the runner
// hears back (applied), or before the platform applies it. The platform
// takes nothing more, and wait, once the call is made, closes the journal,
// then lets the runner go and waits until it is gone. The hook is in place
// before the runner starts.
func killing(applied bool, cond func(text string) bool) (wrap func(*fakePlatform) platform.Adapter, wait func(*harness)) {
	var once sync.Once
	killed, released := make(chan struct{}), make(chan struct{})
	wrap = func(f *fakePlatform) platform.Adapter {
		f.call = func(text string, done bool) {
			if done == applied && cond(text) {
				once.Do(func() {
					f.kill()
					close(killed)
					<-released // the journal closes while the call is still in flight
				})
			}
		}
		return f
	}
	wait = func(h *harness) {
		<-killed
		h.store.Close()
		close(released)
		h.cancel()
		<-h.done
		close(h.done)
	}
	return wrap, wait
}

// A kill inside the first call that shows answer text, after the platform
// applied it: the turn was journalled as shown before the call, so the
// restart sends one notice naming the message, not a second answer.
func TestKillInsideTheFirstSendGetsANoticeNotASecondAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.ShutdownGrace = 0
		path := filepath.Join(t.TempDir(), "state.db")
		wrap, wait := killing(true, func(text string) bool { return strings.Contains(text, "working on task") })
		h := startOn(t, opts, &backend{answer: b.answer}, path, wrap)
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		wait(h)
		partial := h.plat.shown("dm-alice")
		if len(partial) != 1 {
			t.Fatalf("the killed run showed %q", partial)
		}

		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.finalIs("dm-alice", texts.InterruptedByRestart("task"))
		h2.allSettled()
		if n := len(h2.be.turns()); n != 0 {
			t.Errorf("a shown turn ran again %d times", n)
		}
	})
}

// A kill inside the call that sends the restart notice: the turn was
// settled just before that call, so no later start sends the notice again.
// Applied, the chat shows it once; not applied, it is lost (the price of
// never sending it twice: a window of one call; see test/crash for how
// often).
func TestKillWhileTheRestartNoticeIsSentNeverSendsItTwice(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied=%v", applied), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts, path := crashMidAnswer(t)
				notice := texts.InterruptedByRestart("task")
				wrap, wait := killing(applied, func(text string) bool { return text == notice })
				h2 := startOn(t, opts, &backend{answer: echo}, path, wrap)
				wait(h2)
				want := []string(nil)
				if applied {
					want = []string{notice}
				}
				if got := h2.plat.shown("dm-alice"); !reflect.DeepEqual(got, want) {
					t.Fatalf("the second run showed %q, want %q", got, want)
				}

				h3 := start(t, opts, &backend{answer: echo}, path)
				h3.allSettled()
				if got := h3.plat.shown("dm-alice"); len(got) != 0 {
					t.Errorf("the next start sent %q", got)
				}
				if n := len(h3.be.turns()); n != 0 {
					t.Errorf("the turn ran again %d times", n)
				}
			})
		})
	}
}

// A restart notice the platform refuses for its rate limit was not sent: a
// kill while it waits for the next try leaves the turn for the next start,
// which sends it.
func TestKillWhileTheRefusedNoticeWaitsSendsItOnTheNextStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts, path := crashMidAnswer(t)
		notice := texts.InterruptedByRestart("task")
		refused := make(chan struct{})
		h2 := startOn(t, opts, &backend{answer: echo}, path, func(f *fakePlatform) platform.Adapter {
			return &refusing{fakePlatform: f, text: notice, refused: refused}
		})
		<-refused
		synctest.Wait() // it waits for the next try
		h2.crash()
		if got := h2.plat.shown("dm-alice"); len(got) != 0 {
			t.Fatalf("the second run showed %q", got)
		}

		h3 := start(t, opts, &backend{answer: echo}, path)
		h3.finalIs("dm-alice", notice)
		h3.allSettled()
		kept := 0
		for _, e := range h3.transcript("dm-alice") {
			if e.Role == chat.Notice && e.Content == notice {
				kept++
			}
		}
		if kept != 1 {
			t.Errorf("the notice is kept %d times in the transcript, want once", kept)
		}
	})
}

// refusing refuses the first send of text for the rate limit.
type refusing struct {
	*fakePlatform
	text    string
	refused chan struct{}
	once    sync.Once
}

func (r *refusing) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	first := false
	if text == r.text {
		r.once.Do(func() { first = true })
	}
	if first {
		close(r.refused)
		return "", &platform.RateLimitError{RetryAfter: time.Minute}
	}
	return r.fakePlatform.Send(ctx, t, text)
}

// killInTheFinalDelivery runs a turn whose answer ends as final on the
// platform as, once showing tells the answer is under way, and kills the
// gateway inside the call that carries the final text, after the platform
// applied it or before; it returns what a restart on the same state needs.
func killInTheFinalDelivery(t *testing.T, applied bool, as func(*fakePlatform) platform.Adapter, showing func(*harness) bool) (opts Options, path, final string, killed *harness) {
	b := newBlocking()
	opts = defaultOptions()
	opts.ShutdownGrace = 0
	path = filepath.Join(t.TempDir(), "state.db")
	final = "working on task, done"
	wrap, wait := killing(applied, func(text string) bool { return text == final })
	h := startOn(t, opts, &backend{answer: b.answer}, path, func(f *fakePlatform) platform.Adapter { return as(wrap(f).(*fakePlatform)) })
	h.plat.deliver(t, dm("alice", "task", "e1"))
	<-b.started
	eventually(t, "the answer to be under way", func() bool { return showing(h) })
	close(b.release)
	wait(h)
	return opts, path, final, h
}

// A kill inside the final edit, after the platform applied it or before:
// the restart makes the final edits again (an edit made twice changes
// nothing) instead of sending a notice after a complete answer, and
// records the exchange.
func TestKillDuringTheFinalEditIsFinishedWithoutANotice(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied=%v", applied), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts, path, final, h := killInTheFinalDelivery(t, applied, func(f *fakePlatform) platform.Adapter { return f },
					func(h *harness) bool { return len(h.plat.shown("dm-alice")) == 1 })

				h2 := startOn(t, opts, &backend{answer: echo}, path, func(f *fakePlatform) platform.Adapter { f.adopt(h.plat); return f })
				h2.allSettled()
				if got := h2.plat.shown("dm-alice"); !reflect.DeepEqual(got, []string{final}) {
					t.Errorf("the chat shows %q, want only the final answer", got)
				}
				if n := len(h2.be.turns()); n != 0 {
					t.Errorf("the turn ran again %d times", n)
				}
				if entries := h2.transcript("dm-alice"); len(entries) != 2 || entries[1].Content != final {
					t.Errorf("transcript %+v, want the exchange with the final answer", entries)
				}
			})
		})
	}
}

// A turn that showed only drafts, which vanish, is run again after a
// crash rather than given a notice.
func TestCrashWhileOnlyDraftsShownRunsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.ShutdownGrace = 0
		path := filepath.Join(t.TempDir(), "state.db")
		h := startOn(t, opts, &backend{answer: b.answer}, path, func(f *fakePlatform) platform.Adapter { return &drafting{fakePlatform: f} })
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		d := h.runner.adapters["fake"].(*drafting)
		eventually(t, "a draft to be shown", func() bool { return d.drafts() > 0 })
		h.crash()

		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.finalIs("dm-alice", "echo: task")
		h2.allSettled()
		if n := len(h2.be.turns()); n != 1 {
			t.Errorf("the turn ran %d times after the restart, want once", n)
		}
	})
}

// A kill inside the one send that carries a complete answer after its
// drafts: whether it arrived the platform cannot say, so the restart
// neither sends it again nor claims it was cut short: the notice says it
// was being sent. The agent is not asked again.
func TestKillInsideTheFinalSendAfterDraftsSaysItWasBeingSent(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied=%v", applied), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts, path, final, h := killInTheFinalDelivery(t, applied, func(f *fakePlatform) platform.Adapter { return &drafting{fakePlatform: f} },
					func(h *harness) bool { return h.runner.adapters["fake"].(*drafting).drafts() > 0 })

				h2 := startOn(t, opts, &backend{answer: echo}, path, func(f *fakePlatform) platform.Adapter { f.adopt(h.plat); return f })
				h2.allSettled()
				want := []string{texts.RestartedWhileSending("task")}
				if applied {
					want = append([]string{final}, want...)
				}
				if got := h2.plat.shown("dm-alice"); !reflect.DeepEqual(got, want) {
					t.Errorf("the chat shows %q, want %q", got, want)
				}
				if n := len(h2.be.turns()); n != 0 {
					t.Errorf("the turn ran again %d times", n)
				}
			})
		})
	}
}

func TestConcurrentConversations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := defaultOptions()
		opts.Access = Access{All: Allowlist{AllowAll: true}}
		h := start(t, opts, &backend{answer: echo}, "")
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := "u" + string(rune('a'+i))
				if err := h.plat.deliver(t, dm(user, "hi "+user, "e"+user)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i := range 20 {
			user := "u" + string(rune('a'+i))
			h.finalIs("dm-"+user, "echo: hi "+user)
		}
		h.allSettled()
	})
}

func TestTurnStatesAreMarkedWhereThePlatformShowsThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		plat := &marking{fakePlatform: newFakePlatform("marking")}
		failing := func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if turn.Message == "fail" {
				err := &agent.StatusError{Status: 500, Message: "boom"}
				return agent.Result{FinalResponse: agent.FinalText("Proxy", "", err), Err: err, SessionID: turn.SessionID}
			}
			return echo(ctx, turn, emit)
		}
		r := New(defaultOptions(), &backend{answer: failing}, st, plat)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() { cancel(); <-done; st.Close() }()

		plat.deliver(t, dm("alice", "hello", "e1"))
		eventually(t, "working then done", func() bool {
			return reflect.DeepEqual(plat.marks(), []platform.TurnState{platform.TurnWorking, platform.TurnDone})
		})
		plat.deliver(t, dm("alice", "fail", "e2"))
		eventually(t, "working then failed", func() bool {
			return reflect.DeepEqual(plat.marks(), []platform.TurnState{platform.TurnWorking, platform.TurnDone, platform.TurnWorking, platform.TurnFailed})
		})
	})
}

func TestResumedTurnsKeepTheirOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.BusyMode = "queue"
		opts.Streaming.Enabled = false
		opts.ShutdownGrace = 0
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: b.answer}, path)
		h.plat.deliver(t, dm("alice", "first", "e1"))
		<-b.started
		for i, text := range []string{"second", "third"} {
			if err := h.plat.deliver(t, dm("alice", text, "e"+strconv.Itoa(i+2))); err != nil {
				t.Fatal(err)
			}
		}
		h.crash()

		h2 := start(t, opts, &backend{answer: echo}, path)
		h2.finalIs("dm-alice", "echo: first", "echo: second", "echo: third")
		h2.allSettled()
		var order []string
		for _, turn := range h2.be.turns() {
			order = append(order, turn.Message)
		}
		if !reflect.DeepEqual(order, []string{"first", "second", "third"}) {
			t.Errorf("resumed in the order %q", order)
		}
	})
}

// The agent server may rotate a conversation's session (after compressing
// its context): the next turn continues in the rotated one. But a /new
// that came while the turn ran wins: the rotation reported at its end is
// of a session the user has left.
func TestRotatedSessionIsAdoptedUnlessANewOneStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rotated, rotatedAgain = "20260101_000000_aaaaaa", "20260101_000000_bbbbbb"
		release := make(chan struct{})
		be := &backend{answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if turn.Message != "slow" {
				return agent.Result{FinalResponse: "ok", Text: "ok", SessionID: rotated}
			}
			<-release // a server that finishes its answer, /stop or not
			return agent.Result{FinalResponse: "done", Text: "done", SessionID: rotatedAgain}
		}}
		h := start(t, defaultOptions(), be, "")
		src := dm("alice", "", "").Source
		src.Platform = "fake"
		key := chat.SessionKey(src, defaultOptions().SessionKeys)
		session := func() string {
			id, _, err := h.store.SessionID(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}

		h.plat.deliver(t, dm("alice", "first", "e1"))
		h.allSettled()
		if got := session(); got != rotated {
			t.Fatalf("after a turn the server rotated, the session is %q, want %q", got, rotated)
		}

		h.plat.deliver(t, dm("alice", "slow", "e2"))
		eventually(t, "the slow turn to start", func() bool { return len(be.turns()) == 2 })
		h.plat.deliver(t, dm("alice", "/new", "e3"))
		eventually(t, "/new to start a session", func() bool { return session() != rotated })
		fresh := session()
		close(release)
		h.allSettled()
		if got := session(); got != fresh {
			t.Errorf("after /new the session is %q, want the new %q: the slow turn's rotation overwrote it", got, fresh)
		}
		h.plat.deliver(t, dm("alice", "next", "e4"))
		h.allSettled()
		if turns := be.turns(); turns[2].SessionID != fresh {
			t.Errorf("the turn after /new ran in session %q, want the new %q", turns[2].SessionID, fresh)
		}
	})
}

// Transcripts reads a chat's current conversation as the runner keys it,
// without a runner: the web chat shows it after a reload.
func TestTranscriptsReadTheCurrentConversation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: echo}, "")
		h.plat.deliver(t, dm("alice", "hello", "e1"))
		h.allSettled()
		read := Transcripts(h.store, defaultOptions().SessionKeys)
		src := dm("alice", "", "").Source
		src.Platform = "fake"
		got, err := read(context.Background(), src)
		want := []chat.Message{{Role: chat.User, Content: "hello"}, {Role: chat.Assistant, Content: "echo: hello"}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("transcript = %v, %v; want %v", got, err, want)
		}
		src.ChatID = "dm-bob"
		if got, err := read(context.Background(), src); err != nil || len(got) != 0 {
			t.Errorf("a chat without a session: %v, %v; want nothing", got, err)
		}
	})
}

// A gateway stopped while it starts has taken nothing yet: that is no error.
func TestRunStoppedWhileStartingIsNoError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := New(defaultOptions(), &backend{answer: echo}, st, newFakePlatform("fake")).Run(ctx); err != nil {
			t.Errorf("Run stopped at start: %v, want nil", err)
		}
	})
}

// stuck is a platform whose nth send never completes on its own: it ends
// only when its context does, as a send waiting for a platform's budget
// does.
type stuck struct {
	*fakePlatform
	nth     int
	sends   int
	waiting chan struct{}
}

func stuckAt(nth int) (*stuck, func(*fakePlatform) platform.Adapter) {
	s := &stuck{nth: nth, waiting: make(chan struct{})}
	return s, func(f *fakePlatform) platform.Adapter { s.fakePlatform = f; return s }
}

func (s *stuck) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	s.mu.Lock()
	s.sends++
	n := s.sends
	s.mu.Unlock()
	if n == s.nth {
		close(s.waiting)
		<-ctx.Done()
		return "", ctx.Err()
	}
	return s.fakePlatform.Send(ctx, t, text)
}

// longAnswer is three messages' worth of text, returned at once so that
// the final delivery sends it.
func longAnswer(_ context.Context, turn agent.Turn, _ func(agent.Event)) agent.Result {
	text := strings.Repeat("a", 4000) + "\n\n" + strings.Repeat("b", 4000) + "\n\n" + strings.Repeat("c", 4000)
	return agent.Result{FinalResponse: text, Text: text, SessionID: turn.SessionID}
}

// A final text that takes long to deliver (a long answer over a slow
// platform budget) is cut short by /stop, and the chat says so.
func TestStopReachesTheFinalDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plat, wrap := stuckAt(2)
		h := startOn(t, defaultOptions(), &backend{answer: longAnswer}, "", wrap)
		h.plat.deliver(t, dm("alice", "tell me everything", "e1"))
		<-plat.waiting
		h.plat.deliver(t, dm("alice", "/stop", "e2"))
		h.finalIs("dm-alice", strings.Repeat("a", 4000), texts.Stopped)
		h.allSettled()
		entries := h.transcript("dm-alice")
		if last := entries[len(entries)-1].Content; !strings.HasSuffix(last, texts.Stopped) {
			t.Errorf("the transcript's answer ends %q, want the stop notice", last[max(len(last)-40, 0):])
		}
	})
}

// Shutdown reaches a final delivery too, once the grace period is over.
func TestShutdownReachesTheFinalDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		plat, wrap := stuckAt(2)
		opts := defaultOptions()
		opts.ShutdownGrace = 20 * time.Millisecond
		h := startOn(t, opts, &backend{answer: longAnswer}, "", wrap)
		h.plat.deliver(t, dm("alice", "tell me everything", "e1"))
		<-plat.waiting
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		want := []string{strings.Repeat("a", 4000), texts.ShutdownNotice}
		if got := h.plat.shown("dm-alice"); !reflect.DeepEqual(got, want) {
			t.Errorf("shown = %.60q, want %.60q", got, want)
		}
	})
}

// transcript is what the store keeps of a DM's current conversation.
func (h *harness) transcript(chatID string) []store.Entry {
	h.t.Helper()
	id, ok, err := h.store.SessionID(context.Background(), chat.SessionKey(chat.Source{Platform: "fake", ChatID: chatID, ChatType: chat.DM, UserID: strings.TrimPrefix(chatID, "dm-")}, defaultOptions().SessionKeys))
	if err != nil || !ok {
		h.t.Fatalf("session of %s: %v, %v", chatID, ok, err)
	}
	entries, err := h.store.History(context.Background(), id, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return entries
}

// thinkingAnswer is an answer with the model's reasoning before it.
const thinkingAnswer = "<think>The user greets me; greet back.</think>\n\nHello!"

func thinking(_ context.Context, turn agent.Turn, _ func(agent.Event)) agent.Result {
	return agent.Result{FinalResponse: thinkingAnswer, Text: thinkingAnswer, SessionID: turn.SessionID}
}

// The transcript keeps the answer as the user saw it, so that a reload
// (the web chat's history) never shows the reasoning; keep_thinking keeps
// the raw text, and the history shown is still the answer.
func TestTranscriptKeepsTheAnswerAsShown(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep_thinking=%v", keep), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := defaultOptions()
				opts.KeepThinking = keep
				h := start(t, opts, &backend{answer: thinking}, "")
				h.plat.deliver(t, dm("alice", "hi", "e1"))
				h.finalIs("dm-alice", "Hello!")
				h.allSettled()
				stored := h.transcript("dm-alice")[1].Content
				if want := map[bool]string{false: "Hello!", true: thinkingAnswer}[keep]; stored != want {
					t.Errorf("stored %q, want %q", stored, want)
				}
				src := dm("alice", "", "").Source
				src.Platform = "fake"
				shown, err := Transcripts(h.store, opts.SessionKeys)(context.Background(), src)
				if err != nil || len(shown) != 2 || shown[1].Content != "Hello!" {
					t.Errorf("history shown = %q, %v; want the answer without its reasoning", shown, err)
				}
			})
		})
	}
}

// A turn's run key is the same at every attempt and differs between
// turns, also between journals that count ids alike; it is a valid
// Idempotency-Key (1 to 255 visible ASCII characters).
func TestRunKey(t *testing.T) {
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	turn := store.Turn{ID: 7, SessionKey: "telegram:dm:1", CreatedAt: at}
	key := runKey(turn)
	if key != runKey(turn) {
		t.Error("the key changed between attempts")
	}
	other := turn
	other.CreatedAt = at.Add(time.Millisecond) // another journal's turn 7
	if runKey(other) == key {
		t.Error("two journals' turn 7 share a key")
	}
	other = turn
	other.ID = 8
	if runKey(other) == key {
		t.Error("turns 7 and 8 share a key")
	}
	if len(key) > 255 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		t.Errorf("key %q is not a valid Idempotency-Key", key)
	}
}

// A crash or a shutdown mid-answer, with the turn's run journalled (a
// shutdown lets go of the run rather than stopping it): after the restart
// the turn follows its run (the agent is not asked again) and the run's
// complete text is edited into the message that showed the answer, with
// no notice.
func TestRestartMidAnswerFollowsTheRun(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(map[bool]string{false: "crash", true: "shutdown"}[graceful], func(t *testing.T) { followTheRun(t, graceful) })
	}
}

func followTheRun(t *testing.T, graceful bool) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.ShutdownGrace = 0
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			turn.Started("run-1")
			res := b.answer(ctx, turn, emit)
			if errors.Is(context.Cause(ctx), agent.ErrDetached) {
				res.Err = agent.ErrDetached // as a backend of runs does
			}
			return res
		}}, path)
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		eventually(t, "the run and the answer's message to be journalled", func() bool {
			turns := h.pending()
			return len(turns) == 1 && turns[0].Shown && turns[0].Progress.RunID == "run-1" && len(turns[0].Progress.MessageIDs) == 1
		})
		if graceful {
			h.stop()
		} else {
			h.crash()
		}

		var keys []string
		h2 := startOn(t, opts, &backend{answer: func(_ context.Context, turn agent.Turn, _ func(agent.Event)) agent.Result {
			keys = append(keys, turn.Key)
			if turn.RunID != "run-1" {
				return agent.Result{FinalResponse: "asked again", Err: errors.New("asked again")}
			}
			return agent.Result{FinalResponse: "working on task, done", Text: "working on task, done", SessionID: turn.SessionID}
		}}, path, func(f *fakePlatform) platform.Adapter { f.adopt(h.plat); return f })
		h2.finalIs("dm-alice", "working on task, done")
		h2.allSettled()
		if len(keys) != 1 {
			t.Errorf("the backend was asked %d times, want once", len(keys))
		}
		if first := h.be.turns(); len(first) != 1 || first[0].Key != keys[0] {
			t.Errorf("the turn's key changed over the restart")
		}
	})
}

// A run the agent server lost before the turn showed anything (it
// restarted: the run is "interrupted") runs again, under a key of its own,
// since the first would only name the lost run again.
func TestLostRunRunsAgainUnderItsOwnKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, defaultOptions(), &backend{answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if !strings.HasSuffix(turn.Key, "-again") {
				turn.Started("run-lost")
				return agent.Result{Err: fmt.Errorf("%w: interrupted", agent.ErrRunUnknown)}
			}
			return echo(ctx, turn, emit)
		}}, "")
		h.plat.deliver(t, dm("alice", "hello", "e1"))
		h.finalIs("dm-alice", "echo: hello")
		h.allSettled()
		turns := h.be.turns()
		if len(turns) != 2 || turns[0].Key == "" || turns[1].Key != turns[0].Key+"-again" || turns[1].RunID != "" {
			t.Errorf("the backend was asked %+v, want the turn and then its run again under its own key", turns)
		}
	})
}

// A crash after an answer's exchange was kept in the transcript and before
// its turn was settled: the restart makes the final edits again but keeps
// the exchange once.
func TestRefinishKeepsTheExchangeOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, defaultOptions(), &backend{answer: echo}, path)
		h.plat.deliver(t, dm("alice", "hello", "e1"))
		h.finalIs("dm-alice", "echo: hello")
		h.allSettled()
		// As the journal stood at the crash: the turn running, its final
		// text and message recorded, the exchange kept.
		h.plat.mu.Lock()
		ids := slices.Clone(h.plat.order["dm-alice"])
		h.plat.mu.Unlock()
		if err := h.store.SetTurnStatus(context.Background(), 1, store.Running, ""); err != nil {
			t.Fatal(err)
		}
		if err := h.store.MarkShown(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if err := h.store.SetTurnFinal(context.Background(), 1, store.Final{Text: "echo: hello", MessageIDs: ids}); err != nil {
			t.Fatal(err)
		}
		h.crash()
		h2 := startOn(t, defaultOptions(), &backend{answer: echo}, path, func(f *fakePlatform) platform.Adapter { f.adopt(h.plat); return f })
		h2.allSettled()
		h2.finalIs("dm-alice", "echo: hello")
		if got := h2.transcript("dm-alice"); len(got) != 2 {
			t.Errorf("transcript %+v, want the exchange once", got)
		}
	})
}

// steering is a backend that steers: its turn "first" runs as run-1 and,
// once a message is steered into that run, ends as end says with the
// steered text; other turns echo. Steering answers steerErr.
func steering(steerErr error, end func(ctx context.Context, turn agent.Turn, text string) agent.Result) *backend {
	steered := make(chan string, 1)
	return &backend{
		answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if turn.Message != "first" {
				return echo(ctx, turn, emit)
			}
			turn.Started("run-1")
			emit(agent.Event{Kind: agent.EventDelta, Text: "working"})
			return end(ctx, turn, <-steered)
		},
		steer: func(runID, text string) error {
			if runID != "run-1" {
				return fmt.Errorf("no run %s", runID)
			}
			steered <- text
			return steerErr
		},
	}
}

// steerInto runs a runner in busy mode steer over be, and sends "first"
// and, while it runs, "also this".
func steerInto(t *testing.T, be *backend) *harness {
	t.Helper()
	opts := defaultOptions()
	opts.BusyMode = "steer"
	h := start(t, opts, be, "")
	h.plat.deliver(t, dm("alice", "first", "e1"))
	eventually(t, "the first turn's run", func() bool { return len(h.be.turns()) == 1 })
	synctest.Wait()
	h.plat.deliver(t, dm("alice", "also this", "e2"))
	synctest.Wait()
	return h
}

// In busy mode steer a message that arrives while a turn runs is handed
// to that turn's run. Read by the agent, it is settled with the turn; not
// read (left pending at the run's end) or not taken, it runs as a turn of
// its own after, so that nothing is lost.
func TestBusyModeSteer(t *testing.T) {
	for _, c := range []struct {
		name     string
		steerErr error
		pending  bool
		runs     int
	}{
		{"read by the agent", nil, false, 1},
		{"left pending", nil, true, 2},
		{"not taken", agent.ErrNotSteered, false, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				be := steering(c.steerErr, func(_ context.Context, turn agent.Turn, text string) agent.Result {
					res := agent.Result{FinalResponse: "done with first", Text: "done with first", SessionID: turn.SessionID}
					if c.pending {
						res.PendingSteer = text
					}
					return res
				})
				h := steerInto(t, be)
				h.allSettled()
				turns := h.be.turns()
				if len(turns) != c.runs || (c.runs == 2 && turns[1].Message != "also this") {
					t.Errorf("the backend ran %d turns (%+v), want %d", len(turns), turns, c.runs)
				}
			})
		})
	}
}

// A message sent while a turn runs is acknowledged, at most once every
// busyAckEvery in a session, with what it does in the busy mode.
func TestBusyAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		opts := defaultOptions()
		opts.BusyMode, opts.BusyAck = "queue", true
		h := start(t, opts, &backend{answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if turn.Message == "first" {
				<-release
			}
			return echo(ctx, turn, emit)
		}}, "")
		h.plat.deliver(t, dm("alice", "first", "e1"))
		eventually(t, "the first turn to run", func() bool { return len(h.be.turns()) == 1 })
		h.plat.deliver(t, dm("alice", "second", "e2"))
		h.plat.deliver(t, dm("alice", "third", "e3"))
		eventually(t, "the acknowledgement", func() bool { return len(h.plat.shown("dm-alice")) == 1 })
		close(release)
		h.finalIs("dm-alice", texts.BusyAck("queue"), "echo: first", "echo: second", "echo: third")
		h.allSettled()
	})
}

// /new drops the messages steered into the running turn with its queue:
// none of them runs in the new conversation.
func TestNewDropsSteeredMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := steering(nil, func(ctx context.Context, turn agent.Turn, text string) agent.Result {
			<-ctx.Done() // /new stops the turn
			return agent.Result{SessionID: turn.SessionID, PendingSteer: text, Err: ctx.Err()}
		})
		h := steerInto(t, be)
		h.plat.deliver(t, dm("alice", "/new", "e3"))
		h.allSettled()
		if turns := h.be.turns(); len(turns) != 1 {
			t.Errorf("the backend ran %d turns, want the first only", len(turns))
		}
	})
}

// With restart notices off for the platform (Hermes's
// gateway_restart_notification: false), a shutdown leaves the answer as
// far as it got, and a restart after a crash mid-answer says nothing; both
// turns are settled, not answered again.
func TestQuietRestartsTellTheChatNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBlocking()
		opts := defaultOptions()
		opts.ShutdownGrace = 20 * time.Millisecond
		opts.QuietRestarts = []string{"fake"}
		path := filepath.Join(t.TempDir(), "state.db")
		h := start(t, opts, &backend{answer: b.answer}, path)
		h.plat.deliver(t, dm("alice", "task", "e1"))
		<-b.started
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		if got := h.plat.shown("dm-alice"); !slices.Equal(got, []string{"working on task"}) {
			t.Errorf("after the shutdown the chat shows %q, want the answer as far as it got", got)
		}

		crashed, path := crashMidAnswer(t)
		crashed.QuietRestarts = []string{"fake"}
		h2 := start(t, crashed, &backend{answer: echo}, path)
		h2.allSettled()
		if got := h2.plat.shown("dm-alice"); len(got) != 0 || len(h2.be.turns()) != 0 {
			t.Errorf("after the crash the restart showed %q and ran %d turns, want nothing", got, len(h2.be.turns()))
		}
	})
}
