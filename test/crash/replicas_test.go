package crash

import (
	"bufio"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
)

// replica is another herald run beside w's gateway: the same settings and
// database, a home and a listener of its own.
func (w *faultWorld) replica(t *testing.T) (*gateway, string) {
	addr := freeAddr(t)
	var env []string
	for _, kv := range w.gw.env {
		switch {
		case strings.HasPrefix(kv, "HERALD_HOME="):
			kv = "HERALD_HOME=" + t.TempDir()
		case strings.HasPrefix(kv, "HERALD_HTTP_ADDR="):
			kv = "HERALD_HTTP_ADDR=" + addr
		}
		env = append(env, kv)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "replica.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("the replica's log:\n%s", out)
		}
	})
	return &gateway{bin: w.gw.bin, env: env, log: logf}, addr
}

// holderAndStandby starts the agent server and w's gateway, which takes
// the lease, then a second replica, and returns it once it stands by.
func (w *faultWorld) holderAndStandby(t *testing.T) (*gateway, string) {
	w.agent.start(t)
	w.gw.start(t)
	waitReady(t, http.DefaultClient, w.http)
	standby, addr := w.replica(t)
	standby.start(t)
	w.waitStandingBy("the second replica", addr)
	return standby, addr
}

// waitStandingBy waits until the replica at addr says it stands by.
func (w *faultWorld) waitStandingBy(what, addr string) {
	w.t.Helper()
	w.waitFor(what+" to stand by", func() bool {
		code, body := get(http.DefaultClient, addr, "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"lease":"standing by"`)
	})
}

// Two herald run processes on one PostgreSQL: one holds the gateway's
// lease and polls Telegram, the other stands by (its /readyz says so).
// Killed with -9, the holder's lease lapses and the other takes over:
// the next message is answered once, and at no moment did two replicas
// poll (Telegram would have answered 409 Conflict).
func TestReplicaTakesOverAfterKill(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	standby, standbyAddr := w.holderAndStandby(t)
	defer standby.stop()
	if got := w.ask("first"); !strings.Contains(got, `You said: "first"`) {
		t.Errorf("the holder answered %q", got)
	}

	w.gw.kill()
	killed := time.Now()
	waitReady(t, http.DefaultClient, standbyAddr)
	t.Logf("the standby took over %v after the holder was killed (lease TTL 2s)", time.Since(killed).Round(10*time.Millisecond))
	if _, body := get(http.DefaultClient, standbyAddr, "/readyz"); !strings.Contains(body, `"lease":"held"`) {
		t.Errorf("/readyz of the new holder: %s", body)
	}
	if got := metric(http.DefaultClient, standbyAddr, "herald_lease_takeovers_total"); got != "herald_lease_takeovers_total 1" {
		t.Errorf("/metrics of the new holder: %q", got)
	}
	if got := w.ask("second"); !strings.Contains(got, `You said: "second"`) {
		t.Errorf("the new holder answered %q", got)
	}

	// The first comes back and stands by; the holder stopped as an
	// operator would lets its lease go, and the first takes over at once.
	w.gw.start(t)
	w.waitStandingBy("the first replica", w.http)
	standby.stop()
	stopped := time.Now()
	waitReady(t, http.DefaultClient, w.http)
	t.Logf("after SIGTERM to the holder, the standby was ready %v later", time.Since(stopped).Round(10*time.Millisecond))
	if got := w.ask("third"); !strings.Contains(got, `You said: "third"`) {
		t.Errorf("after the handover the chat shows %q", got)
	}
	noConflicts(t, w)
}

// noConflicts fails the test if Telegram ever answered getUpdates with 409
// Conflict: two replicas polled at once.
func noConflicts(t *testing.T, w *faultWorld) {
	t.Helper()
	for _, c := range w.tg.CallsOf("getUpdates") {
		if c.Status == http.StatusConflict {
			t.Errorf("getUpdates answered 409 at %s: two replicas polled at once", c.At.Format("15:04:05.000"))
		}
	}
}

// cutter carries TCP connections to a server until cut: then it closes
// them and every new one, as a network partition would.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); c.partition() })
	go c.serve()
	return c
}

