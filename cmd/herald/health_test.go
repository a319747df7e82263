package main

import (
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/app/apptest"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/ops"
)

// herald health asks the running gateway's /readyz, on loopback when it
// listens on every interface: exit status 0 when it is ready, an error
// naming the address when nothing answers.
func TestHealth(t *testing.T) {
	isolate(t)
	t.Setenv("HERALD_HTTP_ADDR", "127.0.0.1:0")
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(t.Context(), cfg, app.Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(a.Addr(), ":")
	t.Setenv("HERALD_HTTP_ADDR", "0.0.0.0:"+port)
	t.Setenv("WEBCHAT_TOKEN", "a-token-for-a-web-chat-beyond-loopback")

	stop := apptest.Run(t, a)
	out, err := herald(t, "health")
	if err != nil || !strings.Contains(out, `"status":"ready"`) {
		t.Errorf("herald health on a ready gateway: %v\n%s", err, out)
	}
	stop()
	if _, err := herald(t, "health"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+port+"/readyz") {
		t.Errorf("herald health with no gateway: %v", err)
	}
}

// A gateway that answers 503 (here /readyz's own handler) fails the check
// with the reason it gives; a listener on [::] is asked on [::1].
func TestHealthNotReady(t *testing.T) {
	isolate(t)
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ready := func() ops.Readiness { return ops.Readiness{Err: errors.New("standing by for the lease")} }
	srv := httptest.NewUnstartedServer(ops.Handler(ready, ops.NewMetrics(), nil))
	srv.Listener = l
	srv.Start()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	t.Setenv("HERALD_HTTP_ADDR", "[::]:"+port)
	t.Setenv("WEBCHAT_TOKEN", "a-token-for-a-web-chat-beyond-loopback")

	out, err := herald(t, "health")
	if err == nil || err.Error() != "not ready: standing by for the lease" || !strings.Contains(out, `"status":"not ready"`) {
		t.Errorf("herald health on a gateway not ready: %v\n%s", err, out)
	}
	srv.Close()
	if _, err := herald(t, "health"); err == nil || !strings.Contains(err.Error(), "[::1]:"+port+"/readyz") {
		t.Errorf("herald health with no gateway on [::]: %v", err)
	}
}
