// Package platform defines what the gateway asks of a chat platform adapter,
// and what an adapter declares about its platform, as data.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/format"
)

// Caps declares what a platform can do in one chat and its limits there,
// so that shared code never asks which platform it is talking to.
type Caps struct {
	// MaxLength is the longest message, counted as Count says.
	MaxLength int
	Count     format.Counting
	// Edit: sent messages can be edited (streaming by edits).
	Edit bool
	// Draft: the chat shows ephemeral drafts, made with Drafter.Draft.
	Draft bool
	// Threads: the platform has threads to answer in.
	Threads bool
	// Typing: the platform shows a typing indicator (see Adapter.Typing).
	Typing bool
	// TypingEvery is how often the indicator must be refreshed to stay on,
	// for a platform whose indicator lasts longer than the delivery's
	// default refresh; zero keeps that default.
	TypingEvery time.Duration
	// Cursor: intermediate edits may end with a cursor.
	Cursor bool
	// Appends: a message being written is a native stream that the
	// platform shows growing (Slack's chat.startStream), and its edits
	// may only add to its end. Nothing that is later taken back, a cursor
	// or a tool's status line, is written into it; the adapter seals it
	// once complete (see Sealer).
	Appends bool
	// Status: the adapter shows the tool status line apart from the text
	// in this chat (platform.Statuser).
	Status bool
	// Format is the markup the adapter renders the agent's markdown into.
	Format format.Flavour
	// Budgets are the platform's rate limits that apply in the chat: every
	// call draws a token from each budget that covers its class, and none
	// is made while one of them is empty. Without budgets nothing limits
	// the calls.
	Budgets []Budget
	// MarkerCalls is how many calls of class Markers one change of a
	// turn's marker may make (Matrix replaces a reaction: a redaction and a
	// reaction); 0 when the chat shows no markers.
	MarkerCalls int
}

// Class is a kind of call to a platform; platforms limit some kinds apart
// from others. Classes combine as a set: Messages|Drafts.
type Class uint8

// The classes of calls.
const (
	Messages Class = 1 << iota // sending, editing and deleting messages
	Drafts                     // showing a draft (platform.Drafter)
	Markers                    // marking the asking message (platform.TurnMarker)
	Typing                     // the typing indicator
)

// Budget is one rate limit of a platform: the calls of its classes share a
// token bucket, one per chat or one for the whole bot account.
type Budget struct {
	Classes Class
	Account bool // one bucket for the account, else one per chat
	Bucket
}

// Bucket is the shape of a token bucket: Burst calls at once, and Rate
// more a second after that.
type Bucket struct {
	Rate  float64
	Burst int
}

// Tokens is the state of one token bucket. It is not safe for concurrent
// use.
type Tokens struct {
	shape Bucket
	level float64
	at    time.Time
}

// Full returns a bucket of this shape with every token in it, as of now.
func (b Bucket) Full(now time.Time) *Tokens {
	return &Tokens{shape: b, level: float64(b.Burst), at: now}
}

// Shape is the bucket's shape.
func (t *Tokens) Shape() Bucket { return t.shape }

// Level is how many tokens the bucket holds at now (not before its last
// change).
func (t *Tokens) Level(now time.Time) float64 {
	if now.Before(t.at) {
		now = t.at
	}
	return min(float64(t.shape.Burst), t.level+t.shape.Rate*now.Sub(t.at).Seconds())
}

// Return gives back n tokens taken for calls that were not made, up to
// the burst.
func (t *Tokens) Return(now time.Time, n float64) {
	t.Take(now, -n)
	t.level = min(t.level, float64(t.shape.Burst))
}

// Take removes n tokens at now; the level may go below zero, which a
// limit enforced elsewhere (the platform's) then charges.
func (t *Tokens) Take(now time.Time, n float64) {
	t.level = t.Level(now) - n
	if now.After(t.at) {
		t.at = now
	}
}

// When is the first time, not before now, at which the bucket holds need
// tokens; the zero time when it never will (need above the burst, or no
// refill).
func (t *Tokens) When(now time.Time, need float64) time.Time {
	level := t.Level(now)
	switch {
	case level >= need:
		return now
	case need > float64(t.shape.Burst) || t.shape.Rate <= 0:
		return time.Time{}
	}
	return now.Add(time.Duration(math.Ceil((need - level) / t.shape.Rate * float64(time.Second))))
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
	// Caps says what the platform can do in the chat t is in; it may
	// differ from chat to chat (drafts only in direct chats, say).
	Caps(t chat.Target) Caps
	// Run connects and receives messages until ctx ends, calling h for each.
	Run(ctx context.Context, h Handler) error
	// Ready is closed once the adapter is connected and receiving.
	Ready() <-chan struct{}
	// Send posts a new message and returns its id.
	Send(ctx context.Context, t chat.Target, text string) (id string, err error)
	// Edit replaces a sent message's text.
	Edit(ctx context.Context, t chat.Target, id, text string) error
	// Delete removes a sent message.
	Delete(ctx context.Context, t chat.Target, id string) error
	// Typing shows the typing indicator for a few seconds.
	Typing(ctx context.Context, t chat.Target) error
}

// Drafter is an adapter whose chats may show ephemeral draft previews
// (Telegram's sendMessageDraft): a draft is replaced by each call and
// disappears when the final message is sent. Caps.Draft says in which
// chats; a delivery drafts only where it is true.
type Drafter interface {
	Draft(ctx context.Context, t chat.Target, draftID int64, text string) error
}

// Statuser is an adapter that shows how the turn stands apart from the
// answer's text (Slack's assistant.threads.setStatus): the running tool's
// status line goes there instead of under the text in the chats whose
// Caps.Status is true, and "" means the agent is thinking.
type Statuser interface {
	Status(ctx context.Context, t chat.Target, status string) error
}