func (c *cutter) serve() {
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			c.mu.Unlock()
			in.Close()
			continue
		}
		c.conns = append(c.conns, in, out)
		c.mu.Unlock()
		go func() { io.Copy(out, in); out.Close() }()
		go func() { io.Copy(in, out); in.Close() }()
	}
}

// partition closes every connection and refuses new ones.
func (c *cutter) partition() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// A holder cut off from the database stops on its own before its lease
// can lapse (exit status 3: fencing); the replica standing by takes over
// and answers, and at no moment did two replicas poll.
func TestHolderCutOffFromTheDatabaseStops(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	link := newCutter(t, u.Host)
	viaLink := *u
	viaLink.Host = link.ln.Addr().String()
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+viaLink.String(), "HERALD_LEASE_TTL=2s")
	w.agent.start(t)
	w.gw.start(t)
	waitReady(t, http.DefaultClient, w.http)
	standby, standbyAddr := w.replica(t)
	for i, kv := range standby.env {
		if strings.HasPrefix(kv, "HERALD_DATABASE_URL=") {
			standby.env[i] = "HERALD_DATABASE_URL=" + dbURL // not through the link
		}
	}
	standby.start(t)
	defer standby.stop()
	w.waitStandingBy("the second replica", standbyAddr)

	link.partition()
	cutAt := time.Now()
	if !w.gw.waitExit() {
		t.Fatal("the gateway was stopped by the test")
	}
	stoppedAfter := time.Since(cutAt)
	if code := w.gw.exitCode(); code != 3 {
		t.Errorf("the holder cut off from the database exited with %d, want 3", code)
	}
	waitReady(t, http.DefaultClient, standbyAddr)
	t.Logf("cut off from the database, the holder stopped after %v; the standby was ready %v after the cut (lease TTL 2s)",
		stoppedAfter.Round(10*time.Millisecond), time.Since(cutAt).Round(10*time.Millisecond))
	if got := w.ask("after the cut"); !strings.Contains(got, `You said: "after the cut"`) {
		t.Errorf("the new holder answered %q", got)
	}
	noConflicts(t, w)
}

// The holder killed with -9 in the middle of an answer: the replica
// standing by takes the turn over as a restart would, following the run
// on the agent server, so the chat ends with the complete answer in the
// message that showed it, or with one notice; never with two answers.
func TestTakeoverMidAnswer(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	w.agent.answer = sim.New(sim.Options{AllowSessionWithoutKey: true, Runs: true, Logger: slog.New(slog.DiscardHandler),
		AnswerTokens: 60, TokensPerSecond: 10})
	standby, standbyAddr := w.holderAndStandby(t)
	defer standby.stop()

	w.tg.Inject(telegramtest.Incoming{Chat: w.chat, From: w.alice, Text: "a long one"})
	// Under way: in a draft (a private chat's stream), or a message where
	// drafts are not used. Waiting for a message would wait for the final
	// one, and kill after the answer was shown whole.
	w.waitFor("the answer to be under way", func() bool {
		for _, draft := range w.tg.Drafts(w.chat.ID) {
			if strings.Contains(draft, "You said") {
				return true
			}
		}
		msgs := w.botMessages()
		return len(msgs) > 0 && strings.Contains(msgs[len(msgs)-1].Text, "You said")
	})
	w.gw.kill()
	waitReady(t, http.DefaultClient, standbyAddr)
	w.waitFor("the chat to show the end of the answer", func() bool {
		msgs := w.botMessages()
		if len(msgs) == 0 {
			return false // the draft's answer is still written
		}
		last := msgs[len(msgs)-1].Text
		return strings.Contains(last, "restarted") || strings.HasSuffix(strings.TrimSpace(last), ".") && !strings.Contains(last, "▉")
	})
	time.Sleep(time.Second) // nothing more follows
	msgs := w.botMessages()
	complete, notices := 0, 0
	for _, m := range msgs {
		switch {
		case strings.Contains(m.Text, "restarted"):
			notices++
		case strings.Contains(m.Text, `You said: "a long one"`) && !strings.Contains(m.Text, "▉"):
			complete++
		}
	}
	t.Logf("after the takeover the chat shows %d messages: %d complete answers, %d notices", len(msgs), complete, notices)
	if complete+notices != 1 || complete > 1 {
		t.Errorf("the chat shows %+v, want the complete answer once or one notice", msgs)
	}
	noConflicts(t, w)
}

