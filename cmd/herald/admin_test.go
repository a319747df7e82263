package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/app/apptest"
	"github.com/herald-chat/herald/internal/config"
)

// refusing is an agent server that refuses the key for a message saying
// so, and answers the others.
type refusing struct{}

func (refusing) Name() string { return "refusing" }
func (refusing) Run(_ context.Context, turn agent.Turn, _ func(agent.Event)) agent.Result {
	if strings.Contains(turn.Message, "refused") {
		err := &agent.StatusError{Status: 401, Message: "Invalid API key"}
		return agent.Result{FinalResponse: agent.FinalText("Proxy", "", err), Err: err}
	}
	return agent.Result{FinalResponse: "fine"}
}

// The admin commands beside a running gateway on SQLite: the sessions it
// keeps, its turns with the error of the one the agent server refused
// (never what was written), and pairing codes listed, approved and
// revoked while the gateway holds the database.
func TestAdminCommandsBesideARunningGateway(t *testing.T) {
	isolate(t)
	t.Setenv("HERALD_HTTP_ADDR", "127.0.0.1:0")
	cfg, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Build(t.Context(), cfg, app.Options{Backend: refusing{}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Run(t, a)
	var turns []struct {
		ID       int64
		Platform string
		ChatID   string `json:"chat_id"`
		Status   string
		Error    string
	}
	// One message at a time: a second one while the first runs would
	// interrupt it (the default busy mode).
	for n, text := range []string{"a private thought", "this one is refused"} {
		resp, err := http.Post("http://"+a.Addr()+"/api/messages", "application/json",
			strings.NewReader(`{"conversation":"conv-admin-0001","text":"`+text+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			out, err := herald(t, "turns", "--json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(out), &turns); err != nil {
				t.Fatalf("turns --json: %v\n%s", err, out)
			}
			if len(turns) == n+1 && turns[0].Status == "delivered" || time.Now().After(deadline) {
				break
			}
		}
	}
	if len(turns) != 2 || turns[0].Platform != "webchat" || turns[0].ChatID != "conv-admin-0001" ||
		turns[0].Error != "server answered 401: Invalid API key" || turns[1].Error != "" {
		t.Errorf("turns: %+v", turns)
	}
	out, err := herald(t, "turns", "--failed")
	if err != nil || !strings.Contains(out, "server answered 401: Invalid API key") || strings.Count(out, "\n") != 2 {
		t.Errorf("turns --failed: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"turns"}, {"turns", "--json"}, {"sessions", "list"}, {"sessions", "list", "--json"}} {
		if out, _ := herald(t, args...); strings.Contains(out, "private thought") || strings.Contains(out, "this one is refused") {
			t.Errorf("herald %s shows what was written:\n%s", strings.Join(args, " "), out)
		}
	}

	out, err = herald(t, "sessions", "list", "--platform", "webchat")
	if err != nil || !strings.Contains(out, "webchat") || !strings.Contains(out, "conv-admin-0001") || strings.Count(out, "\n") != 2 {
		t.Errorf("sessions list: %v\n%s", err, out)
	}
	if out, _ := herald(t, "sessions", "list", "--platform", "telegram"); strings.Count(out, "\n") != 1 {
		t.Errorf("sessions list --platform telegram: %s", out)
	}

	// A code handed out (as the gateway does for an unknown DM), then
	// approved and revoked through the commands, the gateway running.
	st, err := app.OpenStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := st.CreatePairing(t.Context(), "telegram", "4242", "Dana")
	if err != nil {
		t.Fatal(err)
	}
	out, err = herald(t, "pairing", "list")
	if err != nil || !strings.Contains(out, "telegram") || !strings.Contains(out, "Dana") || !strings.Contains(out, "pending, expires") || !strings.Contains(out, p.Code) {
		t.Errorf("pairing list: %v\n%s", err, out)
	}
	if out, err := herald(t, "pairing", "approve", p.Code); err != nil || !strings.Contains(out, "approved: telegram user 4242 (Dana)") {
		t.Errorf("pairing approve: %v\n%s", err, out)
	}
	out, err = herald(t, "pairing", "list", "--json")
	if err != nil || !strings.Contains(out, `"approved": true`) || strings.Contains(out, p.Code) {
		t.Errorf("pairing list --json after approving (the spent code is not shown): %v\n%s", err, out)
	}
	if out, err := herald(t, "pairing", "revoke", "telegram", "4242"); err != nil || !strings.Contains(out, "revoked: telegram user 4242") {
		t.Errorf("pairing revoke: %v\n%s", err, out)
	}
	if paired, err := st.IsPaired(t.Context(), "telegram", "4242"); paired || err != nil {
		t.Errorf("after revoke, paired %v (%v)", paired, err)
	}
	if _, err := herald(t, "pairing", "revoke", "telegram", "4242"); err == nil || !strings.Contains(err.Error(), "was not paired") {
		t.Errorf("revoking again: %v", err)
	}
}
