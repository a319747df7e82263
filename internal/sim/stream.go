package sim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// ToolProgressEvent is the SSE event name the real server uses to report a
// tool the agent runs while it answers.
const ToolProgressEvent = "hermes.tool.progress"

type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

type toolProgress struct {
	Tool       string `json:"tool"`
	Emoji      string `json:"emoji,omitempty"`
	Label      string `json:"label,omitempty"`
	ToolCallID string `json:"toolCallId"`
	Status     string `json:"status"`
}

// errAbort ends a stream that the DisconnectAfter or EndlessEventBytes
// fault cuts.
var errAbort = errors.New("sim: connection cut on purpose")

// stream sends the answer as server-sent events and records how it ended.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a answer) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set(SessionHeader, a.session)
	w.WriteHeader(http.StatusOK)

	sw := &sseWriter{
		w:         w,
		rc:        http.NewResponseController(w),
		ctx:       r.Context(),
		keepalive: s.opts.KeepaliveInterval,
		last:      time.Now(),
	}
	err := s.sendAnswer(sw, a)
	switch {
	case err == nil:
		s.count(func(st *Stats) { st.Completed++ })
	case errors.Is(err, errAbort):
		s.abort(a)
	default:
		s.gone(a, err)
	}
}

// sendAnswer writes the whole event sequence of one streamed answer.
func (s *Server) sendAnswer(sw *sseWriter, a answer) error {
	newChunk := func(d delta, finish string, u *usage) chunk {
		c := chunk{
			ID:      a.id,
			Object:  "chat.completion.chunk",
			Created: a.created,
			Model:   s.opts.Model,
			Choices: []chunkChoice{{Delta: d}},
			Usage:   u,
		}
		if finish != "" {
			c.Choices[0].FinishReason = &finish
		}
		return c
	}

	if err := sw.data(newChunk(delta{Role: "assistant"}, "", nil)); err != nil {
		return err
	}
	if err := s.runTools(sw); err != nil {
		return err
	}
	if s.opts.MalformedLines {
		if err := sw.write([]byte("data: {not json\n\n")); err != nil {
			return err
		}
	}

	send := a.tokens
	if s.opts.AgentError {
		send = send[:max(1, len(send)/2)]
	}
	cutAfter := min(s.opts.DisconnectAfter, len(send))
	interval := s.tokenInterval()
	var last string // the token encoded in line: a repeated one is encoded once
	var line []byte
	for i, tok := range send {
		if i > 0 {
			if err := sw.wait(interval); err != nil {
				return err
			}
		}
		if i == 0 || tok != last {
			var err error
			if line, err = encode("", newChunk(delta{Content: tok}, "", nil)); err != nil {
				return err
			}
			last = tok
		}
		if err := sw.write(line); err != nil {
			return err
		}
		if i == 0 && s.opts.EndlessEventBytes > 0 {
			if err := sw.endlessEvent(s.opts.EndlessEventBytes); err != nil {
				return err
			}
			return errAbort
		}
		if i+1 == cutAfter {
			return errAbort
		}
	}

	final := newChunk(delta{}, "stop", a.usage())
	if s.opts.AgentError {
		final = newChunk(delta{}, "error", nil)
	}
	if err := sw.data(final); err != nil {
		return err
	}
	return sw.write([]byte("data: [DONE]\n\n"))
}

// toolLook is how a tool is shown in its running event.
type toolLook struct{ emoji, label string }

// toolLooks covers the tools a demo is likely to name; others get a wrench.
var toolLooks = map[string]toolLook{
	"web_search":       {"🔍", "searching the web"},
	"web_extract":      {"📄", "reading a web page"},
	"terminal":         {"💻", "running a command"},
	"read_file":        {"📖", "reading a file"},
	"write_file":       {"✍️", "writing a file"},
	"browser_navigate": {"🌐", "browsing"},
	"image_generate":   {"🎨", "drawing an image"},
}

