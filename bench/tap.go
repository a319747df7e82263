package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// chatIDHeader is the header Herald sends upstream naming the chat of a turn
// (for the web chat, the conversation id). The direct client sends it too, so
// that every upstream stream can be matched to the conversation that asked.
const chatIDHeader = "X-Hermes-Chat-Id"

// tap sits in front of the simulator and records, for each chat completion
// stream, when its bytes went out: the time the first content chunk and the
// [DONE] marker were flushed to the socket, and the text it carried. These
// are the upstream times the relay latencies are measured from.
type tap struct {
	next http.Handler

	mu  sync.Mutex
	ups map[string]*upstream
}

func newTap(next http.Handler) *tap {
	return &tap{next: next, ups: map[string]*upstream{}}
}

// upstream is what the tap saw of one stream. Guarded by its mu.
type upstream struct {
	mu        sync.Mutex
	arrived   time.Time // the request reached the simulator
	firstText time.Time // the first content chunk was flushed
	lastText  time.Time // the last content chunk was flushed
	lastByte  time.Time // [DONE] was flushed
	text      strings.Builder
	tokens    int
	requests  int           // more than one means the same chat asked twice
	done      chan struct{} // closed when the simulator's handler returned
}

// upstreamRecord is a copy of an upstream's record.
type upstreamRecord struct {
	Arrived, FirstText, LastText, LastByte time.Time
	Text                                   string
	Tokens, Requests                       int
}

func (t *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get(chatIDHeader)
	if r.URL.Path != "/v1/chat/completions" || key == "" {
		t.next.ServeHTTP(w, r)
		return
	}
	now := time.Now()
	t.mu.Lock()
	u := t.ups[key]
	if u == nil {
		u = &upstream{done: make(chan struct{})}
		t.ups[key] = u
	}
	t.mu.Unlock()
	u.mu.Lock()
	u.requests++
	if u.arrived.IsZero() {
		u.arrived = now
	}
	u.mu.Unlock()
	tw := &tapWriter{ResponseWriter: w, rc: http.NewResponseController(w), u: u}
	defer func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.requests == 1 {
			close(u.done)
		}
	}()
	t.next.ServeHTTP(tw, r)
}

// record returns what the tap saw of the stream for chat key, once the
// simulator has finished answering it (or wait has passed).
func (t *tap) record(key string, wait time.Duration) (upstreamRecord, bool) {
	t.mu.Lock()
	u := t.ups[key]
	t.mu.Unlock()
	if u == nil {
		return upstreamRecord{}, false
	}
	select {
	case <-u.done:
	case <-time.After(wait):
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return upstreamRecord{
		Arrived: u.arrived, FirstText: u.firstText, LastText: u.lastText, LastByte: u.lastByte,
		Text: u.text.String(), Tokens: u.tokens, Requests: u.requests,
	}, true
}

// forget drops the records of the given chats, so that a long run does not
// keep them all.
func (t *tap) forget(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.ups, k)
	}
}

// tapWriter watches what the simulator writes: each Write is parsed for
// content chunks and [DONE], and each flush stamps what it pushed out.
type tapWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	u       *upstream
	partial []byte // an incomplete line carried to the next Write

	// What the bytes written since the last flush hold.
	pendingText bool
	pendingDone bool
}

var (
	contentKey = []byte(`"delta":{"content":"`)
	dataPrefix = []byte("data: ")
	doneData   = []byte("[DONE]")
)

func (tw *tapWriter) Write(p []byte) (int, error) {
	buf := p
	if len(tw.partial) > 0 {
		buf = append(tw.partial, p...)
		tw.partial = nil
	}
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) > 0 {
				tw.partial = append([]byte(nil), buf...)
			}
			break
		}
		tw.line(buf[:i])
		buf = buf[i+1:]
	}
	return tw.ResponseWriter.Write(p)
}

// line notes what one SSE line carries.
func (tw *tapWriter) line(l []byte) {
	data, ok := bytes.CutPrefix(l, dataPrefix)
	if !ok {
		return
	}
	if bytes.Equal(data, doneData) {
		tw.pendingDone = true
		return
	}
	text, ok := contentOf(data)
	if !ok || text == "" {
		return
	}
	tw.u.mu.Lock()
	tw.u.text.WriteString(text)
	tw.u.tokens++
	tw.u.mu.Unlock()
	tw.pendingText = true
}

// contentOf pulls choices[0].delta.content out of a chunk without decoding
// all of it: the tap runs in the load generator, whose CPU is shared with
// the gateway under test.
func contentOf(data []byte) (string, bool) {
	i := bytes.Index(data, contentKey)
	if i < 0 {
		return "", false
	}
	start := i + len(contentKey)
	escaped := false
	for j := start; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++ // skip the escaped character
		case '"':
			if !escaped {
				return string(data[start:j]), true
			}
			var s string
			if err := json.Unmarshal(data[start-1:j+1], &s); err != nil {
				return "", false
			}
			return s, true
		}
	}
	return "", false
}

// FlushError stamps the content and [DONE] that the flush is about to send,
// then flushes them to the socket: the write system call falls inside the
// measured latency, for the direct and the relayed path alike.
// http.ResponseController finds it on the writer.
func (tw *tapWriter) FlushError() error {
	now := time.Now()
	if tw.pendingText || tw.pendingDone {
		tw.u.mu.Lock()
		if tw.pendingText {
			if tw.u.firstText.IsZero() {
				tw.u.firstText = now
			}
			tw.u.lastText = now
		}
		if tw.pendingDone {
			tw.u.lastByte = now
		}
		tw.u.mu.Unlock()
		tw.pendingText, tw.pendingDone = false, false
	}
	return tw.rc.Flush()
}

// Unwrap lets http.ResponseController reach the real writer for the rest.
func (tw *tapWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }
