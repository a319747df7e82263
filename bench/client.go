package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/sse"
)

// newHTTPClient returns a loopback client, without compression or proxy,
// keeping up to idleConns connections idle for idleFor: many for the
// direct path's simultaneous streams, two for a web chat page.
func newHTTPClient(idleConns int, idleFor time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: idleConns,
		IdleConnTimeout:     idleFor,
		DisableCompression:  true,
	}}
}

// conversation is what one client saw of one turn.
type conversation struct {
	ID         string
	Posted     time.Time // the message was sent (direct: the request)
	FirstAt    time.Time // the first answer text arrived
	FinalAt    time.Time // the final text arrived
	Text       string    // the final text
	Reconnects int       // event streams cut off (fell behind) and reopened
	Err        error
}

// webClient talks to Herald's web chat the way its page does.
type webClient struct {
	base   string
	cursor string // the cursor intermediate texts end with
}

// webEvent is the data of a message or edit event.
type webEvent struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// page is one web chat page: a conversation and the page's own
// connections.
type page struct {
	c    *webClient
	hc   *http.Client
	conv string
}

// eventStream is one open GET /api/events, read by its own goroutine, which
// records when the answer's first and final texts arrive and reconnects
// (from the last cursor, as the page does) when Herald cuts it off.
type eventStream struct {
	page
	ctx    context.Context
	cancel context.CancelFunc

	ready chan struct{} // closed at the first ": ready"
	final chan struct{} // closed when the final text arrived
	ended chan struct{} // closed when the reading goroutine ends

	mu         sync.Mutex
	first      time.Time
	finalAt    time.Time
	text       string
	reconnects int
	err        error
	onFirst    func()
}

// open connects a page to the conversation: its event stream, live once
// Herald says ": ready", and its history. Each page then holds two
// connections, as a browser tab that has posted does: the stream's, and one
// kept alive for its API calls.
func (c *webClient) open(ctx context.Context, conv string, onFirst func()) (*eventStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	s := &eventStream{
		page: c.pageFor(conv), ctx: sctx, cancel: cancel, onFirst: onFirst,
		ready: make(chan struct{}), final: make(chan struct{}), ended: make(chan struct{}),
	}
	body, err := s.connect(sctx, "")
	if err != nil {
		cancel()
		s.hc.CloseIdleConnections()
		return nil, err
	}
	go s.read(body)
	select {
	case <-s.ready:
		// The history comes on a second connection (the first holds the
		// stream), which stays open for the page's posts.
		if err := s.history(sctx); err != nil {
			s.close()
			return nil, err
		}
		return s, nil
	case <-s.ended:
		s.close()
		return nil, fmt.Errorf("event stream of %s ended before it was ready: %w", conv, s.failure())
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	}
}

// pageFor is a page on a conversation, with connections of its own, as a
// browser tab has.
func (c *webClient) pageFor(conv string) page {
	return page{c: c, hc: newHTTPClient(2, 5*time.Minute), conv: conv}
}

