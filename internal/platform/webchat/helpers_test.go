package webchat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const conv = "conv-0123456789"

// testToken is a web chat token long enough for any listener.
const testToken = "s3cret-token-0123456789"

// target is where the gateway answers conv.
var target = chat.Target{ChatID: conv}

// newAdapter makes an adapter, has configure change it (before anything
// can read it), and serves its handler; it does not run it.
// The listener is on loopback unless d says otherwise.
func newAdapter(t *testing.T, opts Options, d platform.Deps, configure ...func(*Adapter)) (*Adapter, *httptest.Server) {
	t.Helper()
	if d.Logger == nil {
		d.Logger = platformtest.Logger(t)
	}
	if d.HTTPAddr == "" {
		d.HTTPAddr = "127.0.0.1:8643"
	}
	a, err := New(opts, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range configure {
		f(a)
	}
	ts := httptest.NewServer(a.Handler())
	t.Cleanup(ts.Close)
	return a, ts
}

// start makes an adapter, serves it and runs it with h until the test
// ends (a nil h takes every message).
func start(t *testing.T, opts Options, d platform.Deps, h platform.Handler, configure ...func(*Adapter)) (*Adapter, *httptest.Server) {
	t.Helper()
	a, ts := newAdapter(t, opts, d, configure...)
	run(t, a, h)
	return a, ts
}

// run runs a until the test ends, or until the returned func is called.
func run(t *testing.T, a *Adapter, h platform.Handler) (stop func()) {
	t.Helper()
	if h == nil {
		h = func(context.Context, chat.Inbound) error { return nil }
	}
	return platformtest.Run(t, a, h, 5*time.Second)
}

// request makes an API request with a JSON body (when body is not nil) and
// the given headers, in "Name: value" form.
func request(t *testing.T, ts *httptest.Server, method, path string, body any, headers ...string) *http.Response {
	t.Helper()
	return requestAt(t, ts.Client(), ts.URL, method, path, body, headers...)
}

// requestAt is request to the server at base, with client hc.
func requestAt(t *testing.T, hc *http.Client, base, method, path string, body any, headers ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		if name == "Host" {
			req.Host = value
		}
		req.Header.Set(name, value)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// decode reads a JSON response body, checking its status.
func decode[T any](t *testing.T, resp *http.Response, status int) T {
	t.Helper()
	defer resp.Body.Close()
	var v T
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip: another client, for what is counted per client.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fastKeepalive makes the adapter's streams send keepalives every few
// milliseconds, for tests that wait for one.
func fastKeepalive(a *Adapter) { a.keepalive = 5 * time.Millisecond }

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

type historyBody struct {
	Messages []historyEntry `json:"messages"`
	Cursor   string         `json:"cursor"`
}

// stream is an open GET /api/events, read in the background so that the
// test can wait for events and comments with a deadline.
type stream struct {
	t        *testing.T
	resp     *http.Response
	cancel   context.CancelFunc
	events   chan received
	comments chan string
	done     chan struct{} // closed when the stream ends
	err      error         // why it ended, set before done is closed
}

// received is one event as the test sees it.
type received struct {
	Name   string
	Cursor string
	ID     string `json:"id"`
	Text   string `json:"text"`
	HTML   string `json:"html"`
}

// openStream opens the event stream of conv after cursor (none when
// empty), with the given headers in "Name: value" form.
func openStream(t *testing.T, ts *httptest.Server, conv, after string, headers ...string) *stream {
	t.Helper()
	return openStreamAt(t, ts.Client(), ts.URL, conv, after, headers...)
}

// openStreamAt is openStream on the server at base, with client hc.
func openStreamAt(t *testing.T, hc *http.Client, base, conv, after string, headers ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	path := "/api/events?conversation=" + conv
	if after != "" {
		path += "&after=" + after
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		t.Fatalf("events: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events: Content-Type %q", ct)
	}
	s := &stream{
		t: t, resp: resp, cancel: cancel,
		events:   make(chan received, 1000),
		comments: make(chan string, 1000),
		done:     make(chan struct{}),
	}
	rd := sse.NewReader(resp.Body)
	rd.OnComment = func(c string) { s.comments <- c }
	go func() {
		defer close(s.done)
		for {
			ev, err := rd.Next()
			if err != nil {
				s.err = err
				return
			}
			r := received{Name: ev.Name, Cursor: ev.ID}
			if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
				s.err = fmt.Errorf("event %s data %q: %w", ev.Name, ev.Data, err)
				return
			}
			s.events <- r
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

// next returns the next event, failing the test if none comes soon.
func (s *stream) next() received {
	s.t.Helper()
	select {
	case r := <-s.events:
		return r
	case <-s.done:
		select {
		case r := <-s.events:
			return r
		default:
		}
		s.t.Fatalf("the event stream ended: %v", s.err)
	case <-time.After(5 * time.Second):
		s.t.Fatal("no event within 5s")
	}
	return received{}
}

// quiet checks that no event is pending once the stream passed comment
// want: "ready" (after the replay), or "keepalive" (two new ones, so that
// whatever was published before the call had its turn to be written).
func (s *stream) quiet(want string) {
	s.t.Helper()
	if want == "keepalive" {
		for len(s.comments) > 0 {
			<-s.comments
		}
		s.waitComment(want)
	}
	s.waitComment(want)
	select {
	case r := <-s.events:
		s.t.Errorf("unexpected event %+v", r)
	default:
	}
}

// waitComment waits for the comment want.
func (s *stream) waitComment(want string) {
	s.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case c := <-s.comments:
			if c == want {
				return
			}
		case <-s.done:
			s.t.Fatalf("the event stream ended before comment %q: %v", want, s.err)
		case <-deadline:
			s.t.Fatalf("no comment %q within 5s", want)
		}
	}
}

// ends waits for the server to end the stream.
func (s *stream) ends() {
	s.t.Helper()
	select {
	case <-s.done:
		if s.err != io.EOF {
			s.t.Errorf("the stream ended with %v, want EOF", s.err)
		}
	case <-time.After(5 * time.Second):
		s.t.Fatal("the stream did not end within 5s")
	}
}