// Three replicas: one holds the lease, two stand by; killed, the holder is
// replaced by exactly one of them, the other still standing by.
func TestThreeReplicas(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	w.agent.start(t)
	w.gw.start(t)
	waitReady(t, http.DefaultClient, w.http)
	var addrs []string
	for range 2 {
		g, addr := w.replica(t)
		g.start(t)
		defer g.stop()
		addrs = append(addrs, addr)
	}
	readiness := func() (ready, standing int) {
		for _, addr := range addrs {
			switch code, body := get(http.DefaultClient, addr, "/readyz"); {
			case code == http.StatusOK:
				ready++
			case strings.Contains(body, "standing by"):
				standing++
			}
		}
		return ready, standing
	}
	w.waitFor("both other replicas to stand by", func() bool { _, standing := readiness(); return standing == 2 })

	w.gw.kill()
	w.waitFor("one replica to take over", func() bool { ready, _ := readiness(); return ready == 1 })
	time.Sleep(time.Second) // the other goes on trying, and finds the lease held
	if ready, standing := readiness(); ready != 1 || standing != 1 {
		t.Errorf("after the takeover %d replicas are ready and %d stand by, want 1 and 1", ready, standing)
	}
	if got := w.ask("who answers?"); !strings.Contains(got, `You said: "who answers?"`) {
		t.Errorf("after the takeover the chat shows %q", got)
	}
	noConflicts(t, w)
}

var takeovers = flag.Int("replicas.takeovers", 3, "how many takeovers TestTakeoverTimes measures (make bench-takeover: 20)")

// TestTakeoverTimes kills the holder of two replicas with -9 again and
// again (its replica restarted to stand by each time) and measures how
// soon the other is ready, with the lease TTL at 2 s: it reports the p50
// and the longest. Every takeover must happen, with no 409 at any moment.
func TestTakeoverTimes(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	w.agent.start(t)
	other, otherAddr := w.replica(t)
	defer other.stop()
	type replica struct {
		g    *gateway
		addr string
	}
	holder, standby := replica{w.gw, w.http}, replica{other, otherAddr}
	holder.g.start(t)
	waitReady(t, http.DefaultClient, holder.addr)
	var took []time.Duration
	for range *takeovers {
		standby.g.start(t)
		w.waitStandingBy("the replica", standby.addr)
		holder.g.kill()
		killed := time.Now()
		waitReady(t, http.DefaultClient, standby.addr)
		took = append(took, time.Since(killed))
		holder, standby = standby, holder
	}
	slices.Sort(took)
	t.Logf("%d takeovers after kill -9, lease TTL 2s: p50 %v, longest %v", len(took),
		took[len(took)/2].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond))
	if got := w.ask("still answered?"); !strings.Contains(got, `You said: "still answered?"`) {
		t.Errorf("after the takeovers the chat shows %q", got)
	}
	noConflicts(t, w)
}

// webHistory is a web chat conversation's history as a replica serves it.
func webHistory(t *testing.T, addr, conv string) []string {
	t.Helper()
	code, body := get(http.DefaultClient, addr, "/api/history?conversation="+conv)
	if code != http.StatusOK {
		t.Fatalf("GET /api/history on %s: %d %s", addr, code, body)
	}
	var h struct{ Messages []struct{ Role, Text string } }
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range h.Messages {
		texts = append(texts, m.Role+": "+m.Text)
	}
	return texts
}

