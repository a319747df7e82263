// Package crash drives the real herald binary, built as make build builds
// it, through the fake Telegram Bot API with the Hermes API simulator as
// the agent, killing it with SIGKILL at random moments and inside platform
// calls, restarting it at once on the same HERALD_HOME, and classifies what
// became of every message: answered exactly once, cut short with one
// notice, lost, or answered twice.
//
// It runs with make crash (100 kills over 400 messages); go test skips it
// unless -crash.kills is set.
package crash

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/texts"
)

var (
	kills    = flag.Int("crash.kills", 0, "how many times to kill the gateway; 0 skips the test (make crash sets it)")
	messages = flag.Int("crash.messages", 400, "how many messages to send")
	inCall   = flag.Float64("crash.incall", 0.5, "the share of kills made inside a platform call")
	shutdown = flag.Float64("crash.shutdown", 0.1, "the share of kills made during a graceful shutdown")
	// The Bot API has no idempotency key and no way to read a chat back: a
	// kill after Telegram applied a send and before its reply came back
	// leaves Herald unable to know it is out. For a complete answer the
	// restart sends a notice (an answer and a notice); for a notice, sent
	// at most once, a second kill while it is in flight loses it (lost). CI's
	// short run, whose kills all land inside calls, reports these without
	// failing on them; a doubled message fails it.
	strict = flag.Bool("crash.strict", true, "fail on a lost message and on an answer followed by a notice, not only on a doubled one")
	// With runs, the agent server keeps each turn going apart from the
	// gateway (its events consumed once, as on the Hermes API server), and
	// a restart follows the run.
	runs = flag.Bool("crash.runs", false, "serve the runs API from the agent server (/v1/runs)")
)

// The people and chats of the run: four private chats and a group where
// the bot is mentioned.
var (
	users = []telegramtest.User{
		{ID: 1001, FirstName: "Alice", Username: "alice"},
		{ID: 1002, FirstName: "Bob", Username: "bob"},
		{ID: 1003, FirstName: "Carol", Username: "carol"},
		{ID: 1004, FirstName: "Dan", Username: "dan"},
	}
	group = telegramtest.Chat{ID: -1001000000001, Type: telegramtest.Supergroup, Title: "Team"}
)

// sent is one message of the run: its own words, the text sent (with the
// mention in the group) and its chat, or its web chat conversation.
type sent struct {
	text, asText string
	chat         int64
	conv         string
}

// webConversations is how many web chat conversations the run posts to.
const webConversations = 3

