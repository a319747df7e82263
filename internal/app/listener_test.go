package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/httpserve/httpservetest"
)

// serveApp builds and runs a gateway on a loopback listener with the
// given settings until the test ends, and returns the listener's address.
func serveApp(t *testing.T, env map[string]string) string {
	t.Helper()
	env["HERALD_HTTP_ADDR"] = "127.0.0.1:0"
	a, err := Build(t.Context(), configtest.MustLoad(t, "", env), Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a.Addr()
}

// With the connections and event streams a client may hold all taken,
// the web chat and its streams answer 503, and /healthz and /readyz still
// answer 200.
func TestHealthAnswersOverTheCaps(t *testing.T) {
	addr := serveApp(t, map[string]string{
		"HERALD_HTTP_MAX_CONNECTIONS_PER_CLIENT":   "2",
		"HERALD_HTTP_MAX_EVENT_STREAMS_PER_CLIENT": "1",
	})
	const events = "/api/events?conversation=conv-0123456789"
	if resp := httpservetest.Dial(t, addr, "").Start(events); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first event stream: %s", resp.Status)
	}
	if resp, body := httpservetest.Dial(t, addr, "").Get(events); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "event streams") {
		t.Errorf("a second event stream: %s %q, want 503 for too many event streams", resp.Status, body)
	}

	over := httpservetest.Dial(t, addr, "")
	if resp, _ := over.Get("/"); resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Errorf("the page over the connection cap: %s close=%v, want 503 and the connection closed", resp.Status, resp.Close)
	}
	over.Closed()
	for _, path := range []string{"/healthz", "/readyz"} {
		probe := httpservetest.Dial(t, addr, "")
		if resp, _ := probe.Get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s over the connection cap: %s, want 200", path, resp.Status)
		}
		probe.Closed()
	}
}

// HERALD_HTTP_IDLE_TIMEOUT closes a kept-alive connection that sends
// nothing more.
func TestIdleTimeoutFromTheConfiguration(t *testing.T) {
	addr := serveApp(t, map[string]string{"HERALD_HTTP_IDLE_TIMEOUT": "50ms"})
	c := httpservetest.Dial(t, addr, "")
	if resp, _ := c.Get("/healthz"); resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz: %s close=%v, want 200 kept alive", resp.Status, resp.Close)
	}
	c.Closed()
}
