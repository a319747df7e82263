package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/sim"
)

// agentServer is the Hermes API simulator on loopback, keeping the
// headers of every request it gets.
type agentServer struct {
	*httptest.Server
	sim     *sim.Server
	mu      sync.Mutex
	headers []http.Header
}

func newAgentServer(t *testing.T, opts sim.Options) *agentServer {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	s := &agentServer{sim: sim.New(opts)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		s.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.Close(); s.sim.Close() }) // after the runner stops
	return s
}

// ask runs a runner with opts that relays to the server through Herald's
// Hermes backend with key (logging where the runner does), and stops it
// once alice's text has been answered.
func (s *agentServer) ask(t *testing.T, opts Options, key, text string) *harness {
	t.Helper()
	b := hermes.New(hermes.Config{URL: s.URL, Key: key, HTTPClient: s.Client(), IdleTimeout: time.Minute, Logger: opts.Logger})
	h := start(t, opts, &backend{answer: b.Run}, "")
	h.plat.deliver(t, dm("alice", text, "e1"))
	h.allSettled()
	h.stop()
	return h
}

// A turn is one trace: the turn's span (platform, chat type, session and
// turn id) with its journal writes, its agent request (where the first
// text is an event) and its platform calls as children. Every request to
// the agent server carries a W3C traceparent of the turn's trace, its
// parent the agent request's span; no span holds what the user wrote.
// The same through chat completions and through runs.
func TestTurnIsOneTrace(t *testing.T) {
	for _, runs := range []bool{false, true} {
		name := map[bool]string{false: "completions", true: "runs"}[runs]
		t.Run(name, func(t *testing.T) {
			spans := tracetest.NewInMemoryExporter()
			opts := defaultOptions()
			opts.Tracing = sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
			server := newAgentServer(t, sim.Options{Key: "k", Runs: runs, AnswerTokens: 3})
			h := server.ask(t, opts, "k", "a secret plan")
			if shown := h.plat.shown("dm-alice"); len(shown) != 1 || !strings.Contains(shown[0], "a secret plan") {
				t.Fatalf("the chat shows %q, want the simulator's answer", shown)
			}

			var turn, request *tracetest.SpanStub
			all := spans.GetSpans()
			for i, s := range all {
				switch s.Name {
				case "turn":
					turn = &all[i]
				case "agent request":
					request = &all[i]
				}
				if holds(s.Attributes, "secret") || strings.Contains(s.Status.Description, "secret") {
					t.Errorf("span %s holds the message's text", s.Name)
				}
				for _, e := range s.Events {
					if strings.Contains(e.Name, "secret") || holds(e.Attributes, "secret") {
						t.Errorf("span %s has an event with the message's text", s.Name)
					}
				}
			}
			if turn == nil || request == nil {
				t.Fatalf("spans %v, want a turn and its agent request", names(all))
			}
			children := map[string]int{}
			for _, s := range all {
				switch {
				case s.Parent.SpanID() == turn.SpanContext.SpanID():
					children[s.Name]++
				case s.Name != "turn":
					t.Errorf("span %s is not a child of the turn's", s.Name)
				}
			}
			want := map[string]string{"herald.platform": "fake", "herald.chat.type": "dm", "herald.turn": "1",
				"herald.session": h.be.turns()[0].SessionID, "herald.outcome": "delivered"}
			for key, v := range want {
				if got := attr(turn, key); got != v {
					t.Errorf("turn span's %s = %q, want %q", key, got, v)
				}
			}
			if children["agent request"] != 1 || children["journal"] < 4 || children["platform.send"] < 1 {
				t.Errorf("the turn's children %v, want its agent request, journal writes and platform calls", children)
			}
			if ev := request.Events; len(ev) != 1 || ev[0].Name != "first delta" {
				t.Errorf("agent request's events %v, want the first delta", ev)
			}

			server.mu.Lock()
			defer server.mu.Unlock()
			if len(server.headers) == 0 {
				t.Fatal("the agent server got no request")
			}
			for _, header := range server.headers {
				parent := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(header)))
				if !parent.IsValid() || parent.TraceID() != turn.SpanContext.TraceID() || parent.SpanID() != request.SpanContext.SpanID() {
					t.Errorf("traceparent %q, want the agent request's span in the turn's trace %s", header.Get("Traceparent"), turn.SpanContext.TraceID())
				}
			}
		})
	}
}

// Without a tracer provider nothing is traced, and no traceparent goes
// to the agent server.
func TestNoTracingSendsNoTraceparent(t *testing.T) {
	server := newAgentServer(t, sim.Options{Key: "k", AnswerTokens: 1})
	server.ask(t, defaultOptions(), "k", "hello")
	server.mu.Lock()
	defer server.mu.Unlock()
	if len(server.headers) == 0 {
		t.Fatal("the agent server got no request")
	}
	for _, header := range server.headers {
		if tp := header.Get("Traceparent"); tp != "" {
			t.Errorf("a request carries traceparent %q without tracing", tp)
		}
	}
}

// attr is a span attribute's value as text, "" when it has none.
func attr(s *tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

// holds tells whether an attribute's value holds text.
func holds(kvs []attribute.KeyValue, text string) bool {
	for _, kv := range kvs {
		if strings.Contains(kv.Value.String(), text) {
			return true
		}
	}
	return false
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