func TestCrash(t *testing.T) {
	if *kills == 0 {
		t.Skip("the crash run is make crash's (go test -crash.kills=N)")
	}
	bin := build(t)
	r := &run{t: t}
	r.tg = telegramtest.NewServer(telegramtest.Options{Token: "123456789:AAEcrashTestTokenForTheHeraldBinary",
		Flood: &telegramtest.DocumentedFlood, Applied: r.applied})
	t.Cleanup(r.tg.Close)
	for _, u := range users {
		r.tg.AddChat(telegramtest.Chat{ID: u.ID, Type: telegramtest.Private, FirstName: u.FirstName, Username: u.Username})
	}
	r.tg.AddChat(group)
	agent := httptest.NewServer(r.asks.counting(sim.New(sim.Options{AllowSessionWithoutKey: true, Logger: slog.New(slog.DiscardHandler),
		FirstTokenDelay: 200 * time.Millisecond, TokensPerSecond: 60, AnswerTokens: 30, Runs: *runs, RunEventsOnce: *runs})))
	t.Cleanup(agent.Close)

	// The state outlives the test too, for a failure's post-mortem.
	home, err := os.MkdirTemp("", "herald-crash-home-*")
	if err != nil {
		t.Fatal(err)
	}
	// Every message is answered: a new one waits for the answer before it
	// rather than interrupting it.
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("display:\n  busy_input_mode: queue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The gateway's log outlives the test, for a failure's post-mortem.
	logf, err := os.CreateTemp("", "herald-crash-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var allowed []string
	for _, u := range users {
		allowed = append(allowed, strconv.FormatInt(u.ID, 10))
	}
	r.addr = freeAddr(t)
	r.web = &http.Client{Timeout: 5 * time.Second}
	r.gw = &gateway{bin: bin, log: logf, env: append(os.Environ(),
		"HERALD_HOME="+home,
		"HERALD_HTTP_ADDR="+r.addr,
		"HERALD_LOG_LEVEL=debug",
		"GATEWAY_PROXY_URL="+agent.URL,
		"TELEGRAM_BOT_TOKEN="+r.tg.Token,
		"TELEGRAM_BASE_URL="+r.tg.URL,
		"TELEGRAM_ALLOWED_USERS="+strings.Join(allowed, ","),
	)}
	r.supervise()

	// Messages at a steady rate while the killer strikes.
	duration := time.Duration(*kills) * 700 * time.Millisecond
	every := duration / time.Duration(*messages)
	var wg, posts sync.WaitGroup
	wg.Go(r.kill)
	var all []sent
	for i := range *messages {
		u := users[i%len(users)]
		m := sent{text: fmt.Sprintf("m%d", i), chat: u.ID}
		m.asText = m.text
		switch i % 5 {
		case 4:
			m.chat, m.asText = group.ID, "@herald_bot "+m.text
			r.tg.Inject(telegramtest.Incoming{Chat: group, From: u, Text: m.asText})
		case 3:
			m.chat, m.conv = 0, fmt.Sprintf("crash-web-%d", (i/5)%webConversations)
			posts.Go(func() {
				if err := post(r.web, r.addr, m.conv, m.text, 3*time.Minute); err != nil {
					t.Error(err)
				}
			})
		default:
			r.tg.Inject(telegramtest.Incoming{Chat: telegramtest.Chat{ID: u.ID, Type: telegramtest.Private, FirstName: u.FirstName, Username: u.Username}, From: u, Text: m.asText})
		}
		all = append(all, m)
		time.Sleep(every)
	}
	wg.Wait()
	posts.Wait()

	// Let the last one settle every message, or go quiet, then read the
	// chats and stop it.
	r.quiet(all, 10*time.Second, 2*time.Minute)
	outs := r.outcomes(all)
	r.gw.stop()

	f := r.classify(all, outs, journalled(t, home))
	t.Logf("%d messages, %d kills (%d inside a platform call, %d of them in a getUpdates handing out messages; %d during a graceful shutdown): %d answered once, %d cut short with one notice, %d still journalled at the end (the next start answers them), %d lost (%d of them cut short without a notice), %d doubled, %d answers followed by a notice that they were cut short, %d followed by a notice that they were being sent; the agent was asked %d times (%d re-runs)",
		len(all), r.killed.Load(), r.killedInCall.Load(), r.killedInPoll.Load(), r.killedInShutdown.Load(), f.once, f.noticed, f.pending, len(f.lost)+len(f.cut), len(f.cut), len(f.doubled), len(f.extraNotices), len(f.sentNotices), f.asked, f.asked-len(all))
	report := t.Errorf
	if !*strict {
		report = t.Logf
	}
	for _, m := range f.lost {
		report("lost: %s", m)
	}
	for _, m := range f.cut {
		report("cut short without a notice: %s", m)
	}
	for _, m := range f.doubled {
		t.Errorf("doubled: %s", m)
	}
	for _, m := range f.extraNotices {
		report("an answer and a notice that it was cut short: %s", m)
	}
	for _, m := range f.sentNotices {
		report("an answer and a notice that it was being sent: %s", m)
	}
	if !t.Failed() {
		os.RemoveAll(home)
		os.Remove(logf.Name())
	} else {
		for _, c := range append([]int64{group.ID}, users[0].ID) {
			for _, m := range r.tg.Messages(c) {
				fmt.Fprintf(logf, "CHAT %d bot=%v reply_to=%d: %q\n", c, m.FromBot, m.ReplyTo, m.Text)
			}
			for _, call := range r.tg.CallsTo(c) {
				fmt.Fprintf(logf, "CALL %d %s %s %d %s\n", c, call.At.Format("15:04:05.000"), call.Method, call.Status, call.Description)
			}
		}
		t.Logf("the gateway's log: %s; its HERALD_HOME: %s", logf.Name(), home)
	}
}

// run is one crash run's world.
type run struct {
	t  *testing.T
	tg *telegramtest.Server
	gw *gateway

	// armed: the next applied call of its kind kills the gateway (poll: a
	// getUpdates handing out messages; send: a send or an edit).
	armed            atomic.Bool
	armedForPoll     atomic.Bool
	killed           atomic.Int64
	killedInCall     atomic.Int64
	killedInPoll     atomic.Int64 // in a getUpdates that handed out updates
	killedInShutdown atomic.Int64

	asks asks

	addr string       // the gateway's HTTP listener
	web  *http.Client // the web chat's client
}

// applied is the fake's hook inside a platform call (a send, an edit, a
// getUpdates handing out messages): armed, it kills the gateway before the
// answer goes back.
func (r *run) applied(method string, _ int64) {
	if method == "sendMessageDraft" || (method == "getUpdates") != r.armedForPoll.Load() || !r.armed.CompareAndSwap(true, false) {
		return
	}
	r.killedInCall.Add(1)
	if method == "getUpdates" {
		r.killedInPoll.Add(1)
	}
	r.gw.kill()
}

// kill sends the kills, each after a random pause of up to 1.4 s (so some
// land during start-up): a share inside the next platform call, a share
// during a graceful shutdown (SIGTERM, then SIGKILL before it ends), the
// rest at once.
func (r *run) kill() {
	for range *kills {
		time.Sleep(time.Duration(rand.Int64N(int64(1400 * time.Millisecond))))
		switch p := rand.Float64(); {
		case p < *shutdown:
			r.killedInShutdown.Add(1)
			r.gw.killWhileStopping(time.Duration(rand.Int64N(int64(time.Second))))
		case p < *shutdown+*inCall:
			// One in four in a getUpdates: they come far more often than
			// sends, and would otherwise take most of the in-call kills.
			r.armedForPoll.Store(rand.IntN(4) == 0)
			r.armed.Store(true)
			for deadline := time.Now().Add(5 * time.Second); r.armed.Load(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) && r.armed.CompareAndSwap(true, false) {
					r.gw.kill() // no call came: a kill at once instead
				}
			}
		default:
			r.gw.kill()
		}
		r.killed.Add(1)
	}
}

// supervise starts the gateway and restarts it at once whenever it dies,
// until it is stopped.
func (r *run) supervise() {
	r.gw.start(r.t)
	go func() {
		for {
			if !r.gw.waitExit() {
				return // stopped
			}
			r.gw.start(r.t)
		}
	}()
}

// asks counts the turns the agent is asked for, by the user's message.
type asks struct {
	mu sync.Mutex
	n  map[string]int
}

// counting counts the turns that reach next: chat requests, and runs
// started (a run started again with its idempotency key, which the server
// answers with the first one, is not the agent asked again).
func (a *asks) counting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || (req.URL.Path != "/v1/chat/completions" && req.URL.Path != "/v1/runs") {
			next.ServeHTTP(w, req)
			return
		}
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		var turn struct {
			Input    string `json:"input"`
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		_ = json.Unmarshal(body, &turn) // a body that is not JSON asks nothing
		if n := len(turn.Messages); n > 0 {
			turn.Input = turn.Messages[n-1].Content
		}
		next.ServeHTTP(w, req)
		if turn.Input == "" || w.Header().Get("Idempotency-Replayed") == "true" {
			return
		}
		a.mu.Lock()
		if a.n == nil {
			a.n = map[string]int{}
		}
		a.n[strings.TrimPrefix(turn.Input, "@herald_bot ")]++
		a.mu.Unlock()
	})
}

