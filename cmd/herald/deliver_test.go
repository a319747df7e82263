package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/app/apptest"
	"github.com/herald-chat/herald/internal/config"
)

// silent is an agent that answers nothing.
type silent struct{}

func (silent) Name() string { return "silent" }
func (silent) Run(context.Context, agent.Turn, func(agent.Event)) agent.Result {
	return agent.Result{}
}

// herald deliver posts to a running Herald (here one with the web chat
// and the delivery API on) and, with --wait, says once it is sent.
func TestDeliverCommand(t *testing.T) {
	isolate(t)
	t.Setenv("HERALD_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("HERALD_DELIVERY_TOKEN", "delivery-token-for-the-test")
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(t.Context(), cfg, app.Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Run(t, a)
	const conv = "conv-0123456789"
	resp, err := http.Post("http://"+a.Addr()+"/api/messages", "application/json", strings.NewReader(`{"conversation":"`+conv+`","text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	t.Setenv("HERALD_DELIVERY_URL", "http://"+a.Addr())
	out, err := herald(t, "deliver", "--target", "webchat:"+conv, "--key", "job-7", "--wait", "30s", "The", "report")
	if err != nil || !strings.Contains(out, "delivery 1 (job-7): sent") || !strings.Contains(out, "webchat:"+conv+" sent") {
		t.Errorf("herald deliver: %v\n%s", err, out)
	}
	out, err = herald(t, "deliver", "--target", "webchat:conv-nobody-wrote", "x")
	if err == nil || !strings.Contains(err.Error(), "no message came from that chat") {
		t.Errorf("to an unknown chat: %v\n%s", err, out)
	}
	t.Setenv("HERALD_DELIVERY_TOKEN", "")
	if _, err := herald(t, "deliver", "--target", "home", "x"); err == nil || !strings.Contains(err.Error(), "HERALD_DELIVERY_TOKEN") {
		t.Errorf("without a token: %v, want the reason naming HERALD_DELIVERY_TOKEN", err)
	}
}

func TestDeliverTextFromStandardInput(t *testing.T) {
	for _, args := range [][]string{nil, {"-"}} {
		if got, err := deliverText(args, strings.NewReader("line 1\nline 2\n")); err != nil || got != "line 1\nline 2\n" {
			t.Errorf("deliverText(%q) = %q, %v; want standard input", args, got, err)
		}
	}
	if got, _ := deliverText([]string{"a", "b"}, strings.NewReader("ignored")); got != "a b" {
		t.Errorf("deliverText(a b) = %q", got)
	}
}
