package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// NoResponse is the answer shown when the server finished without any text.
const NoResponse = "(No response from remote agent)"

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

// FinalText builds the text the user sees at the end of a turn: the answer,
// or what went wrong, in one place for every backend. server names the
// upstream in notices ("Proxy" for the Hermes API, "Model server" otherwise).
func FinalText(server, text string, err error) string {
	if err == nil {
		if text == "" {
			return NoResponse
		}
		return text
	}
	var status *StatusError
	if errors.As(err, &status) {
		return fmt.Sprintf("⚠️ %s error (%d): %s", server, status.Status, truncate(status.Message, maxErrorText))
	}
	var notice string
	var conn *ConnectionError
	switch {
	case errors.Is(err, context.Canceled):
		notice = "⏹ Stopped."
	case errors.Is(err, ErrAgentFailed):
		notice = "⚠️ The agent reported an error."
	case errors.As(err, &conn) && text == "":
		return fmt.Sprintf("⚠️ %s connection error: %s", server, conn.Err)
	default:
		notice = "⚠️ The answer was interrupted: " + err.Error()
	}
	if text == "" {
		return notice
	}
	return text + "\n\n" + notice
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// NewSessionID returns a session id in the shape Hermes API servers validate:
// YYYYMMDD_HHMMSS_ and six hex digits.
func NewSessionID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return now.Format("20060102_150405") + "_" + hex.EncodeToString(b[:])
}
