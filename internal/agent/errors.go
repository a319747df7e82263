package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-chat/herald/internal/texts"
)

// ErrAgentFailed means the server ended the answer with finish_reason "error".
var ErrAgentFailed = errors.New("the agent reported an error")

// ErrIdleTimeout means the server sent nothing for longer than the idle-read timeout.
var ErrIdleTimeout = errors.New("no data from the server within the idle timeout")

// ErrIncomplete means the stream ended before the answer was finished.
var ErrIncomplete = errors.New("the connection closed before the answer was complete")

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	Status  int
	Message string // error.message from a JSON error body, else the body's start
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// ConnectionError is a transport failure: the server could not be reached or
// the connection broke.
type ConnectionError struct {
	Err error
}

func (e *ConnectionError) Error() string { return e.Err.Error() }
func (e *ConnectionError) Unwrap() error { return e.Err }

// StreamError is an error object the server sent inside the stream.
type StreamError struct {
	Message string
}

func (e *StreamError) Error() string { return "server error in stream: " + e.Message }

// maxErrorText is how much of an error body the user sees, as in Hermes.
const maxErrorText = 300

// FinalText is the text the user sees at the end of a turn: the answer, or
// what went wrong (worded by package texts), the same for every backend.
// server names the upstream in notices ("Proxy" for the Hermes API, "Model
// server" otherwise).
func FinalText(server, text string, err error) string {
	if err == nil {
		if text == "" {
			return texts.NoResponse
		}
		return text
	}
	var status *StatusError
	var conn *ConnectionError
	switch {
	case errors.As(err, &status):
		return texts.ServerError(server, status.Status, truncate(status.Message, maxErrorText))
	case errors.Is(err, context.Canceled):
		return texts.WithNotice(text, texts.Stopped)
	case errors.Is(err, ErrAgentFailed):
		return texts.WithNotice(text, texts.AgentFailed)
	case errors.As(err, &conn) && text == "":
		return texts.ConnectionError(server, conn.Err)
	}
	return texts.WithNotice(text, texts.Interrupted(err))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
