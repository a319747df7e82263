package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/httpserve/httpservetest"
	"github.com/herald-chat/herald/internal/syncbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bodyErrs receives what reading a POST /upload body ended with.
type bodyErrs chan error

// serve serves a small site within limits on a loopback listener until
// the test ends: /healthz (a probe), / and POST /upload, which reads its
// body and reports how that ended.
func serve(t *testing.T, limits Limits) (addr string, uploads bodyErrs) {
	t.Helper()
	uploads = make(bodyErrs, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "page") })
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		uploads <- err
	})
	limits.Probes = []string{"/healthz"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, mux, limits)
	return ln.Addr().String(), uploads
}

// serveOn serves h on ln within limits until the test ends.
func serveOn(t *testing.T, ln net.Listener, h http.Handler, limits Limits) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, limits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// A kept-alive connection that sends no further request is closed after
// the idle timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	addr, _ := serve(t, Limits{IdleTimeout: 50 * time.Millisecond, ReadTimeout: time.Minute})
	c := httpservetest.Dial(t, addr, "")
	if resp, body := c.Get("/"); resp.StatusCode != http.StatusOK || resp.Close || body != "page" {
		t.Fatalf("GET /: %s close=%v %q, want 200 kept alive with the page", resp.Status, resp.Close, body)
	}
	c.Closed()
}

// A body sent one byte at a time is cut at the read timeout, which
// covers the whole request.
func TestSlowBodyIsCut(t *testing.T) {
	addr, uploads := serve(t, Limits{ReadTimeout: 200 * time.Millisecond})
	c := httpservetest.Dial(t, addr, "")
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: herald\r\nContent-Length: 100000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond): // the slow client's pace
			}
			if _, err := c.Write([]byte{'x'}); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-trickled }()
	select {
	case err := <-uploads:
		if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
			t.Fatalf("reading the body ended with %v, want a timeout", err)
		}
	case <-time.After(httpservetest.HangGuard):
		t.Fatalf("the body was still being read after %s", httpservetest.HangGuard)
	}
}

// A client over its cap gets 503 (and its connection closed) while
// another client is served; a probe is answered all the same; beyond
// the spare room, a connection is closed at once; a place given back is
// taken again.
func TestConnectionsPerClient(t *testing.T) {
	addr, _ := serve(t, Limits{MaxConnectionsPerClient: 2, ReadTimeout: time.Minute, IdleTimeout: time.Minute})
	for range 2 {
		if resp, _ := httpservetest.Dial(t, addr, "").Get("/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("within the cap: %s", resp.Status)
		}
	}

	over := httpservetest.Dial(t, addr, "")
	resp, body := over.Get("/")
	wantRefused(t, resp, body, "your address")
	over.Closed()

	probe := httpservetest.Dial(t, addr, "")
	if resp, body := probe.Get("/healthz"); resp.StatusCode != http.StatusOK || !resp.Close || body != "ok" {
		t.Errorf("a probe over the cap: %s close=%v %q, want 200 ok and the connection closed", resp.Status, resp.Close, body)
	}
	probe.Closed()

	if resp, _ := httpservetest.Dial(t, addr, "127.0.0.2").Get("/"); resp.StatusCode != http.StatusOK {
		t.Errorf("another client: %s, want 200", resp.Status)
	}

	// The one spare place (a quarter of 2, at least one) is held by a
	// connection that sends nothing: the next is closed unanswered.
	httpservetest.Dial(t, addr, "").Write([]byte("GET"))
	beyond := httpservetest.Dial(t, addr, "")
	_, _ = io.WriteString(beyond, "GET / HTTP/1.1\r\nHost: herald\r\n\r\n") // may fail: closed already
	beyond.Closed()
}

// Beyond the total cap, any client gets 503, and a probe is answered.
func TestConnectionsInTotal(t *testing.T) {
	addr, _ := serve(t, Limits{MaxConnections: 2, ReadTimeout: time.Minute, IdleTimeout: time.Minute})
	httpservetest.Dial(t, addr, "127.0.0.2").Get("/")
	httpservetest.Dial(t, addr, "127.0.0.3").Get("/")

	over := httpservetest.Dial(t, addr, "127.0.0.4")
	resp, body := over.Get("/")
	wantRefused(t, resp, body, "in total")
	over.Closed()

	if resp, body := httpservetest.Dial(t, addr, "127.0.0.4").Get("/healthz"); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("a probe over the cap: %s %q, want 200 ok", resp.Status, body)
	}
}

// A connection over the caps that sends nothing is closed soon, not at
// the (long) read timeout.
func TestIdleConnectionOverTheCapIsClosed(t *testing.T) {
	addr, _ := serve(t, Limits{MaxConnections: 1, ReadTimeout: time.Hour})
	httpservetest.Dial(t, addr, "").Get("/")
	httpservetest.Dial(t, addr, "").Closed()
}

func wantRefused(t *testing.T, resp *http.Response, body, why string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Errorf("over the cap: %s, Retry-After %q, close=%v; want 503 with Retry-After and Connection: close",
			resp.Status, resp.Header.Get("Retry-After"), resp.Close)
	}
	if !strings.Contains(body, why) {
		t.Errorf("over the cap: body %q, want it to say %q", body, why)
	}
}

// The operator learns that the caps refused connections, and which cap,
// in one line however many there are.
func TestRefusalsAreLoggedOnce(t *testing.T) {
	var logs syncbuf.Buffer
	addr, _ := serve(t, Limits{MaxConnectionsPerClient: 1, ReadTimeout: time.Minute, IdleTimeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	httpservetest.Dial(t, addr, "").Get("/")
	for range 3 {
		over := httpservetest.Dial(t, addr, "")
		over.Get("/")
		over.Closed()
	}
	got := logs.String()
	if strings.Count(got, "HTTP connections refused") != 1 ||
		!strings.Contains(got, `cap="http.max_connections_per_client (HERALD_HTTP_MAX_CONNECTIONS_PER_CLIENT)"`) {
		t.Errorf("log:\n%s\nwant one warning naming http.max_connections_per_client and its environment variable", got)
	}
}

// headerRequest is GET / with fields header fields of 4 KiB each.
func headerRequest(fields int) string {
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: herald\r\n")
	for i := range fields {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("x", 4<<10))
	}
	b.WriteString("\r\n")
	return b.String()
}

// Headers within nginx's default bound are read; beyond maxHeaderBytes
// (and net/http's 4 KiB of slack) they get 431, not a megabyte of memory.
func TestHeadersAreBounded(t *testing.T) {
	addr, _ := serve(t, Limits{ReadTimeout: time.Minute, IdleTimeout: time.Minute})
	resp := httpservetest.Dial(t, addr, "").Send(headerRequest(6))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("24 KiB of headers: %s, want 200", resp.Status)
	}

	over := httpservetest.Dial(t, addr, "")
	resp = over.Send(headerRequest(12))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || string(body) != "431 Request Header Fields Too Large" {
		t.Errorf("48 KiB of headers: %s %q, want 431 Request Header Fields Too Large", resp.Status, body)
	}
	over.Closed()
}
