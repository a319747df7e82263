package main

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
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

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := herald(t, "health")
	if err != nil || !strings.Contains(out, `"status":"ready"`) {
		t.Errorf("herald health on a ready gateway: %v\n%s", err, out)
	}
	cancel()
	<-ran
	if _, err := herald(t, "health"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+port+"/readyz") {
		t.Errorf("herald health with no gateway: %v", err)
	}
}
