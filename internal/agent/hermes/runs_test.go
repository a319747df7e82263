package hermes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sim"
)

// runsServer is the simulator serving runs, and its server for its stats.
func runsServer(t *testing.T, opts sim.Options) (*sim.Server, *Backend) {
	t.Helper()
	opts.Key, opts.Runs = "k", true
	opts.Logger = slog.New(slog.DiscardHandler)
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.Close() })
	return s, newBackend(srv.URL, "k")
}

// runTurn is a turn whose run is started with an idempotency key.
func runTurn(message string) agent.Turn {
	return agent.Turn{SessionID: "s", Message: message, Source: source(), Key: fmt.Sprintf("herald-test-%x", message)}
}

// answer is the simulator's complete answer to message, read over chat
// completions (the same tokens as a run's).
func answer(t *testing.T, opts sim.Options, message string) string {
	t.Helper()
	res, _ := run(t, limited(simulator(t, opts).URL, 0), agent.Turn{SessionID: "s", Message: message, Source: source()})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Text
}

// deltasOf joins the text of the delta events.
func deltasOf(events []agent.Event) string {
	var b strings.Builder
	for _, e := range events {
		if e.Kind == agent.EventDelta {
			b.WriteString(e.Text)
		}
	}
	return b.String()
}

func TestRunStartsEventsAndIdempotentStart(t *testing.T) {
	s, b := runsServer(t, sim.Options{ToolProgress: true})
	if got, err := b.Mode(t.Context()); got != ModeRuns || err != nil {
		t.Fatalf("mode %q (%v), want %q", got, err, ModeRuns)
	}
	tr := runTurn("hello é 日本")
	var started []string
	tr.Started = func(id string) { started = append(started, id) }
	res, events := run(t, b, tr)
	want := answer(t, sim.Options{ToolProgress: true}, tr.Message)
	if res.Err != nil || res.Text != want || res.FinalResponse != want {
		t.Fatalf("result %+v, want the text %q", res, want)
	}
	if got := deltasOf(events); got != want {
		t.Errorf("deltas %q, want %q", got, want)
	}
	if len(events) == 0 || events[0].Kind != agent.EventTool || events[0].Tool.Tool != "web_search" {
		t.Errorf("first event %+v, want the web_search tool starting", events)
	}
	if len(started) != 1 || !strings.HasPrefix(started[0], "run_") {
		t.Errorf("started %q, want one run id", started)
	}

	// The same turn started again (after a crash) gets the same run back:
	// the agent does not work twice.
	var again []string
	tr.Started = func(id string) { again = append(again, id) }
	if res, _ := run(t, b, tr); res.Text != want || len(again) != 1 || again[0] != started[0] {
		t.Errorf("again: %q with run %q, want %q with run %q", res.Text, again, want, started[0])
	}
	if st := s.Stats(); st.Runs != 1 || st.RunsReplayed != 1 {
		t.Errorf("runs %d, replayed %d; want 1 and 1", st.Runs, st.RunsReplayed)
	}
}

// Connections cut anywhere, in the middle of a character too: the text
// goes on from the last event read, nothing lost or repeated at the seams.
func TestRunEventsReconnectFromTheLastEvent(t *testing.T) {
	const message = "cut é 日本 😀 here"
	want := answer(t, sim.Options{}, message)
	for _, cutAfter := range []int{301, 417, 555} {
		s, b := runsServer(t, sim.Options{RunEventsCutAfter: cutAfter})
		res, events := run(t, b, runTurn(message))
		if res.Err != nil || res.Text != want {
			t.Fatalf("cut after %d: %q (%v), want %q", cutAfter, res.Text, res.Err, want)
		}
		if got := deltasOf(events); got != want {
			t.Errorf("cut after %d: deltas %q, want %q", cutAfter, got, want)
		}
		if st := s.Stats(); st.Runs != 1 {
			t.Errorf("cut after %d: %d runs, want 1", cutAfter, st.Runs)
		}
	}
}

