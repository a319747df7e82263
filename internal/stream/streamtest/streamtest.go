// Package streamtest provides a fake chat platform adapter that keeps a
// chat's state and records every call, for testing code that delivers
// answers (package stream, the gateway).
package streamtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// Call is one call the adapter received, as the platform saw it.
type Call struct {
	Kind   string // "send", "edit", "delete", "typing", "draft", "mark", "status" or "seal"
	ChatID string
	ID     string // the message sent, edited or deleted
	Text   string
	At     time.Time
	Err    error // what the call returned
}

// Penalty is a rate-limit window the fake imposed on a chat.
type Penalty struct {
	ChatID      string
	From, Until time.Time
}

// ErrTooLong is returned for a text longer than Caps.MaxLength, as a real
// platform refuses it.
var ErrTooLong = errors.New("streamtest: message too long")

// ErrEmpty is returned for an empty text.
var ErrEmpty = errors.New("streamtest: message text is empty")

// ErrNoMessage is returned for an edit or delete of an unknown message.
var ErrNoMessage = errors.New("streamtest: no such message")

// ErrNotAppended is returned for an edit of an open message (Caps.Appends)
// that does not only add to its end, as a native stream refuses it.
var ErrNotAppended = errors.New("streamtest: an open message only grows")

// Fake is a platform adapter (and Drafter and TurnMarker) keeping chats in
// memory. It enforces its Caps' budgets as a platform enforces its rate
// limits: a call that finds a budget empty is refused with a rate-limit
// answer and counts as a violation. Set Hook before use to make chosen
// calls fail.
type Fake struct {
	caps platform.Caps

	// Hook, if set, is asked about every call not already refused for a
	// rate limit; a non-nil error fails the call with it.
	Hook func(Call) error

	mu         sync.Mutex
	calls      []Call
	texts      map[string]string   // message id → text
	chats      map[string][]string // chat → live message ids, in order
	drafts     map[string]string   // chat → draft text
	open       map[string]bool     // messages not yet sealed, with Caps.Appends
	next       int
	counts     map[string]int                   // calls per chat
	limits     map[string]map[int]time.Duration // chat → call number → retry after
	penalties  []Penalty
	violations []Call
	budgets    map[string][]*platform.Tokens // chat → its buckets, in the order of caps.Budgets
	accounts   []*platform.Tokens            // the account's buckets, by the index of their budget
	changed    chan struct{}                 // closed and replaced at each call
	ready      chan struct{}
}

// New returns a fake platform with the given capabilities.
func New(caps platform.Caps) *Fake {
	ready := make(chan struct{})
	close(ready)
	return &Fake{
		caps:    caps,
		texts:   make(map[string]string),
		chats:   make(map[string][]string),
		drafts:  make(map[string]string),
		open:    make(map[string]bool),
		counts:  make(map[string]int),
		limits:  make(map[string]map[int]time.Duration),
		budgets: make(map[string][]*platform.Tokens),
		changed: make(chan struct{}),
		ready:   ready,
	}
}

// RateLimitNth makes the n-th call (counting from 1, every kind) to a chat
// fail with a RateLimitError, after which the chat refuses calls for
// retryAfter, recording any that come as violations.
func (f *Fake) RateLimitNth(chatID string, n int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limits[chatID] == nil {
		f.limits[chatID] = make(map[int]time.Duration)
	}
	f.limits[chatID][n] = retryAfter
}

// Name implements platform.Adapter.
func (f *Fake) Name() string { return "fake" }

// Caps implements platform.Adapter.
func (f *Fake) Caps(chat.Target) platform.Caps { return f.caps }

// Run implements platform.Adapter: it receives nothing until ctx ends.
func (f *Fake) Run(ctx context.Context, _ platform.Handler) error {
	<-ctx.Done()
	return nil
}

// Ready implements platform.Adapter.
func (f *Fake) Ready() <-chan struct{} { return f.ready }

// Send implements platform.Adapter.
func (f *Fake) Send(_ context.Context, t chat.Target, text string) (string, error) {
	var id string
	err := f.do(Call{Kind: "send", ChatID: t.ChatID, Text: text}, func(c *Call) error {
		if err := f.check(text); err != nil {
			return err
		}
		f.next++
		id = "m" + strconv.Itoa(f.next)
		c.ID = id
		f.texts[id] = text
		f.open[id] = f.caps.Appends
		f.chats[t.ChatID] = append(f.chats[t.ChatID], id)
		delete(f.drafts, t.ChatID) // sending ends the draft
		return nil
	})
	return id, err
}

