// Package stream delivers one agent answer into one chat while it is being
// written: it sends a first message and edits it as text arrives (or shows
// drafts), paced to the platform's limits, splits long answers over several
// messages, and always ends with exactly one complete final answer.
//
// What to show next is planned by pure functions (plan.go, finish.go) of
// what the chat shows, the text and the time; a Delivery's worker
// (delivery.go) makes the calls they plan when the chat's Gate (gate.go)
// lets it. The package reads the clock from package time: its tests run in
// testing/synctest bubbles, where that clock is fake for every goroutine,
// the platform's fakes included.
package stream

import (
	"errors"
	"log/slog"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
)

// Options configures streaming. The first five fields are Hermes's
// streaming.* settings; the rest have defaults and exist mostly so that
// tests can run fast.
type Options struct {
	// Enabled turns intermediate updates on; off, only the final answer is sent.
	Enabled bool
	// Transport is auto, draft, edit or off. Auto uses drafts in the chats
	// whose Caps have them, else edits.
	Transport string
	// EditInterval is the least time between two updates of the answer
	// (default 0.8 s), unless the text grew by BufferThreshold meanwhile.
	EditInterval time.Duration
	// BufferThreshold is how many characters of new text justify an update
	// before EditInterval has passed (default 24).
	BufferThreshold int
	// Cursor ends intermediate updates on platforms whose Caps allow it,
	// showing the answer is still being written; empty means none.
	Cursor string
	// NoTyping turns the platform's typing indicator off (Hermes's
	// platforms.<name>.extra.typing_indicator: false).
	NoTyping bool
	// TypingInterval is how often the typing indicator is refreshed while
	// nothing is shown yet (default 4 s).
	TypingInterval time.Duration
	// RetryDelay is the first wait before retrying a failed call; it doubles
	// with each failure (default 0.5 s).
	RetryDelay time.Duration
	// Logger receives failures worth knowing about; nil discards them.
	Logger *slog.Logger
}

// Defaults for the Options left zero.
const (
	DefaultEditInterval    = 800 * time.Millisecond
	DefaultBufferThreshold = 24
	DefaultTypingInterval  = 4 * time.Second
	DefaultRetryDelay      = 500 * time.Millisecond
)

// withDefaults fills the Options left zero.
func (o Options) withDefaults() Options {
	if o.EditInterval <= 0 {
		o.EditInterval = DefaultEditInterval
	}
	if o.BufferThreshold <= 0 {
		o.BufferThreshold = DefaultBufferThreshold
	}
	if o.TypingInterval <= 0 {
		o.TypingInterval = DefaultTypingInterval
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

const (
	maxAttempts   = 3  // tries of one call before giving up on it
	minVisible    = 4  // non-space characters before the first message
	statusRunes   = 64 // longest tool status line
	maxRetryDelay = 30 * time.Second
)

// Params is what one delivery needs.
type Params struct {
	// Adapter is the platform the chat is on.
	Adapter platform.Adapter
	// Target is where the answer goes; the adapter's Caps for it decide
	// how the answer is shown.
	Target chat.Target
	// Gate is the chat's gate, shared with every other delivery to the same
	// chat (see Gates); nil gives the delivery a gate of its own.
	Gate    *Gate
	Options Options
	// BeforeShown, if set, is called once, just before the first call
	// that puts answer text into a message the user keeps (a draft, which
	// vanishes, does not count), so that the gateway records the answer as
	// shown before it is: a crash during that call then cannot make the
	// turn run, and answer, twice. It is called from the delivery's worker
	// or from Finish's caller, and may block for a journal write.
	BeforeShown func()
	// Refused, if set, is called when the platform refused that call for
	// its rate limit, so that it showed nothing: BeforeShown is called
	// again before the next try.
	Refused func()
	// BeforeFinal, if set, is called once Finish has laid a final text
	// out, before its first call, with the messages already showing the
	// answer (none in draft mode, or when nothing was shown yet), so that
	// the gateway records them with the final text: after a crash the
	// final edits are made again, or, with no messages, the user is told
	// the answer was being sent.
	BeforeFinal func(messageIDs []string)
	// Sent, if set, is called after an intermediate send adds a message
	// to the answer, with the ids of every message showing it so far, so
	// that the gateway records them: after a crash the answer is finished
	// in them. It is called from the delivery's worker and may block for
	// a journal write.
	Sent func(messageIDs []string)
	// Resume are messages that already show this answer, their texts
	// unknown (a delivery cut off by a crash): Finish edits them into the
	// final text, deletes those it does not need and sends the rest.
	Resume []string
}

// Outcome tells how a delivery went, for the journal and metrics.
type Outcome struct {
	// MessageIDs are the messages holding the final answer, in order.
	MessageIDs []string
	// Shown is true once any answer text reached the user.
	Shown bool
	// Sends, Edits, Deletes and Drafts count the calls that succeeded.
	Sends, Edits, Deletes, Drafts int
	// RateLimitWaits counts the rate-limit answers the platform gave.
	RateLimitWaits int
}

// ErrNotDelivered reports that the final answer, or part of it, could not
// be delivered; Finish wraps the last error with it.
var ErrNotDelivered = errors.New("stream: final answer not delivered")
