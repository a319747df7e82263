package ops

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the gateway's Prometheus metrics.
type Metrics struct {
	// Turns counts finished turns by outcome: delivered, failed, interrupted, stopped.
	Turns *prometheus.CounterVec
	// FirstDelta is the time from sending a turn upstream to its first text.
	FirstDelta prometheus.Histogram
	// UpstreamErrors counts agent server failures by kind: status, connection, idle_timeout, agent, incomplete,
	// answer_too_long, event_too_large, not_a_stream.
	UpstreamErrors *prometheus.CounterVec
	// AgentUp is 1 while the agent server answers, 0 after a turn or a
	// check failed because it is down or unusable (see /readyz for why).
	AgentUp prometheus.Gauge
	// ActiveTurns is the number of turns running now.
	ActiveTurns prometheus.Gauge
	// Edits counts message edits sent to platforms.
	Edits prometheus.Counter
	// RateLimitWaits counts the times a platform's rate limit held delivery back.
	RateLimitWaits prometheus.Counter
	// Deliveries counts the agent's own messages by outcome, a chat each:
	// sent, failed, uncertain (a restart came during its call), repeated
	// (its idempotency key was journalled before), refused (by the API).
	Deliveries *prometheus.CounterVec
	// LeaseHeld is how many leases that have it run platforms this
	// replica holds on a shared store (the gateway's, the accounts'), 0
	// while it stands by; LeaseTakeovers counts the times it took one over
	// from another replica.
	LeaseHeld      prometheus.Gauge
	LeaseTakeovers prometheus.Counter
	// StoreWrites is how long the store's journal writes take, by kind
	// (receive, turn_status, append, enqueue, …).
	StoreWrites *prometheus.HistogramVec

	registry *prometheus.Registry
}

// NewMetrics registers the metrics in a registry of their own, with the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_turns_total", Help: "Finished turns by outcome.",
		}, []string{"outcome"}),
		FirstDelta: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_first_delta_seconds", Help: "Time from sending a turn to the agent server to its first text.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_upstream_errors_total", Help: "Agent server failures by kind.",
		}, []string{"kind"}),
		AgentUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_agent_up", Help: "1 while the agent server answers, 0 since a turn or a check found it down or unusable.",
		}),
		ActiveTurns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_active_turns", Help: "Turns running now.",
		}),
		Edits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_edits_total", Help: "Message edits sent to platforms.",
		}),
		RateLimitWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_rate_limit_waits_total", Help: "Times a platform rate limit held delivery back.",
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_deliveries_total", Help: "The agent's own messages, a chat each, by outcome.",
		}, []string{"outcome"}),
		LeaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_lease_held", Help: "Leases this replica holds on a shared store (the gateway's and the accounts'); 0 while it stands by.",
		}),
		LeaseTakeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_lease_takeovers_total", Help: "Times this replica took a lease over from another.",
		}),
		StoreWrites: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_store_write_seconds", Help: "Time the store's journal writes take, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"op"}),
		registry: reg,
	}
	reg.MustRegister(m.Turns, m.FirstDelta, m.UpstreamErrors, m.AgentUp, m.ActiveTurns, m.Edits, m.RateLimitWaits, m.Deliveries, m.LeaseHeld, m.LeaseTakeovers, m.StoreWrites,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