// runTools spends the first-token delay, reporting the simulated tools'
// progress when ToolProgress is set.
func (s *Server) runTools(sw *sseWriter) error {
	if !s.opts.ToolProgress {
		return sw.wait(s.opts.FirstTokenDelay)
	}
	each := s.opts.FirstTokenDelay / time.Duration(len(s.opts.Tools))
	for _, name := range s.opts.Tools {
		internal := strings.HasPrefix(name, "_")
		callID := "call_" + randomHex(12)
		if !internal {
			look, ok := toolLooks[name]
			if !ok {
				look = toolLook{"🔧", "running " + name}
			}
			err := sw.event(ToolProgressEvent, toolProgress{
				Tool: name, Emoji: look.emoji, Label: look.label, ToolCallID: callID, Status: "running",
			})
			if err != nil {
				return err
			}
		}
		if err := sw.wait(each); err != nil {
			return err
		}
		if !internal {
			err := sw.event(ToolProgressEvent, toolProgress{Tool: name, ToolCallID: callID, Status: "completed"})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// sseWriter writes events, flushing each one, and fills silences longer than
// the keepalive interval with comments, as the real server does.
type sseWriter struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	ctx       context.Context
	keepalive time.Duration
	last      time.Time // when output was last written
}

// encode makes v an event: its name (if not "") and v as JSON data.
func encode(name string, v any) ([]byte, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, err
	}
	var ev []byte
	if name != "" {
		ev = append(ev, "event: "+name+"\n"...)
	}
	ev = append(ev, "data: "...)
	ev = append(ev, b...)
	return append(ev, "\n\n"...), nil
}

func (sw *sseWriter) data(v any) error {
	return sw.event("", v)
}

func (sw *sseWriter) event(name string, v any) error {
	ev, err := encode(name, v)
	if err != nil {
		return err
	}
	return sw.write(ev)
}

// endlessLine is a data line of an endless event: 1 KiB, our choice, far
// below any client's line limit, so that only the event grows too large.
var endlessLine = "data: " + strings.Repeat("x", 1<<10-len("data: \n")) + "\n"

// endlessBlock is what endlessEvent writes at a time: 64 lines.
var endlessBlock = []byte(strings.Repeat(endlessLine, 64))

// endlessEvent writes n bytes of data lines without the blank line that
// would end their event.
func (sw *sseWriter) endlessEvent(n int) error {
	for n > 0 {
		b := endlessBlock[:min(n, len(endlessBlock))]
		if err := sw.write(b); err != nil {
			return err
		}
		n -= len(b)
	}
	return nil
}

// write sends p and flushes it, failing once the client is gone.
func (sw *sseWriter) write(p []byte) error {
	if err := sw.ctx.Err(); err != nil {
		return err
	}
	if _, err := sw.w.Write(p); err != nil {
		return err
	}
	if err := sw.rc.Flush(); err != nil {
		return err
	}
	sw.last = time.Now()
	return nil
}

// wait pauses for d, sending keepalive comments when the stream has been
// silent for the keepalive interval (so a pause at least that long always
// sends one), and stops early if the client leaves.
func (sw *sseWriter) wait(d time.Duration) error {
	if d <= 0 {
		return sw.ctx.Err()
	}
	done := time.NewTimer(d)
	defer done.Stop()
	for {
		ka := time.NewTimer(sw.keepalive - time.Since(sw.last))
		select {
		case <-sw.ctx.Done():
			ka.Stop()
			return sw.ctx.Err()
		case <-done.C:
			ka.Stop()
			// Both timers may be due when the goroutine wakes late; a
			// silence this long still gets its keepalive.
			if time.Since(sw.last) >= sw.keepalive {
				return sw.write([]byte(": keepalive\n\n"))
			}
			return nil
		case <-ka.C:
			if err := sw.write([]byte(": keepalive\n\n")); err != nil {
				return err
			}
		}
	}
}
