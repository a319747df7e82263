// Package ops serves Herald's own HTTP endpoints for operators: liveness and
// readiness, for container health checks and orchestrators.
package ops

import (
	"net/http"
	"sync/atomic"
)

// Ready reports whether the gateway can take messages. Parts that must
// start first (platform connections, crypto) flip it when they are done.
type Ready struct {
	ready atomic.Bool
}

// Set marks the gateway ready or not.
func (r *Ready) Set(ready bool) { r.ready.Store(ready) }

// Handler serves /healthz (the process is up) and /readyz (200 once ready,
// 503 before).
func Handler(ready *Ready) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