// of is how many times the agent was asked for message.
func (a *asks) of(message string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[message]
}

// outcome is what became of one message, from what its chat shows.
type outcome struct {
	complete, partial, notices int
	sending                    int // of the notices, those saying the answer was being sent
}

// outcomeOf reads a message's fate in its chat: the simulator's answer
// quotes the message; a complete answer ends with its last word, a partial
// one with the cursor; a notice quotes it too.
func (r *run) outcomeOf(m sent, msgs []telegramtest.Msg) outcome {
	var o outcome
	quotes := func(text string) bool {
		return strings.Contains(text, `You said: "`+m.text+`"`) || strings.Contains(text, `You said: "`+m.asText+`"`)
	}
	for _, b := range msgs {
		switch {
		case !b.FromBot:
		case quotes(b.Text) && (strings.HasSuffix(strings.TrimSpace(b.Text), "▉") || strings.Contains(b.Text, texts.ShutdownNotice)):
			o.partial++
		case quotes(b.Text):
			o.complete++
		case b.Text == texts.RestartedWhileSending(m.text) || b.Text == texts.RestartedWhileSending(m.asText):
			o.notices++
			o.sending++
		case b.Text == texts.InterruptedByRestart(m.text) || b.Text == texts.InterruptedByRestart(m.asText):
			o.notices++
		}
	}
	return o
}

// quiet waits until every message has its answer or its notice, or the
// fake has seen no call for idle (what is left will not come), or max.
func (r *run) quiet(all []sent, idle, max time.Duration) {
	deadline := time.Now().Add(max)
	calls, since := len(r.tg.Calls()), time.Now()
	for !r.settled(all) && time.Now().Before(deadline) && time.Since(since) < idle {
		time.Sleep(200 * time.Millisecond)
		if n := len(r.tg.Calls()); n != calls {
			calls, since = n, time.Now()
		}
	}
}

// outcomes are what became of each message, in order.
func (r *run) outcomes(all []sent) []outcome {
	byChat := map[string][]telegramtest.Msg{}
	out := make([]outcome, len(all))
	for i, m := range all {
		key := m.conv
		if key == "" {
			key = strconv.FormatInt(m.chat, 10)
		}
		msgs, ok := byChat[key]
		if !ok {
			if m.conv != "" {
				msgs = r.history(m.conv)
			} else {
				msgs = r.tg.Messages(m.chat)
			}
			byChat[key] = msgs
		}
		out[i] = r.outcomeOf(m, msgs)
	}
	return out
}

