// Package platform defines what the gateway asks of a chat platform adapter,
// and what an adapter declares about its platform, as data.
package platform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
)

// Caps declares what a platform can do and its limits, so that shared code
// never asks which platform it is talking to.
type Caps struct {
	// MaxLength is the longest message, counted as Count says.
	MaxLength int
	Count     format.Counting
	// Edit: sent messages can be edited (streaming by edits).
	Edit bool
	// Draft: the platform shows ephemeral drafts (see Drafter).
	Draft bool
	// Threads: the platform has threads to answer in.
	Threads bool
	// Typing: the platform shows a typing indicator (see Adapter.Typing).
	Typing bool
	// Cursor: intermediate edits may end with a cursor.
	Cursor bool
	// Format is the markup the adapter renders the agent's markdown into.
	Format format.Flavour
	// EditInterval is the least time between two changes to one chat that
	// keeps within the platform's rate limits.
	EditInterval time.Duration
}

// Target is where an answer goes.
type Target struct {
	ChatID   string
	ThreadID string
	ReplyTo  string // the message being answered, where the platform links replies
}

// TargetOf answers a message where it came from.
func TargetOf(src chat.Source) Target {
	return Target{ChatID: src.ChatID, ThreadID: src.ThreadID, ReplyTo: src.MessageID}
}

// Handler takes one inbound message. It returns once the message is
// journalled; only then may the adapter acknowledge it to the platform (for
// example advance an update offset). An error means it was not journalled:
// the adapter must not acknowledge it, so the platform delivers it again.
type Handler func(ctx context.Context, in chat.Inbound) error

// Adapter connects one platform. Texts it is given are markdown; it renders
// them into Caps().Format.
type Adapter interface {
	// Name is the platform's name, as in config keys (matrix, telegram, webchat).
	Name() string
	Caps() Caps
	// Run connects and receives messages until ctx ends, calling h for each.
	Run(ctx context.Context, h Handler) error
	// Ready is closed once the adapter is connected and receiving.
	Ready() <-chan struct{}
	// Send posts a new message and returns its id.
	Send(ctx context.Context, t Target, text string) (id string, err error)
	// Edit replaces a sent message's text.
	Edit(ctx context.Context, t Target, id, text string) error
	// Delete removes a sent message.
	Delete(ctx context.Context, t Target, id string) error
	// Typing shows the typing indicator for a few seconds.
	Typing(ctx context.Context, t Target) error
}

// Drafter is an adapter with ephemeral draft previews (Telegram's
// sendMessageDraft): a draft is replaced by each call and disappears when
// the final message is sent.
type Drafter interface {
	Draft(ctx context.Context, t Target, draftID int64, text string) error
}

// RateLimitError reports that the platform refused a call for now and said
// when to try again. Nothing may go to that chat before RetryAfter passes.
type RateLimitError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited, retry after %s: %v", e.RetryAfter, e.Err)
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// ErrCannotEdit means a message cannot be edited any more (too old, deleted,
// edits refused): the rest of the answer goes out as new messages.
var ErrCannotEdit = errors.New("the message cannot be edited")

// StateStore keeps an adapter's positions across restarts (an update
// offset, a sync token). The gateway's store provides it.
type StateStore interface {
	State(ctx context.Context, name string) (value string, ok bool, err error)
	SetState(ctx context.Context, name, value string) error
}

// TurnState is how a turn stands, for platforms that mark the asking message.
type TurnState string

// The states a turn goes through.
const (
	TurnWorking TurnState = "working"
	TurnDone    TurnState = "done"
	TurnFailed  TurnState = "failed"
)

// TurnMarker is an adapter that marks the asking message with the state of
// its turn (Matrix's 👀, ✅ and ❌ reactions). Only the gateway knows when a
// turn starts and how it ends.
type TurnMarker interface {
	TurnStatus(ctx context.Context, t Target, state TurnState) error
}
