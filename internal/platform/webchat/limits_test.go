package webchat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/httpserve"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/syncbuf"
)

// After maxFailures wrong tokens a client is refused with 429, even with
// the right token (else the refusals would tell a guesser which guess was
// right); another client is not; the log says so without the token.
func TestWrongTokensLockTheClientOut(t *testing.T) {
	var logs syncbuf.Buffer
	_, ts := start(t, Options{Token: testToken}, platform.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	history := "/api/history?conversation=" + conv
	for i := range maxFailures {
		decode[apiError](t, request(t, ts, "GET", history, nil, fmt.Sprintf("Authorization: Bearer guess-%d", i)), http.StatusUnauthorized)
	}
	for _, auth := range []string{"Bearer " + testToken, "Bearer another-guess", ""} {
		resp := request(t, ts, "GET", history, nil, "Authorization: "+auth)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > int(failureWindow/time.Second) {
			t.Errorf("%q after %d wrong tokens: Retry-After %q, want 1 to %d seconds", auth, maxFailures, resp.Header.Get("Retry-After"), int(failureWindow/time.Second))
		}
		if e := decode[apiError](t, resp, http.StatusTooManyRequests); !strings.Contains(e.Error, "wrong tokens") {
			t.Errorf("429 says %q, want it to say why", e.Error)
		}
	}
	other := clientFrom(t, "127.0.0.2")
	decode[historyBody](t, requestAt(t, other, ts.URL, "GET", history, nil, "Authorization: Bearer "+testToken), http.StatusOK)

	if got := logs.String(); !strings.Contains(got, "too many wrong web chat tokens") || !strings.Contains(got, "client=127.0.0.1") {
		t.Errorf("logs %q, want the lockout of 127.0.0.1 noted", got)
	}
	if strings.Contains(logs.String(), testToken) {
		t.Error("the token is in the logs")
	}
}

// Event streams beyond the caps, per client and in total, get 503 with
// Retry-After; a stream that ends gives its place back.
func TestEventStreamCaps(t *testing.T) {
	_, ts := start(t, Options{}, platform.Deps{MaxEventStreams: 2, MaxEventStreamsPerClient: 1}, nil)
	a, b, c := ts.Client(), clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	events := "/api/events?conversation=" + conv

	first := openStreamAt(t, a, ts.URL, conv, "")
	first.waitComment("ready")
	refused(t, requestAt(t, a, ts.URL, "GET", events, nil), "your address")
	openStreamAt(t, b, ts.URL, conv, "").waitComment("ready")
	refused(t, requestAt(t, c, ts.URL, "GET", events, nil), "too many event streams")

	// The server sees the first stream end when its connection closes;
	// until then the third client is still refused.
	first.close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := requestAt(t, c, ts.URL, "GET", events, nil)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a place given back is still refused: %s", resp.Status)
		}
		time.Sleep(10 * time.Millisecond) // polling: the server notices the close on its own
	}
}

func refused(t *testing.T, resp *http.Response, why string) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		resp.Body.Close() // an event stream would not end
		t.Fatalf("status %s, want 503", resp.Status)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if e := decode[apiError](t, resp, http.StatusServiceUnavailable); !strings.Contains(e.Error, why) {
		t.Errorf("503 says %q, want %q", e.Error, why)
	}
}

// On Herald's listener, whose read, write and idle timeouts are far
// shorter here than the stream lives, an event stream stays open and
// keeps delivering: the timeouts are for requests, not for streams.
func TestEventStreamOutlivesTheListenerTimeouts(t *testing.T) {
	const timeout = 50 * time.Millisecond
	a, err := New(Options{}, platform.Deps{HTTPAddr: "127.0.0.1:8643", Logger: platformtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fastKeepalive(a)
	run(t, a, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- httpserve.Serve(ctx, ln, a.Handler(), httpserve.Limits{ReadTimeout: timeout, WriteTimeout: timeout, IdleTimeout: timeout})
	}()
	t.Cleanup(func() { cancel(); <-served })
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)

	s := openStreamAt(t, hc, "http://"+ln.Addr().String(), conv, "")
	s.waitComment("ready")
	for opened := time.Now(); time.Since(opened) < 4*timeout; {
		s.waitComment("keepalive")
	}
	if _, err := a.Send(t.Context(), target, "still there"); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(); ev.Name != "message" || ev.Text != "still there" {
		t.Errorf("after the timeouts: %+v, want the message", ev)
	}
}

// When guessers from more addresses than the lockout's table holds have
// locked the record they share, a user who sent the right token lately
// still gets in; a newcomer does not; and the user's own wrong tokens
// still lock it out.
func TestTrustedClientIsNotLockedOutByTheCrowd(t *testing.T) {
	a, _ := start(t, Options{Token: testToken}, platform.Deps{}, nil)
	h := a.Handler()
	history := "/api/history?conversation=" + conv
	get := func(from, token string) int {
		r := httptest.NewRequest("GET", history, nil)
		r.RemoteAddr = from + ":50000"
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const user = "192.0.2.1"
	if code := get(user, testToken); code != http.StatusOK {
		t.Fatalf("the user with the right token: %d", code)
	}
	for i := range maxClients + maxFailures {
		guesser := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		if code := get(guesser, "a-guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, code)
		}
	}
	if code := get("198.51.100.1", testToken); code != http.StatusTooManyRequests {
		t.Errorf("a newcomer while the shared record is locked: %d, want 429", code)
	}
	if code := get(user, testToken); code != http.StatusOK {
		t.Errorf("the user, trusted, while the shared record is locked: %d, want 200", code)
	}
	for range maxFailures {
		get(user, "a-typo")
	}
	if code := get(user, testToken); code != http.StatusTooManyRequests {
		t.Errorf("the user after %d wrong tokens of its own: %d, want 429", maxFailures, code)
	}
}