// history is a web chat conversation as a page that loads now shows it,
// as the fake's messages (the assistant's are the bot's); nil while the
// gateway does not answer.
func (r *run) history(conv string) []telegramtest.Msg {
	code, body := get(r.web, r.addr, "/api/history?conversation="+conv)
	var h struct {
		Messages []struct{ Role, Text string }
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil {
		return nil
	}
	var out []telegramtest.Msg
	for _, m := range h.Messages {
		out = append(out, telegramtest.Msg{FromBot: m.Role == "assistant", Text: m.Text})
	}
	return out
}

// settled tells whether every message has its answer or its notice.
func (r *run) settled(all []sent) bool {
	for _, o := range r.outcomes(all) {
		if o.complete == 0 && o.notices == 0 {
			return false
		}
	}
	return true
}

// figures are a run's results.
type figures struct {
	once, noticed, pending, asked    int
	lost, cut, doubled, extraNotices []string
	sentNotices                      []string // an answer and the notice that it was being sent
}

// journalled are the texts of the turns still journalled in a stopped
// gateway's state: a graceful stop leaves queued turns for the next start.
func journalled(t *testing.T, home string) map[string]bool {
	st, err := sqlite.Open(t.Context(), filepath.Join(home, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	turns, err := st.PendingTurns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, turn := range turns {
		out[turn.Inbound.Text] = true
	}
	return out
}

func (r *run) classify(all []sent, outs []outcome, pending map[string]bool) figures {
	var f figures
	for i, o := range outs {
		m := all[i]
		where := fmt.Sprintf("chat %d", m.chat)
		if m.conv != "" {
			where = "web chat " + m.conv
		}
		desc := fmt.Sprintf("%s in %s: %d complete, %d partial, %d notices (%d saying it was being sent)", m.text, where, o.complete, o.partial, o.notices, o.sending)
		switch {
		case o.complete > 1 || o.notices > 1 || (o.complete == 1 && o.partial > 0):
			f.doubled = append(f.doubled, desc)
		case o.complete == 1 && o.sending == 1:
			f.sentNotices = append(f.sentNotices, desc)
		case o.complete == 1 && o.notices == 1:
			f.extraNotices = append(f.extraNotices, desc)
		case o.complete == 1:
			f.once++
		case o.notices == 1:
			f.noticed++
		case o.partial > 0:
			f.cut = append(f.cut, desc)
		case pending[m.asText]:
			f.pending++
		default:
			f.lost = append(f.lost, desc)
		}
		f.asked += r.asks.of(m.text)
	}
	return f
}

// gateway is the herald binary, run again and again.
type gateway struct {
	bin string
	env []string
	log io.Writer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

func (g *gateway) start(t *testing.T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	cmd := exec.Command(g.bin, "run")
	cmd.Env = g.env
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		t.Errorf("starting herald: %v", err)
		g.stopped = true
		return
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	g.cmd, g.exited = cmd, exited
	// A test that ends early (a failure) leaves no process behind.
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
}

// pid is the running process's.
func (g *gateway) pid() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cmd.Process.Pid
}

// kill sends SIGKILL and waits until the process is gone.
func (g *gateway) kill() { g.end(syscall.SIGKILL, 0) }

// killWhileStopping sends SIGTERM, and SIGKILL after wait unless the
// process ended by then; it returns once the process is gone.
func (g *gateway) killWhileStopping(wait time.Duration) { g.end(syscall.SIGTERM, wait) }

// end sends sig to the running process, and SIGKILL after wait unless it
// ended by then; it returns once the process is gone.
func (g *gateway) end(sig os.Signal, wait time.Duration) {
	g.mu.Lock()
	cmd, exited := g.cmd, g.exited
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// waitExit waits until the running process ends, and reports whether the
// gateway is to be started again.
func (g *gateway) waitExit() bool {
	g.mu.Lock()
	exited := g.exited
	g.mu.Unlock()
	<-exited
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.stopped
}

// exitCode is the status the last process exited with.
func (g *gateway) exitCode() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cmd.ProcessState.ExitCode()
}

// stop ends the gateway with SIGTERM, as an operator would, and keeps it
// from being started again.
func (g *gateway) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.end(syscall.SIGTERM, 30*time.Second)
}

// build builds herald as make build does: static, without cgo.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herald")
	cmd := exec.Command("go", "build", "-tags", "goolm", "-o", bin, "../../cmd/herald")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building herald: %v\n%s", err, out)
	}
	return bin
}

// freeAddr is a loopback address with a free port for a server a test
// starts later, or stops and starts again. The port is drawn below Linux's
// ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default):
// a port the kernel hands out for ":0" or an outgoing connection could be
// taken by another socket in the meantime; one out of that range only by
// another test's freeAddr.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port between 20000 and 32000 on 127.0.0.1")
	return ""
}
