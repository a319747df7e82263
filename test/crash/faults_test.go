package crash

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

// agentServer is a Hermes API server that can be stopped and started again
// on the same address, or made to fail in one of the ways real ones do.
type agentServer struct {
	addr      string
	answer    http.Handler // the simulator
	cut       http.Handler // the simulator, breaking off mid-answer
	slow      http.Handler // the simulator, writing a longer answer over about two seconds
	mode      atomic.Value // "", "500", "429", "hang", "cut" or "slow"
	mu        sync.Mutex
	srv       *http.Server
	hanging   chan struct{} // closed when the test ends, to free hung requests
	closeOnce sync.Once
}

func newAgentServer(t *testing.T) *agentServer {
	a := &agentServer{
		addr:    freeAddr(t),
		answer:  sim.New(sim.Options{AllowSessionWithoutKey: true, Logger: slog.New(slog.DiscardHandler), AnswerTokens: 5}),
		cut:     sim.New(sim.Options{AllowSessionWithoutKey: true, Logger: slog.New(slog.DiscardHandler), AnswerTokens: 20, TokensPerSecond: 20, DisconnectAfter: 8}),
		slow:    sim.New(sim.Options{AllowSessionWithoutKey: true, Logger: slog.New(slog.DiscardHandler), AnswerTokens: 40, TokensPerSecond: 25}),
		hanging: make(chan struct{}),
	}
	a.mode.Store("")
	t.Cleanup(func() {
		a.closeOnce.Do(func() { close(a.hanging) })
		a.stop()
	})
	return a
}

func (a *agentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		a.answer.ServeHTTP(w, r) // /health and /v1/models keep answering
		return
	}
	switch a.mode.Load() {
	case "500":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"the model provider failed","type":"server_error"}}`)
	case "429":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit exceeded","type":"rate_limit_error"}}`)
	case "hang":
		select {
		case <-r.Context().Done():
		case <-a.hanging:
		}
	case "cut":
		a.cut.ServeHTTP(w, r)
	case "slow":
		a.slow.ServeHTTP(w, r)
	default:
		a.answer.ServeHTTP(w, r)
	}
}

// start listens on the server's address (again).
func (a *agentServer) start(t *testing.T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		t.Fatalf("the agent server listening again on %s: %v", a.addr, err)
	}
	a.srv = &http.Server{Handler: a}
	go a.srv.Serve(ln)
}

// stop closes the listener and every connection: the server is down.
func (a *agentServer) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// faultWorld is the binary, the fake Telegram and the agent server.
type faultWorld struct {
	t     *testing.T
	tg    *telegramtest.Server
	agent *agentServer
	gw    *gateway
	http  string
	alice telegramtest.User
	chat  telegramtest.Chat
}

func newFaultWorld(t *testing.T, env ...string) *faultWorld {
	w := &faultWorld{t: t, agent: newAgentServer(t), http: freeAddr(t), alice: users[0]}
	w.chat = telegramtest.Chat{ID: w.alice.ID, Type: telegramtest.Private, FirstName: w.alice.FirstName, Username: w.alice.Username}
	w.tg = telegramtest.NewServer(telegramtest.Options{Token: "123456789:AAEcrashTestTokenForTheHeraldBinary"})
	t.Cleanup(w.tg.Close)
	w.tg.AddChat(w.chat)
	logf, err := os.Create(filepath.Join(t.TempDir(), "herald.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("the gateway's log:\n%s", out)
		}
	})
	w.gw = &gateway{bin: build(t), log: logf, env: append(append(os.Environ(),
		"HERALD_HOME="+t.TempDir(),
		"HERALD_HTTP_ADDR="+w.http,
		"GATEWAY_PROXY_URL=http://"+w.agent.addr,
		"HERALD_IDLE_TIMEOUT=2s",
		"TELEGRAM_BOT_TOKEN="+w.tg.Token,
		"TELEGRAM_BASE_URL="+w.tg.URL,
		fmt.Sprintf("TELEGRAM_ALLOWED_USERS=%d", w.alice.ID),
	), env...)}
	return w
}

// ask sends alice's message and returns the one bot message that answers
// it, once the chat has been quiet for a while after it.
func (w *faultWorld) ask(text string) string {
	w.t.Helper()
	before := len(w.botMessages())
	w.tg.Inject(telegramtest.Incoming{Chat: w.chat, From: w.alice, Text: text})
	w.waitFor("the answer to "+text, func() bool {
		msgs := w.botMessages()
		return len(msgs) > before && !strings.HasSuffix(msgs[len(msgs)-1].Text, "▉")
	})
	time.Sleep(time.Second) // nothing more follows
	msgs := w.botMessages()[before:]
	if len(msgs) != 1 {
		w.t.Fatalf("%q was answered with %d messages: %+v", text, len(msgs), msgs)
	}
	return msgs[0].Text
}

func (w *faultWorld) botMessages() []telegramtest.Msg {
	var out []telegramtest.Msg
	for _, m := range w.tg.Messages(w.chat.ID) {
		if m.FromBot {
			out = append(out, m)
		}
	}
	return out
}

// readiness is /readyz's status and reason.
func (w *faultWorld) readiness() (int, string) {
	code, body := get(http.DefaultClient, w.http, "/readyz")
	var r struct{ Reason string }
	json.Unmarshal([]byte(body), &r)
	return code, r.Reason
}

// metric is a line of /metrics starting with name.
func (w *faultWorld) metric(name string) string { return metric(http.DefaultClient, w.http, name) }

