// Package ops serves Herald's own HTTP endpoints for operators: liveness,
// readiness and metrics, beside the web chat.
package ops

import (
	"encoding/json"
	"net/http"
)

// The paths of the health checks, which Herald's listener answers even
// over its connection caps.
const (
	HealthPath = "/healthz"
	ReadyPath  = "/readyz"
)

// Handler serves /healthz (200 while the process runs), /readyz (200 once
// ready() returns nil, else 503 with the reason as JSON) and /metrics; every
// other path goes to app (the web chat), or 404 when app is nil.
func Handler(ready func() error, metrics *Metrics, app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", metrics.Handler())
	if app != nil {
		mux.Handle("/", app)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