// The Hermes API server's events are consumed once: after a cut the run
// is followed by its status, and its output is the complete text.
func TestRunFollowedByStatusWhenEventsAreGone(t *testing.T) {
	const message = "once é"
	want := answer(t, sim.Options{}, message)
	_, b := runsServer(t, sim.Options{RunEventsOnce: true, RunEventsCutAfter: 120})
	res, _ := run(t, b, runTurn(message))
	if res.Err != nil || res.FinalResponse != want {
		t.Fatalf("%q (%v), want %q", res.FinalResponse, res.Err, want)
	}
}

// After a restart the turn follows the run it started (turn.RunID); a
// run the server no longer knows says so.
func TestRunFollowedAfterRestart(t *testing.T) {
	s, b := runsServer(t, sim.Options{RunEventsOnce: true})
	tr := runTurn("follow me")
	var runID string
	tr.Started = func(id string) { runID = id }
	first, _ := run(t, b, tr)

	tr.RunID, tr.Started = runID, nil
	res, _ := run(t, b, tr)
	if res.Err != nil || res.Text != first.Text {
		t.Fatalf("followed: %q (%v), want %q", res.Text, res.Err, first.Text)
	}
	if st := s.Stats(); st.Runs != 1 || st.RunsReplayed != 0 {
		t.Errorf("runs %d, replayed %d; want 1 and 0", st.Runs, st.RunsReplayed)
	}
	// A restarted server answers a run started with a key from its record.
	s.RestartRuns()
	if res, _ := run(t, b, tr); res.Err != nil || res.Text != first.Text {
		t.Errorf("followed after the server restarted: %q (%v), want %q", res.Text, res.Err, first.Text)
	}
}

// A run the server lost, by forgetting it or by restarting in its middle
// ("interrupted"), is agent.ErrRunUnknown, whether the turn follows it
// after a restart of its own or is reading its events when it happens.
func TestLostRun(t *testing.T) {
	s, b := runsServer(t, sim.Options{RunEventsOnce: true, FirstTokenDelay: time.Hour})
	unkeyed := runTurn("no key")
	unkeyed.Key = ""
	var unkeyedID string
	ctx, cancel := context.WithCancelCause(t.Context())
	unkeyed.Started = func(id string) { unkeyedID = id; cancel(agent.ErrDetached) } // let go of, as at a shutdown
	if res := b.Run(ctx, unkeyed, func(agent.Event) {}); !errors.Is(res.Err, agent.ErrDetached) {
		t.Fatalf("let go of: %v", res.Err)
	}

	// The server restarts while the run's events are being read: the
	// stream ends, and the run's record says it was interrupted.
	s2, b2 := runsServer(t, sim.Options{RunEventsOnce: true, ToolProgress: true, FirstTokenDelay: time.Hour})
	var restart sync.Once
	res := b2.Run(t.Context(), runTurn("cut off"), func(agent.Event) { restart.Do(s2.RestartRuns) })
	if !errors.Is(res.Err, agent.ErrRunUnknown) || !strings.Contains(res.Err.Error(), "restarted") {
		t.Errorf("run interrupted while read: %v, want ErrRunUnknown saying the server restarted", res.Err)
	}
	s.RestartRuns() // forgets the run started without a key
	unkeyed.RunID = unkeyedID
	if res, _ := run(t, b, unkeyed); !errors.Is(res.Err, agent.ErrRunUnknown) {
		t.Errorf("forgotten run: %v, want ErrRunUnknown", res.Err)
	}
}

// The session a run ran in becomes the turn's when the server rotated it,
// as the session header does over chat completions.
func TestRunAdoptsARotatedSession(t *testing.T) {
	for _, once := range []bool{false, true} {
		_, b := runsServer(t, sim.Options{RotateSessionID: true, RunEventsOnce: once})
		res, _ := run(t, b, runTurn("rotate"))
		if res.Err != nil || res.SessionID == "s" || res.SessionID == "" {
			t.Errorf("events once %v: session %q (%v), want the rotated one", once, res.SessionID, res.Err)
		}
	}
	_, b := runsServer(t, sim.Options{})
	if res, _ := run(t, b, runTurn("keep")); res.SessionID != "s" {
		t.Errorf("session %q, want s kept", res.SessionID)
	}
}