func (w *faultWorld) waitFor(what string, cond func() bool) {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stillUp fails the test if the gateway process ended.
func (w *faultWorld) stillUp(pid int) {
	w.t.Helper()
	w.gw.mu.Lock()
	defer w.gw.mu.Unlock()
	select {
	case <-w.gw.exited:
		w.t.Fatal("the gateway exited")
	default:
	}
	if w.gw.cmd.Process.Pid != pid {
		w.t.Fatal("the gateway was restarted")
	}
}

func (w *faultWorld) pid() int { return w.gw.pid() }

// The agent server down when the gateway starts, then back, then down
// while the gateway runs: readiness and the metrics say so after the
// checks, each message gets one clear message, the gateway stays up, and
// messages are answered once the server is back.
func TestAgentServerDownAndBack(t *testing.T) {
	w := newFaultWorld(t, "HERALD_AGENT_CHECK_INTERVAL=200ms")
	w.gw.start(t)
	defer w.gw.stop()
	pid := w.pid()

	w.waitFor("/readyz to say the agent server is down", func() bool {
		code, reason := w.readiness()
		return code == http.StatusServiceUnavailable && strings.Contains(reason, "agent server failed") && strings.Contains(reason, "connection refused")
	})
	if got := w.metric("herald_agent_up"); got != "herald_agent_up 0" {
		t.Errorf("/metrics: %q while the agent server is down", got)
	}
	if got := w.ask("are you there?"); !strings.Contains(got, "connection error") || !strings.Contains(got, "connection refused") {
		t.Errorf("while the agent server is down the chat shows %q", got)
	}

	w.agent.start(t)
	waitReady(t, http.DefaultClient, w.http)
	if _, body := get(http.DefaultClient, w.http, "/readyz"); !strings.Contains(body, `"agent":{"up":true}`) ||
		!strings.Contains(body, `"platforms":{"telegram":"connected","webchat":"connected"}`) {
		t.Errorf("/readyz once the agent server is back: %s", body)
	}
	if got := w.metric("herald_agent_up"); got != "herald_agent_up 1" {
		t.Errorf("/metrics: %q once the agent server is back", got)
	}
	if got := w.ask("and now?"); !strings.Contains(got, `You said: "and now?"`) {
		t.Errorf("once the agent server is back the chat shows %q", got)
	}

	w.agent.stop()
	if got := w.ask("still there?"); !strings.Contains(got, "connection error") {
		t.Errorf("after the agent server went down the chat shows %q", got)
	}
	w.waitFor("/readyz to say the agent server is down", func() bool {
		code, _ := w.readiness()
		return code == http.StatusServiceUnavailable
	})
	if _, body := get(http.DefaultClient, w.http, "/readyz"); !strings.Contains(body, `"agent":{"up":false,"failures":`) || !strings.Contains(body, `connection refused`) {
		t.Errorf("/readyz with the agent server down: %s", body)
	}
	w.stillUp(pid)
	if got := w.metric(`herald_upstream_errors_total{kind="connection"}`); got != `herald_upstream_errors_total{kind="connection"} 2` {
		t.Errorf("/metrics: %q after two turns failed to connect", got)
	}
}

// An agent server that answers 500, then 429, then hangs without a byte,
// then breaks off mid-answer: each message gets one clear message (the
// last one its partial answer with a notice), readiness turns 503 after
// three failures in a row, the metrics count each kind, the gateway stays
// up, and the next message after the server heals is answered and makes
// the gateway ready again.
func TestAgentServerFailures(t *testing.T) {
	// Checks only at start: the server's /health answers throughout, and
	// a passing check would make the gateway ready between the failures.
	w := newFaultWorld(t, "HERALD_AGENT_CHECK_INTERVAL=1h")
	w.agent.start(t)
	w.gw.start(t)
	defer w.gw.stop()
	waitReady(t, http.DefaultClient, w.http)
	pid := w.pid()

	for _, c := range []struct {
		mode, kind, want string
		unready          bool
	}{
		{"500", "status", "Proxy error (500): the model provider failed", false},
		{"429", "status", "Proxy error (429): Rate limit exceeded", false},
		{"hang", "idle_timeout", "no data from the server within the idle timeout", true},
		{"cut", "connection", "The answer was interrupted: unexpected EOF", true},
	} {
		w.agent.mode.Store(c.mode)
		got := w.ask("try " + c.mode)
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: the chat shows %q, want %q in it", c.mode, got, c.want)
		}
		if c.mode == "cut" && !strings.HasPrefix(got, "[Hermes simulator") {
			t.Errorf("cut: the partial answer was not kept: %q", got)
		}
		code, reason := w.readiness()
		if (code == http.StatusServiceUnavailable) != c.unready {
			t.Errorf("after %s /readyz answered %d %q", c.mode, code, reason)
		}
		if c.unready && !strings.Contains(reason, strings.TrimPrefix(c.want, "The answer was interrupted: ")) {
			t.Errorf("after %s /readyz says %q, want the last failure named", c.mode, reason)
		}
		if got := w.metric(`herald_upstream_errors_total{kind="` + c.kind + `"}`); got == "" {
			t.Errorf("/metrics counts no %s errors after %s", c.kind, c.mode)
		}
	}
	w.stillUp(pid)

	w.agent.mode.Store("")
	if got := w.ask("better now?"); !strings.Contains(got, `You said: "better now?"`) {
		t.Errorf("once the server heals the chat shows %q", got)
	}
	if code, reason := w.readiness(); code != http.StatusOK {
		t.Errorf("after an answer /readyz answered %d %q", code, reason)
	}
}
