// Package ops serves Herald's own HTTP endpoints for operators: liveness,
// readiness and metrics, beside the web chat.
package ops

import (
	"encoding/json"
	"maps"
	"net/http"
)

// The paths of the health checks, which Herald's listener answers even
// over its connection caps.
const (
	HealthPath = "/healthz"
	ReadyPath  = "/readyz"
)

// Readiness is what /readyz answers: Err is nil when ready, else why not;
// Parts are the states of what the gateway depends on (the agent server,
// each platform, a replica's lease), shown either way.
type Readiness struct {
	Err   error
	Parts map[string]any
}

// Handler serves /healthz (200 while the process runs), /readyz (as JSON:
// 200 once ready's Err is nil, else 503 with it as the reason, and the
// parts either way) and /metrics; every other path goes to app (the web
// chat), or 404 when app is nil.
func Handler(ready func() Readiness, metrics *Metrics, app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		r := ready()
		body := map[string]any{}
		maps.Copy(body, r.Parts)
		if r.Err != nil {
			body["status"], body["reason"] = "not ready", r.Err.Error()
			writeJSON(w, http.StatusServiceUnavailable, body)
			return
		}
		body["status"] = "ready"
		writeJSON(w, http.StatusOK, body)
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
