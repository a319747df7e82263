package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/ops"
)

// agentHealth follows whether the agent server answers, from the turns'
// outcomes and the checks between them, for /readyz and /metrics.
type agentHealth struct {
	// unreadyAfter is how many failures in a row make the gateway unready.
	unreadyAfter int
	metrics      *ops.Metrics

	mu       sync.Mutex
	failures int
	last     error
}

// record notes the outcome of a turn or a check: nil is an answer, an
// error one that says the server is down or unusable (errors of a server
// that works, such as the model's own, are not passed here). It tells
// whether the server's state changed, up to down or back.
func (h *agentHealth) record(err error) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	changed = (err == nil) != (h.failures == 0)
	if err == nil {
		h.failures, h.last = 0, nil
	} else {
		h.failures, h.last = h.failures+1, err
	}
	up := 1.0
	if h.failures > 0 {
		up = 0
	}
	h.metrics.AgentUp.Set(up)
	return changed
}

// AgentState is how the agent server stands, for /readyz.
type AgentState struct {
	Up bool `json:"up"`
	// Failures is how many turns and checks failed in a row, and Error
	// the last one's error.
	Failures int    `json:"failures,omitempty"`
	Error    string `json:"error,omitempty"`
}

// state is the agent server's state.
func (h *agentHealth) state() AgentState {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := AgentState{Up: h.failures == 0, Failures: h.failures}
	if h.last != nil {
		s.Error = h.last.Error()
	}
	return s
}

// failing tells whether the last turn or check failed.
func (h *agentHealth) failing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failures > 0
}

// err is why the gateway is not ready because of the agent server, or nil.
func (h *agentHealth) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failures < h.unreadyAfter {
		return nil
	}
	return fmt.Errorf("the agent server failed %d times in a row (gateway.agent_unready_after is %d): %v", h.failures, h.unreadyAfter, h.last)
}

// downError tells whether a turn's error says the agent server is down or
// unusable: it could not be reached, answered an error status (a wrong key
// or an overload included), went silent, broke off, or answered with
// something that is not an answer.
func downError(err error) bool {
	var status *agent.StatusError
	var conn *agent.ConnectionError
	return errors.As(err, &status) || errors.As(err, &conn) ||
		errors.Is(err, agent.ErrIdleTimeout) || errors.Is(err, agent.ErrIncomplete) || errors.Is(err, agent.ErrNotAStream)
}

// checkAgent checks the agent server at start, then every interval while
// it fails, until ctx ends, when the backend can be checked: readiness
// says so before a user's message finds it down, and comes back without
// waiting for one.
func (r *Runner) checkAgent(ctx context.Context) {
	p, ok := r.backend.(agent.Pinger)
	if !ok {
		return
	}
	tick := time.NewTicker(r.opts.AgentCheckInterval)
	defer tick.Stop()
	for first := true; ; first = false {
		if first || r.health.failing() {
			err := p.Ping(ctx)
			if ctx.Err() != nil {
				return
			}
			switch changed := r.health.record(err); {
			case changed && err != nil:
				r.log.Warn("the agent server does not answer", "error", err)
			case changed:
				r.log.Info("the agent server answers again")
			case err != nil:
				r.log.Debug("the agent server still does not answer", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
