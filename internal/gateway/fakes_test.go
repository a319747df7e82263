package gateway

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// fakePlatform is a chat platform in memory: it keeps every chat's messages
// as a user would see them.
type fakePlatform struct {
	name  string
	ready chan struct{}

	// call, if set, is told of every send and edit as it reaches the
	// platform (applied false) and once the chat shows it, before the
	// caller hears back (applied true): a test kills the process there.
	call func(text string, applied bool)

	mu       sync.Mutex
	dead     bool // a killed process sends nothing
	handler  platform.Handler
	next     int
	messages map[string]map[string]string // chat id → message id → text
	order    map[string][]string          // chat id → message ids in order
}

func newFakePlatform(name string) *fakePlatform {
	return &fakePlatform{name: name, ready: make(chan struct{}), messages: map[string]map[string]string{}, order: map[string][]string{}}
}

func (f *fakePlatform) Name() string { return f.name }

func (f *fakePlatform) Caps(chat.Target) platform.Caps {
	return platform.Caps{MaxLength: 4096, Count: format.Runes, Edit: true, Typing: true, Cursor: true, Format: format.Markdown}
}

func (f *fakePlatform) Run(ctx context.Context, h platform.Handler) error {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
	close(f.ready)
	<-ctx.Done()
	return nil
}

func (f *fakePlatform) Ready() <-chan struct{} { return f.ready }

func (f *fakePlatform) Send(_ context.Context, t chat.Target, text string) (string, error) {
	f.reach(text)
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return "", errDead
	}
	f.next++
	id := fmt.Sprintf("m%d", f.next)
	if f.messages[t.ChatID] == nil {
		f.messages[t.ChatID] = map[string]string{}
	}
	f.messages[t.ChatID][id] = text
	f.order[t.ChatID] = append(f.order[t.ChatID], id)
	f.mu.Unlock()
	return id, f.apply(text)
}

func (f *fakePlatform) Edit(_ context.Context, t chat.Target, id, text string) error {
	f.reach(text)
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return errDead
	}
	if _, ok := f.messages[t.ChatID][id]; !ok {
		f.mu.Unlock()
		return platform.ErrCannotEdit
	}
	f.messages[t.ChatID][id] = text
	f.mu.Unlock()
	return f.apply(text)
}

// reach tells the call hook of a call reaching the platform.
func (f *fakePlatform) reach(text string) {
	if f.call != nil {
		f.call(text, false)
	}
}

// apply tells the call hook of a call the chat shows; a process killed
// there hears nothing back.
func (f *fakePlatform) apply(text string) error {
	if f.call == nil {
		return nil
	}
	f.call(text, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return errDead
	}
	return nil
}

func (f *fakePlatform) Delete(_ context.Context, t chat.Target, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.messages[t.ChatID], id)
	return nil
}

func (f *fakePlatform) Typing(context.Context, chat.Target) error { return nil }

var errDead = fmt.Errorf("the process was killed")

func (f *fakePlatform) kill() {
	f.mu.Lock()
	f.dead = true
	f.mu.Unlock()
}

// adopt takes the chats of the platform a killed process used: the
// messages stay on the platform across restarts.
func (f *fakePlatform) adopt(old *fakePlatform) {
	old.mu.Lock()
	defer old.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = old.next
	for chat, msgs := range old.messages {
		f.messages[chat] = maps.Clone(msgs)
		f.order[chat] = slices.Clone(old.order[chat])
	}
}

// shown is what a chat shows, message by message.
func (f *fakePlatform) shown(chatID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range f.order[chatID] {
		if text, ok := f.messages[chatID][id]; ok {
			out = append(out, text)
		}
	}
	return out
}

// deliver sends a message in as the platform would, after Run started.
func (f *fakePlatform) deliver(t *testing.T, in chat.Inbound) error {
	t.Helper()
	<-f.ready
	f.mu.Lock()
	h := f.handler
	f.mu.Unlock()
	return h(context.Background(), in)
}

// backend is a scripted agent backend: each call runs answer.
type backend struct {
	answer func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result
	// ping, if set, answers the runner's checks of the server; unset, the
	// server always answers them.
	ping func(ctx context.Context) error
	// steer, if set, takes messages steered into a running turn; unset,
	// the backend steers nothing.
	steer func(runID, text string) error

	mu    sync.Mutex
	calls []agent.Turn
}

func (b *backend) Steer(_ context.Context, runID, text string) error {
	if b.steer == nil {
		return agent.ErrNotSteered
	}
	return b.steer(runID, text)
}

func (b *backend) Name() string { return "scripted" }

func (b *backend) Ping(ctx context.Context) error {
	if b.ping == nil {
		return nil
	}
	return b.ping(ctx)
}

func (b *backend) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	b.mu.Lock()
	b.calls = append(b.calls, turn)
	b.mu.Unlock()
	return b.answer(ctx, turn, emit)
}

func (b *backend) turns() []agent.Turn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]agent.Turn(nil), b.calls...)
}

// echo answers "echo: <message>" in two deltas.
func echo(_ context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	text := "echo: " + turn.Message
	half := len(text) / 2
	emit(agent.Event{Kind: agent.EventDelta, Text: text[:half]})
	emit(agent.Event{Kind: agent.EventDelta, Text: text[half:]})
	return agent.Result{FinalResponse: text, Text: text, SessionID: turn.SessionID}
}

// eventually waits for cond, failing the test after a generous deadline.
// The deadline guards against hangs; it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func dm(user, text, event string) chat.Inbound {
	return chat.Inbound{
		Source:    chat.Source{ChatID: "dm-" + user, ChatType: chat.DM, UserID: user, UserName: user, MessageID: event},
		Text:      text,
		Mentioned: true,
		EventID:   event,
	}
}

func group(user, text, event string, mentioned bool) chat.Inbound {
	return chat.Inbound{
		Source:    chat.Source{ChatID: "room", ChatName: "Room", ChatType: chat.Group, UserID: user, UserName: user, MessageID: event},
		Text:      text,
		Mentioned: mentioned,
		EventID:   event,
	}
}

func sessionIDs(turns []agent.Turn) []string {
	seen := map[string]bool{}
	for _, t := range turns {
		seen[t.SessionID] = true
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// marking is a platform that records turn states (like Matrix reactions).
type marking struct {
	*fakePlatform
	mu     sync.Mutex
	states []platform.TurnState
}

// Caps says each marker change is one call.
func (m *marking) Caps(t chat.Target) platform.Caps {
	c := m.fakePlatform.Caps(t)
	c.MarkerCalls = 1
	return c
}

func (m *marking) TurnStatus(_ context.Context, _ chat.Target, s platform.TurnState) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states = append(m.states, s)
	return 1, nil
}

func (m *marking) marks() []platform.TurnState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]platform.TurnState(nil), m.states...)
}

// drafting is the fake platform with drafts in every chat, as Telegram
// has them in private chats: they vanish, and only messages stay.
type drafting struct {
	*fakePlatform
	n atomic.Int32
}

func (d *drafting) Caps(t chat.Target) platform.Caps {
	c := d.fakePlatform.Caps(t)
	c.Draft = true
	return c
}

func (d *drafting) Draft(context.Context, chat.Target, int64, string) error {
	d.mu.Lock()
	dead := d.dead
	d.mu.Unlock()
	if dead {
		return errDead
	}
	d.n.Add(1)
	return nil
}

func (d *drafting) drafts() int { return int(d.n.Load()) }
