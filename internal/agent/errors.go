package agent

import (
	"context"
	"errors"
	"fmt"
	"unicode"

	"github.com/herald-chat/herald/internal/texts"
)

// ErrAgentFailed means the server ended the answer with finish_reason "error".
var ErrAgentFailed = errors.New("the agent reported an error")

// ErrIdleTimeout means the server sent nothing for longer than the idle-read timeout.
var ErrIdleTimeout = errors.New("no data from the server within the idle timeout")

// ErrIncomplete means the stream ended before the answer was finished.
var ErrIncomplete = errors.New("the connection closed before the answer was complete")

// ErrDetached is the cause with which the gateway cancels a turn it lets
// go of without stopping it (at shutdown): a backend whose turns run on
// the agent server leaves the run going, for the next start to follow,
// and returns it as the Result's Err.
var ErrDetached = errors.New("the gateway let go of the turn; its run goes on")

// ErrNotSteered means a running turn did not take a message steered into
// it (the server steers no runs, or the run is not running any more): it
// waits its turn instead.
var ErrNotSteered = errors.New("the running turn does not take the message")

// ErrRunUnknown means the agent server no longer knows the run a turn
// was following (it restarted, or forgot the run).
var ErrRunUnknown = errors.New("the agent server no longer knows the turn's run")

// ErrTooLarge means the server sent more in one piece (an event of the
// stream, or a whole JSON answer) than the backend holds; the error that
// wraps it names the limit and the setting that raises it.
var ErrTooLarge = errors.New("the agent server sent more at once than Herald accepts")

// ErrNotAStream means a 2xx answer was neither an event stream nor a JSON
// completion: a web page from a proxy or a login portal, say.
var ErrNotAStream = errors.New("the agent server did not answer with a stream")

// AnswerTooLongError means the answer's text reached the limit
// (gateway.max_answer_bytes): what came before it is the answer, cut, and
// the rest was not read.
type AnswerTooLongError struct {
	Limit int
}

func (e *AnswerTooLongError) Error() string {
	return fmt.Sprintf("the answer was cut at %d bytes (gateway.max_answer_bytes, HERALD_MAX_ANSWER_BYTES)", e.Limit)
}

// StatusError is a non-2xx answer from the server.
type StatusError struct {
	Status int
	// Message is a short summary fit for a chat (see Summary); the body
	// itself goes to the debug log.
	Message string
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
	// Message is a short summary fit for a chat (see Summary).
	Message string
}

func (e *StreamError) Error() string { return "server error in stream: " + e.Message }

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
	var tooLong *AnswerTooLongError
	switch {
	case errors.As(err, &status):
		return texts.ServerError(server, status.Status, status.Message)
	case errors.As(err, &tooLong):
		return texts.WithNotice(text, texts.AnswerTruncated(tooLong.Limit))
	case errors.Is(err, context.Canceled):
		return texts.WithNotice(text, texts.Stopped)
	case errors.Is(err, ErrAgentFailed):
		return texts.WithNotice(text, texts.AgentFailed)
	case errors.As(err, &conn) && text == "":
		return texts.ConnectionError(server, conn.Err)
	}
	return texts.WithNotice(text, texts.Interrupted(err))
}

// maxSummary is the most characters of a server's own error text that a
// chat shows: our choice, about two lines of a phone's chat, enough for
// "Invalid API key" or "model \"llama9\" not found" and too little for a
// stack trace.
const maxSummary = 160

// Summary is what a chat may show of an error text that a server wrote:
// its first line that is not blank, control characters removed, white
// space collapsed, cut to maxSummary characters (the last one "…" when
// cut). Markup (text that starts with "<", an error page) gives "": it
// says nothing a chat can show, so the caller shows the status instead.
// Invalid UTF-8 becomes U+FFFD.
func Summary(s string) string {
	out := make([]rune, 0, maxSummary+1)
	space := false // white space seen since the last character kept
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			if len(out) > 0 {
				return string(out)
			}
		case unicode.IsSpace(r):
			space = len(out) > 0
		case unicode.IsControl(r):
		case len(out) == 0 && r == '<':
			return ""
		default:
			if space {
				out = append(out, ' ')
				space = false
			}
			out = append(out, r)
			if len(out) > maxSummary {
				out = out[:maxSummary-1]
				for len(out) > 0 && out[len(out)-1] == ' ' {
					out = out[:len(out)-1]
				}
				return string(out) + "…"
			}
		}
	}
	return string(out)
}
