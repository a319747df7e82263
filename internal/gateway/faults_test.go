package gateway

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-chat/herald/internal/agent"
)

// flaky is an agent server that fails with err while down is set, and
// answers like echo otherwise.
type flaky struct {
	down atomic.Bool
	err  error
}

func (f *flaky) backend() *backend {
	return &backend{
		answer: func(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
			if f.down.Load() {
				return agent.Result{Err: f.err, FinalResponse: agent.FinalText("Proxy", "", f.err)}
			}
			return echo(ctx, turn, emit)
		},
		ping: func(context.Context) error {
			if f.down.Load() {
				return f.err
			}
			return nil
		},
	}
}

// An agent server that is down, answers 500 or 429, or hangs: each message
// gets one clear message, the gateway stays up, readiness turns 503 after
// three failures in a row naming the failure, the metrics say so, and once
// the server is back the periodic check makes the gateway ready again and
// messages are answered.
func TestAgentServerFaults(t *testing.T) {
	for name, err := range map[string]error{
		"down":    &agent.ConnectionError{Err: errors.New("dial tcp 127.0.0.1:8642: connect: connection refused")},
		"500":     &agent.StatusError{Status: 500, Message: "Internal Server Error"},
		"429":     &agent.StatusError{Status: 429, Message: "Too Many Requests"},
		"hanging": agent.ErrIdleTimeout,
		"cut":     agent.ErrIncomplete,
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &flaky{err: err}
				opts := defaultOptions()
				opts.AgentCheckInterval = 30 * time.Second
				h := start(t, opts, f.backend(), "")
				synctest.Wait() // the check at start finds it up
				f.down.Store(true)
				want := agent.FinalText("Proxy", "", err)
				var shown []string
				for i, text := range []string{"one", "two", "three"} {
					if e := h.runner.Ready(); e != nil {
						t.Fatalf("unready after %d failures: %v", i, e)
					}
					h.plat.deliver(t, dm("alice", text, "e-"+text))
					shown = append(shown, want)
					h.finalIs("dm-alice", shown...)
				}
				h.allSettled()
				e := h.runner.Ready()
				if e == nil || !strings.Contains(e.Error(), "agent server failed 3 times in a row") || !strings.Contains(e.Error(), err.Error()) {
					t.Errorf("after three failures Ready() = %v, want the agent server and %q named", e, err)
				}
				if up := value(h.runner.metrics.AgentUp); up != 0 {
					t.Errorf("herald_agent_up = %v while the server fails", up)
				}
				if n := value(h.runner.metrics.UpstreamErrors.WithLabelValues(errorKind(err))); n != 3 {
					t.Errorf("upstream errors of kind %s = %v, want 3", errorKind(err), n)
				}

				f.down.Store(false)
				time.Sleep(opts.AgentCheckInterval)
				synctest.Wait()
				if e := h.runner.Ready(); e != nil {
					t.Errorf("the check after the server came back left Ready() = %v", e)
				}
				if up := value(h.runner.metrics.AgentUp); up != 1 {
					t.Errorf("herald_agent_up = %v once the server answers", up)
				}
				h.plat.deliver(t, dm("alice", "four", "e-four"))
				h.finalIs("dm-alice", append(shown, "echo: four")...)
			})
		})
	}
}

// The agent server is checked at start: down then, readiness names it
// after the checks that follow, before any user's message finds it down.
func TestAgentServerDownAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flaky{err: &agent.ConnectionError{Err: errors.New("connect: connection refused")}}
		f.down.Store(true)
		opts := defaultOptions()
		opts.AgentCheckInterval = 30 * time.Second
		h := start(t, opts, f.backend(), "")
		synctest.Wait()
		if up := value(h.runner.metrics.AgentUp); up != 0 {
			t.Errorf("herald_agent_up = %v after the check at start failed", up)
		}
		time.Sleep(2 * opts.AgentCheckInterval)
		synctest.Wait()
		if e := h.runner.Ready(); e == nil || !strings.Contains(e.Error(), "connection refused") {
			t.Errorf("after three failed checks Ready() = %v", e)
		}
		f.down.Store(false)
		time.Sleep(opts.AgentCheckInterval)
		synctest.Wait()
		if e := h.runner.Ready(); e != nil {
			t.Errorf("Ready() = %v once the server answers", e)
		}
	})
}

// An error of a server that works (the model's own failure) leaves the
// gateway ready: readiness is about the agent server, not one answer.
func TestAgentErrorLeavesTheGatewayReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flaky{err: agent.ErrAgentFailed}
		f.down.Store(true)
		b := f.backend()
		b.ping = nil
		h := start(t, defaultOptions(), b, "")
		for _, text := range []string{"one", "two", "three", "four"} {
			h.plat.deliver(t, dm("alice", text, "e-"+text))
		}
		h.allSettled()
		if e := h.runner.Ready(); e != nil {
			t.Errorf("Ready() = %v after the model's own errors", e)
		}
		if shown := h.plat.shown("dm-alice"); len(shown) == 0 || !strings.Contains(shown[0], "error") {
			t.Errorf("the chat shows %q, want the agent's failure told", shown)
		}
	})
}

// value reads a gauge's or a counter's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
