package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/syncbuf"
)

// Every log line about a turn carries its turn, platform, chat and
// session, so that one turn can be followed through the log; a turn the
// agent server fails is a warning with the error's kind and status, and
// no line holds what the user wrote.
func TestTurnLinesCarryTheirIds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logged syncbuf.Buffer
		opts := defaultOptions()
		opts.Logger = slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
		refusing := func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if strings.Contains(turn.Message, "refused") {
				err := &agent.StatusError{Status: 401, Message: "Invalid API key"}
				return agent.Result{FinalResponse: agent.FinalText("Proxy", "", err), Err: err, SessionID: turn.SessionID}
			}
			return echo(ctx, turn, emit)
		}
		h := start(t, opts, &backend{answer: refusing}, "")
		h.plat.deliver(t, dm("alice", "a secret plan", "e1"))
		h.finalIs("dm-alice", "echo: a secret plan")
		h.plat.deliver(t, dm("alice", "refused secret", "e2"))
		eventually(t, "the second turn's end", func() bool { return len(h.plat.shown("dm-alice")) == 2 })
		h.allSettled()
		h.stop()

		warned := false
		for line := range strings.Lines(logged.String()) {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("not a JSON line: %q", line)
			}
			if strings.Contains(line, "secret") {
				t.Errorf("a line holds the message's text: %s", line)
			}
			if _, about := l["turn"]; !about {
				continue
			}
			for _, key := range []string{"platform", "chat"} {
				if l[key] == nil {
					t.Errorf("a turn's line without %s: %s", key, line)
				}
			}
			if l["session"] == nil && l["session_key"] == nil {
				t.Errorf("a turn's line without its session: %s", line)
			}
			if l["msg"] == "the agent server failed the turn" {
				warned = l["level"] == "WARN" && l["kind"] == "status" && strings.Contains(l["error"].(string), "401") && l["session"] != nil
			}
		}
		if !warned {
			t.Errorf("no warning for the refused turn with its kind, status and session:\n%s", logged.String())
		}
	})
}

// A wrong agent key is one warning at the default level, on the turn's
// line: its ids, the error's kind and the 401, never the message's text
// nor the key; the metrics count it by kind.
func TestWrongAgentKeyIsOneWarning(t *testing.T) {
	var logged syncbuf.Buffer
	opts := defaultOptions()
	opts.Logger = slog.New(slog.NewJSONHandler(&logged, nil))
	h := newAgentServer(t, sim.Options{Key: "the-right-key"}).ask(t, opts, "a-wrong-key", "a secret plan")
	if shown := h.plat.shown("dm-alice"); len(shown) != 1 || !strings.Contains(shown[0], "401") {
		t.Fatalf("the chat shows %q, want the 401 told", shown)
	}

	var warnings []map[string]any
	for line := range strings.Lines(logged.String()) {
		if strings.Contains(line, "secret") || strings.Contains(line, "a-wrong-key") {
			t.Errorf("a line holds the message's text or the key: %s", line)
		}
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want one:\n%s", len(warnings), logged.String())
	}
	w := warnings[0]
	for key, want := range map[string]any{"turn": 1.0, "platform": "fake", "chat": "dm-alice", "kind": "status", "status": 401.0} {
		if w[key] != want {
			t.Errorf("the warning's %s = %v, want %v: %v", key, w[key], want, w)
		}
	}
	if w["session"] == nil || w["session"] == "" {
		t.Errorf("the warning lacks the session: %v", w)
	}
	if n := value(h.runner.metrics.UpstreamErrors.WithLabelValues("status")); n != 1 {
		t.Errorf("herald_upstream_errors_total{kind=status} = %v, want 1", n)
	}
}