// history reads GET /api/history, as a page does when it loads.
func (p page) history(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.c.base+"/api/history?"+url.Values{"conversation": {p.conv}}.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/history: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// connect opens the conversation's event stream, from a cursor if after is
// not "".
func (p page) connect(ctx context.Context, after string) (io.ReadCloser, error) {
	q := url.Values{"conversation": {p.conv}}
	if after != "" {
		q.Set("after", after)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.c.base+"/api/events?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET /api/events: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return resp.Body, nil
}

// maxReconnects bounds how often one turn's stream may be reopened.
const maxReconnects = 50

func (s *eventStream) read(body io.ReadCloser) {
	defer close(s.ended)
	var once sync.Once
	lastCursor := ""
	for {
		rd := sse.NewReader(body)
		rd.OnComment = func(c string) {
			if c == "ready" {
				once.Do(func() { close(s.ready) })
			}
		}
		done, err := s.consume(rd, &lastCursor)
		body.Close()
		if done || s.ctx.Err() != nil {
			return
		}
		// Cut off (a client that falls behind is) or broken: reopen from
		// the last cursor, as the page does.
		s.mu.Lock()
		s.reconnects++
		n := s.reconnects
		s.mu.Unlock()
		if n > maxReconnects {
			s.fail(fmt.Errorf("event stream cut %d times, last: %v", n, err))
			return
		}
		if body, err = s.connect(s.ctx, lastCursor); err != nil {
			if s.ctx.Err() == nil {
				s.fail(fmt.Errorf("reopening the event stream: %w", err))
			}
			return
		}
	}
}

// consume reads events until the final text (done) or the end of the stream.
func (s *eventStream) consume(rd *sse.Reader, lastCursor *string) (done bool, err error) {
	for {
		ev, err := rd.Next()
		if err != nil {
			return false, err
		}
		now := time.Now()
		if ev.ID != "" {
			*lastCursor = ev.ID
		}
		if ev.Name != "message" && ev.Name != "edit" {
			continue
		}
		var m webEvent
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			s.fail(fmt.Errorf("bad %s event: %w", ev.Name, err))
			return true, err
		}
		if m.Text == "" {
			continue
		}
		s.mu.Lock()
		first := s.first.IsZero()
		if first {
			s.first = now
		}
		final := !strings.HasSuffix(m.Text, s.c.cursor)
		if final {
			s.finalAt, s.text = now, m.Text
		}
		s.mu.Unlock()
		if first && s.onFirst != nil {
			s.onFirst()
		}
		if final {
			close(s.final)
			return true, nil
		}
	}
}

func (s *eventStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *eventStream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return errors.New("closed")
	}
	return s.err
}

// close ends the stream and its goroutine, and the page's connections.
func (s *eventStream) close() {
	s.cancel()
	<-s.ended
	s.hc.CloseIdleConnections()
}

// post sends a message to the conversation, as the page does.
func (p page) post(ctx context.Context, id, text string) error {
	body, _ := json.Marshal(map[string]string{"conversation": p.conv, "text": text, "id": id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.c.base+"/api/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /api/messages: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// await waits for the final text and returns what the stream saw.
func (s *eventStream) await(ctx context.Context, conv *conversation) {
	select {
	case <-s.final:
	case <-s.ended:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	conv.FirstAt, conv.FinalAt, conv.Text, conv.Reconnects = s.first, s.finalAt, s.text, s.reconnects
	switch {
	case !s.finalAt.IsZero():
	case s.err != nil:
		conv.Err = s.err
	case ctx.Err() != nil:
		conv.Err = fmt.Errorf("no final text: %w", ctx.Err())
	default:
		conv.Err = errors.New("event stream ended without the final text")
	}
}

// directTurn asks the simulator directly, as a plain streaming client would,
// reading the answer with the same SSE reader and JSON decoding Herald uses.
func directTurn(ctx context.Context, hc *http.Client, simURL, conv, text string, onFirst func()) conversation {
	c := conversation{ID: conv}
	body, _ := json.Marshal(map[string]any{
		"model":    "hermes-agent",
		"stream":   true,
		"messages": []map[string]string{{"role": "user", "content": text}},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, simURL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		c.Err = err
		return c
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(chatIDHeader, conv)
	c.Posted = time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		c.Err = err
		return c
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Err = fmt.Errorf("simulator: %s", resp.Status)
		return c
	}
	var sb strings.Builder
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			c.Err = fmt.Errorf("stream ended before [DONE]: %w", err)
			return c
		}
		now := time.Now()
		if string(ev.Data) == "[DONE]" {
			c.FinalAt, c.Text = now, sb.String()
			return c
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &ch); err != nil {
			c.Err = err
			return c
		}
		for _, choice := range ch.Choices {
			if choice.Delta.Content == "" {
				continue
			}
			if c.FirstAt.IsZero() {
				c.FirstAt = now
				if onFirst != nil {
					onFirst()
				}
			}
			sb.WriteString(choice.Delta.Content)
		}
	}
}