// /stop stops the run on the server; letting go of the turn at shutdown
// leaves it running for the next start.
func TestRunStoppedOrLeftRunning(t *testing.T) {
	for _, c := range []struct {
		cause     error
		want      error
		cancelled int
	}{{errors.New("stopped by /stop"), context.Canceled, 1}, {agent.ErrDetached, agent.ErrDetached, 0}} {
		s, b := runsServer(t, sim.Options{TokensPerSecond: 20, AnswerTokens: 40})
		ctx, cancel := context.WithCancelCause(t.Context())
		res := b.Run(ctx, runTurn("stop"), func(e agent.Event) {
			if e.Kind == agent.EventDelta {
				cancel(c.cause)
			}
		})
		if !errors.Is(res.Err, c.want) {
			t.Errorf("cause %v: err %v, want %v", c.cause, res.Err, c.want)
		}
		// Stopped, the run ends cancelled; let go of, it goes on to its end.
		wait, done := context.WithTimeout(t.Context(), 30*time.Second)
		if err := s.Wait(wait, func(st sim.Stats) bool { return st.RunsCancelled+st.RunsCompleted == 1 }); err != nil {
			t.Error(err)
		}
		done()
		if st := s.Stats(); st.RunsCancelled != c.cancelled {
			t.Errorf("cause %v: %d runs cancelled, want %d", c.cause, st.RunsCancelled, c.cancelled)
		}
	}
}

// A server that does not answer has no mode yet.
func TestModeOfAServerDown(t *testing.T) {
	srv := httptest.NewServer(nil)
	srv.Close()
	if got, err := newBackend(srv.URL, "k").Mode(t.Context()); err == nil {
		t.Errorf("mode %q, want an error", got)
	}
}

// A server without runs (an older Hermes) answers over chat completions.
func TestNoRunsMeansChatCompletions(t *testing.T) {
	opts := sim.Options{Key: "k", Logger: slog.New(slog.DiscardHandler)}
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); s.Close() })
	b := newBackend(srv.URL, "k")
	if got, err := b.Mode(t.Context()); got != ModeCompletions || err != nil {
		t.Errorf("mode %q (%v), want %q", got, err, ModeCompletions)
	}
	res, _ := run(t, b, runTurn("plain"))
	if st := s.Stats(); res.Err != nil || st.Requests != 1 || st.Runs != 0 {
		t.Errorf("err %v, chat requests %d, runs %d; want one chat request", res.Err, st.Requests, st.Runs)
	}
}

// A message steered into a running run reaches the agent: it ends the
// answer, or, where the agent leaves it unread, comes back as the run's
// pending steer text. A run that ended takes none.
func TestSteer(t *testing.T) {
	for _, pending := range []bool{false, true} {
		_, b := runsServer(t, sim.Options{FirstTokenDelay: 2 * time.Second, AnswerTokens: 3, SteerPending: pending})
		tr := runTurn("steer me")
		runID := make(chan string, 1)
		tr.Started = func(id string) { runID <- id }
		done := make(chan agent.Result)
		go func() { done <- b.Run(t.Context(), tr, func(agent.Event) {}) }()
		id := <-runID
		// The run id is known while the run is queued, which takes no
		// steer text (409) until it runs.
		err := b.Steer(t.Context(), id, "in French")
		for deadline := time.Now().Add(10 * time.Second); err != nil && strings.Contains(err.Error(), "not currently accepting") && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			err = b.Steer(t.Context(), id, "in French")
		}
		if err != nil {
			t.Fatalf("steering: %v", err)
		}
		res := <-done
		switch {
		case res.Err != nil:
			t.Errorf("pending %v: %v", pending, res.Err)
		case !pending && (!strings.HasSuffix(res.Text, " [steered: in French]") || res.PendingSteer != ""):
			t.Errorf("answer %q, pending %q; want the steer read into the answer", res.Text, res.PendingSteer)
		case pending && (strings.Contains(res.Text, "steered") || res.PendingSteer != "in French"):
			t.Errorf("answer %q, pending %q; want the steer left pending", res.Text, res.PendingSteer)
		}
		if err := b.Steer(t.Context(), id, "too late"); !errors.Is(err, agent.ErrNotSteered) {
			t.Errorf("steering an ended run: %v, want ErrNotSteered", err)
		}
	}
}
