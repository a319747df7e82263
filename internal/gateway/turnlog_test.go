package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/herald-chat/herald/internal/agent"
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