// Edit implements platform.Adapter.
func (f *Fake) Edit(_ context.Context, t chat.Target, id, text string) error {
	return f.do(Call{Kind: "edit", ChatID: t.ChatID, ID: id, Text: text}, func(*Call) error {
		if !slices.Contains(f.chats[t.ChatID], id) {
			return ErrNoMessage
		}
		if err := f.check(text); err != nil {
			return err
		}
		if f.open[id] && !strings.HasPrefix(text, f.texts[id]) {
			return ErrNotAppended
		}
		f.texts[id] = text
		return nil
	})
}

// Open tells whether a message is still open: sent with Caps.Appends and
// not sealed.
func (f *Fake) Open(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[id]
}

// Streaming is a Fake whose chats show the status apart from the text
// (platform.Statuser) and keep messages open until sealed
// (platform.Sealer); give it Caps.Appends and Caps.Status.
type Streaming struct{ *Fake }

// Status implements platform.Statuser; it is recorded as a call of kind
// "status".
func (s Streaming) Status(_ context.Context, t chat.Target, status string) error {
	return s.do(Call{Kind: "status", ChatID: t.ChatID, Text: status}, func(*Call) error { return nil })
}

// Seal implements platform.Sealer: an open message is sealed with a call
// of kind "seal"; any other takes none.
func (s Streaming) Seal(_ context.Context, t chat.Target, id string) (int, error) {
	s.mu.Lock()
	open := s.open[id]
	s.mu.Unlock()
	if !open {
		return 0, nil
	}
	return 1, s.do(Call{Kind: "seal", ChatID: t.ChatID, ID: id}, func(*Call) error {
		delete(s.open, id)
		return nil
	})
}

// Delete implements platform.Adapter.
func (f *Fake) Delete(_ context.Context, t chat.Target, id string) error {
	return f.do(Call{Kind: "delete", ChatID: t.ChatID, ID: id}, func(*Call) error {
		i := slices.Index(f.chats[t.ChatID], id)
		if i < 0 {
			return ErrNoMessage
		}
		f.chats[t.ChatID] = slices.Delete(f.chats[t.ChatID], i, i+1)
		delete(f.texts, id)
		delete(f.open, id)
		return nil
	})
}

// Typing implements platform.Adapter.
func (f *Fake) Typing(_ context.Context, t chat.Target) error {
	return f.do(Call{Kind: "typing", ChatID: t.ChatID}, func(*Call) error { return nil })
}

// Draft implements platform.Drafter.
func (f *Fake) Draft(_ context.Context, t chat.Target, draftID int64, text string) error {
	return f.do(Call{Kind: "draft", ChatID: t.ChatID, ID: strconv.FormatInt(draftID, 10), Text: text}, func(*Call) error {
		if err := f.check(text); err != nil {
			return err
		}
		f.drafts[t.ChatID] = text
		return nil
	})
}

// TurnStatus implements platform.TurnMarker: it records the mark, one
// call of caps.MarkerCalls.
func (f *Fake) TurnStatus(_ context.Context, t chat.Target, state platform.TurnState) (int, error) {
	return f.caps.MarkerCalls, f.do(Call{Kind: "mark", ChatID: t.ChatID, Text: string(state)}, func(*Call) error { return nil })
}

// classes are the budget classes of each kind of call.
var classes = map[string]platform.Class{
	"send": platform.Messages, "edit": platform.Messages, "delete": platform.Messages,
	"draft": platform.Drafts, "typing": platform.Typing, "mark": platform.Markers,
	"status": platform.Typing, "seal": platform.Messages,
}