// Sealer is an adapter whose messages may stay open while they are written
// (Caps.Appends) until sealed: Seal makes a message final as it shows now.
// It reports how many calls it made: none for a message that was not
// open.
type Sealer interface {
	Seal(ctx context.Context, t chat.Target, id string) (calls int, err error)
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

// ErrUnavailable means the platform could not be reached, or did not
// answer as its API does (a proxy's error page, a 5xx): the call may go
// through later, so the final answer waits for it rather than give up.
var ErrUnavailable = errors.New("the platform is unavailable")

// Unavailable wraps err in ErrUnavailable when it says the platform was
// not reached (a transport error: refused, reset, timed out) or answered
// with status 5xx (0 when there was no answer); other errors come back
// as they are.
func Unavailable(err error, status int) error {
	var transport *url.Error
	if err != nil && (errors.As(err, &transport) || status >= 500) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

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
// turn starts and how it ends. TurnStatus reports how many calls of class
// Markers it made (never more than Caps.MarkerCalls), so that the budgets
// are charged for those only.
type TurnMarker interface {
	TurnStatus(ctx context.Context, t chat.Target, state TurnState) (calls int, err error)
}

// Settings are a platform's settings, loaded from the configuration by
// package config, and what builds the platform's adapter from them. Each
// platform package registers its own with Register.
type Settings interface {
	config.Section
	// Enabled tells whether the settings turn the platform on.
	Enabled() bool
	// Adapter builds the platform's adapter, not yet connected.
	Adapter(Deps) (Adapter, error)
}

// OpenByDefault is implemented by the settings of a platform whose users
// may talk to the agent unless an allowlist says otherwise: the web chat,
// which only Herald's listener serves, behind its token off loopback.
type OpenByDefault interface {
	OpenByDefault() bool
}

// Accounts is implemented by the settings of a platform that can run
// further accounts (more bots) beside its main one, for an operator
// serving many users: each runs as an adapter of its own, with the
// platform's other settings, and replicas spread them (see package app).
type Accounts interface {
	// Accounts returns each further account's settings by its adapter's
	// name (see AccountName).
	Accounts() map[string]Settings
}

// AccountName is the name a further account's adapter goes by, in
// chat.Source.Platform, the journal, the logs and the metrics:
// "<platform>-<account>". Never a colon: delivery targets split at it.
func AccountName(platform, account string) string { return platform + "-" + account }

// Deps is what the gateway gives a platform to build its adapter with.
type Deps struct {
	// Dir is the platform's own directory for the files it keeps
	// ($HERALD_HOME/<name>), created by the adapter when it needs it.
	Dir string
	// State keeps the platform's positions across restarts.
	State StateStore
	// Allows tells whether the gateway's or the platform's allowlist names
	// a user (or lets everyone in), as they are now: a reload may change
	// them. For what a platform decides itself, such as taking an invite;
	// nil names nobody.
	Allows func(userID string) bool
	// History reads the conversation a message belongs to, for platforms
	// that show it again (the web chat after a reload).
	History func(ctx context.Context, src chat.Source) ([]chat.Message, error)
	// HTTPAddr is the address of Herald's HTTP listener, for a platform
	// that serves pages there (see HTTPHandler).
	HTTPAddr string
	// MaxEventStreams and MaxEventStreamsPerClient bound the event streams
	// a platform that serves pages keeps open (the web chat), in all and
	// per client address; 0 leaves a bound off.
	MaxEventStreams, MaxEventStreamsPerClient int
	// Database is the gateway's PostgreSQL database when replicas share it
	// ("" for one process): a platform keeps there what it would keep in
	// Dir, so that whichever replica takes its connection over finds it.
	Database string
	// HTTPClient makes the platform's requests to its servers; nil means
	// a client of the adapter's own.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// HTTPHandler is an adapter that serves pages on Herald's HTTP listener
// (the web chat), at its root.
type HTTPHandler interface {
	Handler() http.Handler
}

// Register registers a platform under its name, as in config keys
// (platforms.<name>.*) and chat.Source.Platform; newSettings returns its
// settings with nothing set. A platform package calls it from init, and
// the one line that imports the package (internal/app) brings it in.
func Register(name string, newSettings func() Settings) {
	config.RegisterPlatform(name, func() config.Section { return newSettings() })
}

// BudgetSettings are the settings that override a platform's main budget
// (platforms.<name>.rate and .burst), for a server whose limits differ
// from the documented ones; they fill b, starting from documented.
func BudgetSettings(name string, b *Bucket, documented Bucket) []config.Setting {
	return []config.Setting{
		{Key: "platforms." + name + ".rate", Default: strconv.FormatFloat(documented.Rate, 'f', -1, 64),
			Description: "Calls a second " + name + "'s main rate-limit budget refills at (the platform's documented limit by default)",
			Set: func(v string) (string, error) {
				r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || r <= 0 || math.IsInf(r, 0) {
					return "", fmt.Errorf("expected a number of calls a second above zero, got %q", v)
				}
				b.Rate = r
				return strconv.FormatFloat(r, 'f', -1, 64), nil
			}},
		{Key: "platforms." + name + ".burst", Default: strconv.Itoa(documented.Burst), Set: config.Positive(&b.Burst),
			Description: "Calls " + name + "'s main rate-limit budget allows at once (the platform's documented limit by default)"},
	}
}

// Redacted returns err with its text passed through redact (which removes
// a secret: a token in a URL the error quotes), keeping err for errors.Is
// and errors.As; err itself when redact changes nothing.
func Redacted(err error, redact func(string) string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// redactedError shows an error's text without a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
