package ops

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestHealthReadinessMetricsAndApp(t *testing.T) {
	var ready atomic.Bool
	m := NewMetrics()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "app "+r.URL.Path) })
	srv := httptest.NewServer(Handler(func() Readiness {
		parts := map[string]any{"platforms": map[string]string{"webchat": "connecting"}}
		if !ready.Load() {
			return Readiness{Err: errors.New("platform webchat is not connected yet"), Parts: parts}
		}
		parts["platforms"] = map[string]string{"webchat": "connected"}
		return Readiness{Parts: parts}
	}, m, app))
	defer srv.Close()

	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"reason":"platform webchat is not connected yet"`) ||
		!strings.Contains(body, `"platforms":{"webchat":"connecting"}`) {
		t.Fatalf("/readyz before ready = %d %s, want 503 with the reason and the parts", code, body)
	}
	ready.Store(true)
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"status":"ready"`) ||
		!strings.Contains(body, `"platforms":{"webchat":"connected"}`) {
		t.Fatalf("/readyz when ready = %d %q", code, body)
	}
	m.Turns.WithLabelValues("delivered").Inc()
	if code, body := get(t, srv.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, `herald_turns_total{outcome="delivered"} 1`) {
		t.Errorf("/metrics = %d, lacks the turn counter", code)
	}
	if code, body := get(t, srv.URL+"/chat"); code != http.StatusOK || body != "app /chat" {
		t.Errorf("/chat = %d %q, want the app", code, body)
	}
}