// Behind a load balancer any replica serves the web chat: a replica
// standing by forwards the page's requests to the holder, so a message
// posted through it is answered, and its history shows the answer; after
// a takeover the same replica answers by itself, and the history is whole.
func TestStandbyForwardsTheWebChat(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	standby, standbyAddr := w.holderAndStandby(t)
	defer standby.stop()

	const conv = "conv-replicas-1"
	if err := post(http.DefaultClient, standbyAddr, conv, "through-the-standby", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the answer through-the-standby", func() bool {
		h := webHistory(t, standbyAddr, conv)
		return len(h) == 2 && strings.Contains(h[1], `You said: "through-the-standby"`)
	})

	w.gw.kill()
	waitReady(t, http.DefaultClient, standbyAddr)
	if err := post(http.DefaultClient, standbyAddr, conv, "after-the-takeover", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	w.waitFor("the answer after-the-takeover", func() bool {
		h := webHistory(t, standbyAddr, conv)
		return len(h) == 4 && strings.Contains(h[3], `You said: "after-the-takeover"`)
	})
	if h := webHistory(t, standbyAddr, conv); !strings.HasPrefix(h[0], "user: through-the-standby") || !strings.HasPrefix(h[2], "user: after-the-takeover") {
		t.Errorf("the history after the takeover: %q", h)
	}
}

// webEvent is one message or edit of a web chat's event stream.
type webEvent struct {
	cursor, text string
}

// webEvents opens a conversation's event stream on a replica, from after
// (a cursor; "" for all), and sends its message and edit events to the
// channel it returns, until the stream ends or stop is called.
func webEvents(t *testing.T, addr, conv, after string) (events <-chan webEvent, stop func()) {
	t.Helper()
	query := url.Values{"conversation": {conv}}
	if after != "" {
		query.Set("after", after)
	}
	resp, err := http.Get("http://" + addr + "/api/events?" + query.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /api/events on %s: %s", addr, resp.Status)
	}
	out := make(chan webEvent, 1024)
	go func() {
		defer close(out)
		lines := bufio.NewScanner(resp.Body)
		lines.Buffer(nil, 1<<20)
		var cursor, kind string
		for lines.Scan() {
			field, value, _ := strings.Cut(lines.Text(), ": ")
			switch field {
			case "id":
				cursor = value
			case "event":
				kind = value
			case "data":
				var m struct{ Text string }
				if json.Unmarshal([]byte(value), &m) == nil && (kind == "message" || kind == "edit") {
					out <- webEvent{cursor: cursor, text: m.Text}
				}
			case "":
				cursor, kind = "", ""
			}
		}
	}()
	return out, func() { resp.Body.Close() }
}

// A page whose replica changes mid-answer (a load balancer moving it)
// reconnects to another with its last cursor and still ends with the exact
// final text: the replicas standing by forward to the holder, whose stream
// resumes from the cursor.
func TestPageSwitchesReplicaMidAnswer(t *testing.T) {
	w := newFaultWorld(t, "HERALD_DATABASE_URL="+pgtest.NewDatabase(t), "HERALD_LEASE_TTL=2s")
	first, firstAddr := w.holderAndStandby(t)
	defer first.stop()
	second, secondAddr := w.replica(t)
	second.start(t)
	defer second.stop()
	w.waitStandingBy("the third replica", secondAddr)

	const conv = "conv-switching-1"
	w.agent.mode.Store("slow")
	events, stop := webEvents(t, firstAddr, conv, "")
	if err := post(http.DefaultClient, firstAddr, conv, "switch-me", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var mid webEvent
	for ev := range events {
		if strings.HasSuffix(ev.text, "▉") && ev.cursor != "" {
			mid = ev
			break
		}
	}
	stop()
	if mid.cursor == "" {
		t.Fatal("the first replica's stream ended before the answer was half written")
	}

	events, stop = webEvents(t, secondAddr, conv, mid.cursor)
	defer stop()
	var final string
	for ev := range events {
		if strings.Contains(ev.text, `You said: "switch-me"`) && !strings.HasSuffix(ev.text, "▉") {
			final = ev.text
			break
		}
	}
	want := sim.Answer(1, "switch-me", 40)
	if final != want {
		t.Errorf("the page ends with %q, want %q", final, want)
	}
	if h := webHistory(t, secondAddr, conv); len(h) != 2 || h[1] != "assistant: "+want {
		t.Errorf("the history: %q", h)
	}
}
