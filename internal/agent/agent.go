// Package agent defines what the gateway asks of an agent backend: run one
// conversation turn, report what happens while it runs, and return the result.
package agent

import (
	"context"

	"github.com/herald-chat/herald/internal/chat"
)

// Backend runs conversation turns against an agent or model server.
type Backend interface {
	// Name says which backend this is, for /status and logs.
	Name() string
	// Run performs one turn. It calls emit, from the calling goroutine, for each
	// event as it arrives, and always returns a Result: failures are reported in
	// Result.Err and in the user-facing Result.FinalResponse, never dropped.
	// Cancelling ctx ends the turn at once and closes the upstream connection.
	Run(ctx context.Context, turn Turn, emit func(Event)) Result
}

// Pinger is a backend that can tell whether its server is reachable, for /status.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Prober is a backend that names what herald doctor asks its server:
// each endpoint with how asking it went (nil when it answered 2xx; a
// *StatusError or *ConnectionError otherwise).
type Prober interface {
	Probe(ctx context.Context) []Probe
}

// Probe is one endpoint asked by Prober.
type Probe struct {
	Endpoint string
	Err      error
}

// Moder is a backend that reaches its server in more than one way: Mode
// asks the server and names the way in use, for the startup log and
// herald check, or says why the server cannot tell.
type Moder interface {
	Mode(ctx context.Context) (string, error)
}

// Turn is everything a backend needs for one request.
type Turn struct {
	// SessionID continues a conversation on the agent server.
	SessionID string
	// Message is the new user message.
	Message string
	// Images come with the new message; they are sent as image_url parts.
	Images []chat.Attachment
	// History is the conversation so far, oldest first. Entries without text
	// and roles other than user and assistant are not sent.
	History []chat.Message
	// Source tells the agent who is speaking and where.
	Source chat.Source
	// Key is the same for every attempt at one journalled turn: a backend
	// that starts runs on the agent server sends it as the idempotency
	// key, so that a turn started again after a crash never makes the
	// agent work twice.
	Key string
	// RunID, when set, is the turn's run on the agent server, started
	// before a restart: the backend follows it rather than starting one.
	RunID string
	// Started, if set, is called with the id of the run the backend
	// started for the turn, before its first event, so that the gateway
	// journals it.
	Started func(runID string)
}

// EventKind tells the kinds of Event apart.
type EventKind int

// The events a turn produces while it runs.
const (
	// EventDelta carries a piece of answer text.
	EventDelta EventKind = iota + 1
	// EventTool carries tool progress from the agent.
	EventTool
)

// Event is one thing that happened during a turn.
type Event struct {
	Kind EventKind
	Text string        // EventDelta
	Tool *ToolProgress // EventTool
}

// ToolProgress is a hermes.tool.progress event: the agent started or finished
// using a tool. Shown to the user while the agent works.
type ToolProgress struct {
	Tool       string `json:"tool"`
	Emoji      string `json:"emoji,omitempty"`
	Label      string `json:"label,omitempty"`
	ToolCallID string `json:"toolCallId,omitempty"`
	Status     string `json:"status,omitempty"`
}

// Result is the outcome of a turn, the same whichever backend ran it.
type Result struct {
	// FinalResponse is the text for the user: the answer, an error notice, or
	// the partial answer followed by a notice.
	FinalResponse string
	// Text is the answer text as received, without notices.
	Text string
	// SessionID is the session the conversation continues with: the one
	// given, or the one the server rotated to.
	SessionID string
	// Err is why the turn failed, nil on success.
	Err error
	// PendingSteer is text steered into the turn (see Steerer) that the
	// agent ended without reading; the gateway runs it as a turn.
	PendingSteer string
}

// Steerer is a backend that hands a message to a turn still running, by
// its run (see Turn.Started): the agent reads it after its next tool call,
// without a turn of its own. ErrNotSteered says the turn did not take it.
type Steerer interface {
	Steer(ctx context.Context, runID, text string) error
}
