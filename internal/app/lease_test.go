package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/syncbuf"
)

// leaser grants the lease until taken says another holder has it.
type leaser struct{ taken atomic.Bool }

func (l *leaser) TakeLease(context.Context, string, string, time.Duration) (int64, bool, error) {
	return 1, !l.taken.Load(), nil
}

func (l *leaser) ReleaseLease(context.Context, string, string) error { return nil }

func (l *leaser) Leases(context.Context) (map[string]string, error) { return nil, nil }

// A renewal that finds the lease with another holder stops the process at
// once, whatever time its own clock says is left (a suspended host).
func TestLeaseTakenByAnotherStops(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stopped := make(chan struct{})
	var logged syncbuf.Buffer
	a := &App{
		// Renewals every second; without one, a stop 2.4 s after the last.
		cfg:     &config.Config{HTTPAddr: "127.0.0.1:1", Database: config.Database{LeaseTTL: 3 * time.Second}},
		opts:    Options{OnLeaseLost: func() { close(stopped) }},
		log:     slog.New(slog.NewTextHandler(&logged, nil)),
		Metrics: ops.NewMetrics(),
		store:   db,
		holder:  "me",
	}
	l := &leaser{}
	release, err := a.holdLease(t.Context(), l)
	if err != nil || release == nil {
		t.Fatalf("holdLease: %v", err)
	}
	defer release()
	if !a.holding.Load() {
		t.Error("the holder says it stands by")
	}
	l.taken.Store(true)
	<-stopped
	if !strings.Contains(logged.String(), "another replica holds the lease gateway: stopping at once") {
		t.Errorf("the holder stopped, but not for the renewal that found another holder:\n%s", logged.String())
	}
}

// A replica over PostgreSQL stands by from its start: until it holds the
// lease it is not ready and does not serve the web chat itself (with no
// holder to forward to, it says so); a first lease is no takeover.
func TestReplicaStandsByUntilItHoldsTheLease(t *testing.T) {
	cfg := configtest.MustLoad(t, "", map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0", "HERALD_DATABASE_URL": pgtest.NewDatabase(t)})
	a, err := Build(t.Context(), cfg, Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.ready(nil); err != errStandingBy {
		t.Errorf("before it asked for the lease: %v, want %v", err, errStandingBy)
	}
	page := httptest.NewRecorder()
	a.handler.ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/", nil))
	if page.Code != http.StatusServiceUnavailable || !strings.Contains(page.Body.String(), "no replica to forward to") {
		t.Errorf("the web chat before the lease: %d %q", page.Code, page.Body.String())
	}
	release, err := a.holdLease(t.Context(), a.leaser)
	if err != nil || release == nil {
		t.Fatalf("holdLease: %v", err)
	}
	defer release()
	if !a.holding.Load() {
		t.Error("holding the lease, the replica still stands by")
	}
	metrics := httptest.NewRecorder()
	a.handler.ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(metrics.Body.String(), "\nherald_lease_takeovers_total 0\n") {
		t.Errorf("a first lease counted as a takeover:\n%s", metrics.Body.String())
	}
}
