package completions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sse"
)

// stream gathers one answer while passing its events on.
type stream struct {
	emit    func(agent.Event)
	log     *slog.Logger
	limit   int // bytes in one event, or in a JSON answer
	maxText int // bytes of answer text; 0 means no bound
	text    strings.Builder
	finish  string
}

// chunk is the part of a chat.completion.chunk (or, with Message, a whole
// chat.completion) that the gateway uses.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// doneMarker is the data of the event that ends an OpenAI stream.
var doneMarker = []byte("[DONE]")

// reset empties c for the next event, keeping the Choices array so that
// the usual one-choice chunk needs no new one. The elements are zeroed
// because Unmarshal decodes into a slice's elements without zeroing them
// first; Error becomes nil so that Unmarshal allocates a new one rather
// than writing into that of an earlier event.
func (c *chunk) reset() {
	choices := c.Choices[:cap(c.Choices)]
	clear(choices)
	*c = chunk{Choices: choices[:0]}
}

// readEvents reads the SSE answer until [DONE], the end of the stream or an
// error. [DONE] ends the turn at once, even if the server keeps the
// connection open. typed tells whether the server said it sends an event
// stream: a body of another type that holds no event at all was not one.
// This loop runs once per token for every stream the
// gateway relays, so events are parsed in place, in the reader's buffer,
// with go-json rather than encoding/json: it decodes a chunk several times
// faster with a third of the allocations, and FuzzDecodeMatchesEncodingJSON
// holds it to encoding/json's results for the types decoded here.
func (st *stream) readEvents(r io.Reader, typed bool) error {
	events := sse.NewReaderLimit(r, st.limit)
	var c chunk // one for every event; see reset
	var failed error
	seen := false // an event arrived
	for {
		ev, err := events.Next()
		switch {
		case errors.Is(err, io.EOF) && !seen && !typed:
			return agent.ErrNotAStream
		case errors.Is(err, io.EOF):
			if failed == nil && st.finish == "" {
				return agent.ErrIncomplete
			}
			return failed
		case errors.Is(err, sse.ErrEventTooLarge) || errors.Is(err, sse.ErrLineTooLong):
			return fmt.Errorf("%w: %w; %s sets the limit", agent.ErrTooLarge, err, limitSetting)
		case err != nil:
			return err
		}
		seen = true
		switch ev.Name {
		case ToolProgressEvent:
			st.toolProgress(ev.Data)
		case "", "message":
			if bytes.Equal(bytes.TrimSpace(ev.Data), doneMarker) {
				return failed
			}
			c.reset()
			if err := gojson.Unmarshal(ev.Data, &c); err != nil {
				st.log.Debug("skipping a malformed stream chunk", "error", err, "bytes", len(ev.Data))
				continue
			}
			err := st.chunk(&c, false)
			var tooLong *agent.AnswerTooLongError
			if errors.As(err, &tooLong) {
				return err // the rest is not read
			}
			if err != nil && failed == nil {
				failed = err
			}
		}
	}
}

// readCompletion reads a non-streaming answer, for servers that ignore
// "stream": true. The answer is one piece, held whole while it is decoded,
// so it is bounded like an event.
func (st *stream) readCompletion(r io.Reader) error {
	var c chunk
	lr := &io.LimitedReader{R: r, N: int64(st.limit)}
	if err := json.NewDecoder(lr).Decode(&c); err != nil {
		if lr.N == 0 {
			return fmt.Errorf("%w: a JSON answer over %d bytes; %s sets the limit", agent.ErrTooLarge, st.limit, limitSetting)
		}
		return fmt.Errorf("%w: reading the answer: %v", agent.ErrIncomplete, err)
	}
	if err := st.chunk(&c, true); err != nil {
		return err
	}
	if st.finish == "" {
		st.finish = "stop"
	}
	return nil
}

// chunk applies one chunk; it reports the agent's failure, after the text.
// An error the server sends is summarised for the chat; the whole of it
// (as much as an error answer's body) goes to the debug log.
func (st *stream) chunk(c *chunk, whole bool) error {
	if c.Error != nil {
		msg := c.Error.Message
		st.log.Debug("the agent server sent an error", "message", msg[:min(len(msg), maxErrorBody)])
		summary := agent.Summary(msg)
		if summary == "" {
			summary = "no message"
		}
		return &agent.StreamError{Message: summary}
	}
	var failed error
	for _, ch := range c.Choices {
		text := ch.Delta.Content
		if whole {
			text = ch.Message.Content
		}
		cut := false
		if st.maxText > 0 && st.text.Len()+len(text) > st.maxText {
			text, cut = CutUTF8(text, st.maxText-st.text.Len()), true
		}
		if text != "" {
			st.text.WriteString(text)
			st.emit(agent.Event{Kind: agent.EventDelta, Text: text})
		}
		if cut {
			return &agent.AnswerTooLongError{Limit: st.maxText}
		}
		if ch.FinishReason != "" {
			st.finish = ch.FinishReason
			if ch.FinishReason == "error" {
				failed = agent.ErrAgentFailed
			}
		}
	}
	return failed
}

// MaxToolField bounds each field of a tool progress event (our choice):
// names, labels and ids are a few words, and the status line shows fewer.
const MaxToolField = 256

// CutUTF8 is the longest start of s of at most n bytes that does not
// split a character.
func CutUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// toolProgress passes a hermes.tool.progress event on. Tools whose names
// start with "_" are internal to the agent and not shown.
func (st *stream) toolProgress(data []byte) {
	var p agent.ToolProgress
	if err := gojson.Unmarshal(data, &p); err != nil || p.Tool == "" {
		st.log.Debug("skipping a malformed tool progress event", "bytes", len(data))
		return
	}
	if strings.HasPrefix(p.Tool, "_") {
		return
	}
	for _, f := range []*string{&p.Tool, &p.Emoji, &p.Label, &p.ToolCallID, &p.Status} {
		*f = CutUTF8(*f, MaxToolField)
	}
	st.emit(agent.Event{Kind: agent.EventTool, Tool: &p})
}
