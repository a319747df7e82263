package completions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sse"
)

// stream gathers one answer while passing its events on.
type stream struct {
	emit   func(agent.Event)
	text   strings.Builder
	finish string
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
// connection open. This loop runs once per token for every stream the
// gateway relays, so events are parsed in place, in the reader's buffer,
// with go-json rather than encoding/json: it decodes a chunk several times
// faster with a third of the allocations, and FuzzDecodeMatchesEncodingJSON
// holds it to encoding/json's results for the types decoded here.
func (st *stream) readEvents(r io.Reader, log *slog.Logger) error {
	events := sse.NewReader(r)
	var c chunk // one for every event; see reset
	var failed error
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			if failed == nil && st.finish == "" {
				return agent.ErrIncomplete
			}
			return failed
		}
		if err != nil {
			return err
		}
		switch ev.Name {
		case ToolProgressEvent:
			st.toolProgress(ev.Data, log)
		case "", "message":
			if bytes.Equal(bytes.TrimSpace(ev.Data), doneMarker) {
				return failed
			}
			c.reset()
			if err := gojson.Unmarshal(ev.Data, &c); err != nil {
				log.Debug("skipping a malformed stream chunk", "error", err, "bytes", len(ev.Data))
				continue
			}
			if err := st.chunk(&c, false); err != nil && failed == nil {
				failed = err
			}
		}
	}
}

// readCompletion reads a non-streaming answer, for servers that ignore
// "stream": true.
func (st *stream) readCompletion(r io.Reader) error {
	var c chunk
	if err := json.NewDecoder(r).Decode(&c); err != nil {
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
func (st *stream) chunk(c *chunk, whole bool) error {
	if c.Error != nil {
		return &agent.StreamError{Message: c.Error.Message}
	}
	var failed error
	for _, ch := range c.Choices {
		text := ch.Delta.Content
		if whole {
			text = ch.Message.Content
		}
		if text != "" {
			st.text.WriteString(text)
			st.emit(agent.Event{Kind: agent.EventDelta, Text: text})
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

// toolProgress passes a hermes.tool.progress event on. Tools whose names
// start with "_" are internal to the agent and not shown.
func (st *stream) toolProgress(data []byte, log *slog.Logger) {
	var p agent.ToolProgress
	if err := gojson.Unmarshal(data, &p); err != nil || p.Tool == "" {
		log.Debug("skipping a malformed tool progress event", "bytes", len(data))
		return
	}
	if strings.HasPrefix(p.Tool, "_") {
		return
	}
	st.emit(agent.Event{Kind: agent.EventTool, Tool: &p})
}