// overBudget takes a call's tokens from the budgets of its class; when one
// lacks them it takes none and returns how long until it would have them.
// A mark takes caps.MarkerCalls tokens. f.mu is held.
func (f *Fake) overBudget(c Call) (time.Duration, bool) {
	class, cost := classes[c.Kind], 1.0
	if c.Kind == "mark" {
		cost = float64(f.caps.MarkerCalls)
	}
	buckets := f.budgets[c.ChatID]
	if buckets == nil {
		if f.accounts == nil {
			f.accounts = make([]*platform.Tokens, len(f.caps.Budgets))
		}
		for i, b := range f.caps.Budgets {
			if !b.Account {
				buckets = append(buckets, b.Full(c.At))
				continue
			}
			if f.accounts[i] == nil {
				f.accounts[i] = b.Full(c.At)
			}
			buckets = append(buckets, f.accounts[i])
		}
		f.budgets[c.ChatID] = buckets
	}
	var wait time.Duration
	for i, b := range f.caps.Budgets {
		if b.Classes&class == 0 {
			continue
		}
		if at := buckets[i].When(c.At, cost); at.IsZero() || at.After(c.At) {
			wait = max(wait, at.Sub(c.At), time.Millisecond)
		}
	}
	if wait > 0 {
		return wait, true
	}
	for i, b := range f.caps.Budgets {
		if b.Classes&class != 0 {
			buckets[i].Take(c.At, cost)
		}
	}
	return 0, false
}

// check refuses texts a platform would refuse.
func (f *Fake) check(text string) error {
	if text == "" {
		return ErrEmpty
	}
	if n := format.Length(text, f.caps.Count); f.caps.MaxLength > 0 && n > f.caps.MaxLength {
		return fmt.Errorf("%w: %d > %d", ErrTooLong, n, f.caps.MaxLength)
	}
	return nil
}

// do records one call: refused during a penalty or when it is the call
// chosen to be rate limited, failed by Hook, else applied.
func (f *Fake) do(c Call, apply func(*Call) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.At = time.Now()
	f.counts[c.ChatID]++
	n := f.counts[c.ChatID]
	var err error
	for _, p := range f.penalties {
		if p.ChatID == c.ChatID && c.At.Before(p.Until) {
			err = &platform.RateLimitError{RetryAfter: p.Until.Sub(c.At), Err: errors.New("streamtest: called during a penalty")}
			f.violations = append(f.violations, c)
		}
	}
	if err == nil {
		if d, ok := f.limits[c.ChatID][n]; ok {
			f.penalties = append(f.penalties, Penalty{ChatID: c.ChatID, From: c.At, Until: c.At.Add(d)})
			err = &platform.RateLimitError{RetryAfter: d, Err: errors.New("streamtest: too many requests")}
		}
	}
	if err == nil {
		if d, over := f.overBudget(c); over {
			f.penalties = append(f.penalties, Penalty{ChatID: c.ChatID, From: c.At, Until: c.At.Add(d)})
			f.violations = append(f.violations, c)
			err = &platform.RateLimitError{RetryAfter: d, Err: errors.New("streamtest: over the budget")}
		}
	}
	if err == nil && f.Hook != nil {
		err = f.Hook(c)
	}
	if err == nil {
		err = apply(&c)
	}
	c.Err = err
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
	return err
}

// Calls returns every call so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Messages returns the texts of a chat's messages, oldest first.
func (f *Fake) Messages(chatID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range f.chats[chatID] {
		out = append(out, f.texts[id])
	}
	return out
}

// MessageIDs returns the ids of a chat's messages, oldest first.
func (f *Fake) MessageIDs(chatID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.chats[chatID])
}

// DraftText returns a chat's current draft ("" after a send).
func (f *Fake) DraftText(chatID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.drafts[chatID]
}

// Penalties returns the rate-limit windows imposed so far.
func (f *Fake) Penalties() []Penalty {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.penalties)
}

// Violations returns the calls made during a chat's penalty or over its
// budgets.
func (f *Fake) Violations() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

// Await waits until cond holds for the calls so far, checking after each
// call, and reports whether it did within timeout. cond runs with the
// fake locked: it must not keep the slice or call the fake.
func (f *Fake) Await(timeout time.Duration, cond func([]Call) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ok := cond(f.calls)
		changed := f.changed
		f.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// AwaitChat waits until cond holds for what a chat shows (its messages,
// oldest first, and its draft), checking after each call, and reports
// whether it did within timeout.
func (f *Fake) AwaitChat(chatID string, timeout time.Duration, cond func(messages []string, draft string) bool) bool {
	return f.Await(timeout, func([]Call) bool {
		var msgs []string
		for _, id := range f.chats[chatID] {
			msgs = append(msgs, f.texts[id])
		}
		return cond(msgs, f.drafts[chatID])
	})
}
