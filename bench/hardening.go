package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/sse"
	"github.com/herald-chat/herald/internal/texts"
)

// hardeningResult is measure 7: what an agent server that sends too much
// costs the gateway (issue 12): an endless event, and a long answer cut at
// the default limit and delivered whole under a raised one. Each is one
// turn of a gateway of its own, seen from outside its process.
type hardeningResult struct {
	EventLimit  int         // gateway.max_event_bytes by default
	AnswerLimit int         // gateway.max_answer_bytes by default
	Endless     boundedTurn // data lines without end in one event
	Cut         boundedTurn // the long answer, cut at AnswerLimit
	Whole       boundedTurn // the same answer, under raisedAnswerLimit
}

// raisedAnswerLimit is gateway.max_answer_bytes for the whole answer: room
// for the 20 MiB the issue asks about, with some to spare.
const raisedAnswerLimit = 32 << 20

// boundedTimeout bounds one turn of measure 7: generous, since the answer
// that this measure is about once took minutes of CPU.
const boundedTimeout = 5 * time.Minute

// boundedTurn is one turn of measure 7.
type boundedTurn struct {
	RSSBefore  int64         // the gateway's VmRSS when the message was posted
	PeakRSS    int64         // its VmHWM from then until the chat showed the end
	CPU        time.Duration // its user+system CPU over the same span
	SysCPU     time.Duration // the system part of it
	Wall       time.Duration // the same span
	Messages   int           // bot messages the chat ended with
	Shown      int           // bytes of text they hold
	Last       string        // the last line shown: the notice, if any
	Whole      bool          // the chat shows the agent's text, white space aside
	Reconnects int           // the page's event stream was cut and reopened
	Warnings   string        // what the gateway logged at warn level or above
	Err        error
}

// errs joins the turns' errors.
func (h *hardeningResult) errs() error {
	return errors.Join(h.Endless.Err, h.Cut.Err, h.Whole.Err)
}

func measureHardening(ctx context.Context, c benchConfig) *hardeningResult {
	res := &hardeningResult{EventLimit: defaultBytes("HERALD_MAX_EVENT_BYTES"), AnswerLimit: defaultBytes("HERALD_MAX_ANSWER_BYTES")}
	profile := func(name string) string {
		if c.ProfileDir == "" {
			return ""
		}
		return filepath.Join(c.ProfileDir, "cpu-hardening-"+name+".prof")
	}
	c.logf("hardening: an endless event of %s", mib(c.EndlessBytes))
	res.Endless = boundedRun(ctx, sim.Options{EndlessEventBytes: c.EndlessBytes}, profile("endless"))
	c.logf("hardening: a %s answer, cut at %s", mib(c.AnswerBytes), mib(res.AnswerLimit))
	res.Cut = boundedRun(ctx, sim.Options{AnswerBytes: c.AnswerBytes}, profile("cut"))
	c.logf("hardening: a %s answer, whole (HERALD_MAX_ANSWER_BYTES %s)", mib(c.AnswerBytes), mib(raisedAnswerLimit))
	res.Whole = boundedRun(ctx, sim.Options{AnswerBytes: c.AnswerBytes}, profile("whole"), fmt.Sprintf("HERALD_MAX_ANSWER_BYTES=%d", raisedAnswerLimit))
	return res
}

// hardeningProfileFor is how long the CPU profile of a turn of measure 7
// runs, from just before the post: longer than any of its turns took
// (about 2 s at most), our choice.
const hardeningProfileFor = 10 * time.Second

// defaultBytes is the default of a byte-count setting, from the registry
// the gateway itself reads.
func defaultBytes(env string) int {
	for _, s := range config.All() {
		if s.Env == env {
			n, _ := strconv.Atoi(s.Default)
			return n
		}
	}
	return 0
}

// boundedRun asks one question of a fresh gateway, relaying to a simulator
// with opts, and measures it from outside, through /proc, from the post
// until the web chat page shows the end of the answer: so the figures hold
// the whole turn, reading, laying out, delivery to the page and the
// journal, and nothing of the driver's own requests. With a profile path,
// a CPU profile of the gateway is written there, taken from the post on.
func boundedRun(ctx context.Context, opts sim.Options, profile string, env ...string) (t boundedTurn) {
	s, err := startSim(opts)
	if err != nil {
		t.Err = err
		return t
	}
	defer s.close()
	ch, err := startChild(ctx, s.URL, "default", env...)
	if err != nil {
		t.Err = err
		return t
	}
	defer func() { t.Warnings += ch.stop() }()
	ctx, cancel := context.WithTimeout(ctx, boundedTimeout)
	defer cancel()

	conv := convID("hard", 0, runTag())
	chat := newChatLog((&webClient{base: ch.base(), cursor: ch.Cursor}).pageFor(conv))
	defer chat.hc.CloseIdleConnections()
	live, stopLive := context.WithCancel(ctx)
	followed, err := chat.follow(live)
	if err != nil {
		stopLive()
		t.Err = err
		return t
	}

	pid := strconv.Itoa(ch.Pid())
	t.RSSBefore = vmRSS(pid)
	user0, sys0, err := procCPU(pid)
	if err == nil {
		err = resetPeak(pid)
	}
	if err != nil {
		stopLive()
		<-followed
		t.Err = err
		return t
	}
	if profile != "" {
		var profiled sync.WaitGroup
		defer profiled.Wait() // before the gateway stops
		profiled.Go(func() {
			if err := ch.profile(ctx, hardeningProfileFor, profile); err != nil {
				t.Warnings += "profile: " + err.Error() + "\n"
			}
		})
	}
	start := time.Now()
	err = chat.post(ctx, "m"+conv, "bench "+conv)
	if err == nil {
		_, err = ch.settled(ctx, 1, boundedTimeout)
	}
	stopLive()
	if ferr := <-followed; err == nil {
		err = ferr
	}
	if err == nil {
		err = chat.catchUp(ctx)
	}
	user1, sys1, cerr := procCPU(pid)
	t.Wall, t.PeakRSS = time.Since(start), procStatusBytes(pid, "VmHWM")
	t.CPU, t.SysCPU = user1-user0+sys1-sys0, sys1-sys0
	if t.Err = errors.Join(err, cerr); t.Err != nil {
		return t
	}

	shown := chat.texts()
	t.Messages, t.Reconnects = len(shown), chat.reconnects
	for _, m := range shown {
		t.Shown += len(m)
	}
	joined := strings.Join(shown, "\n")
	end := strings.TrimRight(joined, " \t\r\n")
	t.Last = end[strings.LastIndexByte(end, '\n')+1:]
	if up, ok := s.Tap.record(conv, 10*time.Second); ok {
		t.Whole = squash(joined) == squash(up.Text)
	}
	return t
}

// procCPU is a process's user and system CPU time from /proc/<pid>/stat,
// its fields 14 and 15 (proc(5)), counted in clock ticks of 1/100 s:
// USER_HZ, what sysconf(_SC_CLK_TCK) answers, is 100 on Linux whatever the
// kernel's own HZ (include/asm-generic/param.h), so it is not read here.
func procCPU(pid string) (user, sys time.Duration, err error) {
	const tick = 10 * time.Millisecond
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// Field 2, the command name in parentheses, may hold spaces: count the
	// fields from the last ')', which is followed by field 3.
	var f []string
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%s/stat: %d fields after the command name, want 13 or more", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return time.Duration(utime) * tick, time.Duration(stime) * tick, nil
}

// resetPeak sets a process's VmHWM back to its VmRSS, so that the peak
// read later is the peak since now ("5" to clear_refs, proc(5), Linux 4.0
// and later).
func resetPeak(pid string) error {
	return os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0)
}

// chatLog is what a web chat page shows of its conversation: each bot
// message's latest text, in the order they came, read live from the event
// stream and reopened from the last cursor whenever Herald cuts it off, as
// it does a page that falls behind. Only one goroutine reads it at a time.
type chatLog struct {
	page
	ids        []string
	text       map[string]string
	cursor     string
	reconnects int
}

func newChatLog(p page) *chatLog { return &chatLog{page: p, text: map[string]string{}} }

// follow opens the page's event stream and, once Herald says ": ready",
// returns while a goroutine reads it live until ctx ends; the channel then
// gives what ended it (nil for ctx).
func (l *chatLog) follow(ctx context.Context) (<-chan error, error) {
	body, err := l.connect(ctx, "")
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	var once sync.Once
	onReady := func() { once.Do(func() { close(ready) }) }
	ended := make(chan error, 1)
	go func() {
		for {
			err := l.read(body, onReady)
			if ctx.Err() != nil {
				ended <- nil
				return
			}
			if l.reconnects++; l.reconnects > maxReconnects {
				ended <- fmt.Errorf("event stream cut %d times, last: %w", l.reconnects, err)
				return
			}
			if body, err = l.connect(ctx, l.cursor); err != nil {
				ended <- fmt.Errorf("reopening the event stream: %w", err)
				return
			}
		}
	}()
	select {
	case <-ready:
		return ended, nil
	case err := <-ended:
		return nil, fmt.Errorf("the event stream ended before it was ready: %w", cmp.Or(err, ctx.Err()))
	}
}

// catchUp reads, on a fresh stream, everything that changed after the
// last event the live stream gave, up to ": ready": then the log holds
// all the page would show.
func (l *chatLog) catchUp(ctx context.Context) error {
	body, err := l.connect(ctx, l.cursor)
	if err != nil {
		return err
	}
	caughtUp := false
	err = l.read(body, func() { caughtUp = true; body.Close() })
	if caughtUp {
		return nil
	}
	return fmt.Errorf("catching up from %s: %w", l.cursor, err)
}

// read applies a stream's events to the log until it ends; onReady is
// called at ": ready".
func (l *chatLog) read(body io.ReadCloser, onReady func()) error {
	defer body.Close()
	rd := sse.NewReader(body)
	rd.OnComment = func(c string) {
		if c == "ready" {
			onReady()
		}
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			return err
		}
		if ev.ID != "" {
			l.cursor = ev.ID
		}
		if ev.Name != "message" && ev.Name != "edit" && ev.Name != "delete" {
			continue
		}
		var m webEvent
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			return fmt.Errorf("bad %s event: %w", ev.Name, err)
		}
		if ev.Name == "delete" {
			delete(l.text, m.ID)
			l.ids = slices.DeleteFunc(l.ids, func(id string) bool { return id == m.ID })
			continue
		}
		if _, known := l.text[m.ID]; !known {
			l.ids = append(l.ids, m.ID)
		}
		l.text[m.ID] = m.Text
	}
}

// texts are the bot messages' texts, in order.
func (l *chatLog) texts() []string {
	out := make([]string, len(l.ids))
	for i, id := range l.ids {
		out[i] = l.text[id]
	}
	return out
}

// mib formats a byte count in MiB, as the limits are written.
func mib(n int) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB" }

// summary is measure 7's rows.
func (h *hardeningResult) summary(c benchConfig) []row {
	var rows []row
	turn := func(t boundedTurn, what string, more func() []row) {
		if t.Err != nil {
			rows = append(rows, row{"7 · " + what, "failed: " + errText(t.Err), dash, "**no**"})
			return
		}
		rows = append(rows, more()...)
	}
	turn(h.Endless, "Endless event", func() []row {
		return []row{
			{fmt.Sprintf("7 · Endless event: %s of data lines in one event (gateway.max_event_bytes %s): gateway peak RSS (RSS before), CPU", mib(c.EndlessBytes), mib(h.EventLimit)),
				fmt.Sprintf("%s (%s), %s", mb(float64(h.Endless.PeakRSS)), mb(float64(h.Endless.RSSBefore)), cpuSeconds(h.Endless.CPU)), dash, dash},
			{"7 · Endless event: the chat ends with", quoteCell(h.Endless.Last), "the \"interrupted\" notice", yesNo(strings.Contains(h.Endless.Last, "interrupted"))},
		}
	})
	turn(h.Cut, "Long answer, cut", func() []row {
		return []row{{fmt.Sprintf("7 · A %s answer, cut at gateway.max_answer_bytes (%s): gateway CPU, peak RSS; text shown", mib(c.AnswerBytes), mib(h.AnswerLimit)),
			fmt.Sprintf("%s, %s; %s with the note", cpuSeconds(h.Cut.CPU), mb(float64(h.Cut.PeakRSS)), size(h.Cut.Shown)), "≤ 1 s of CPU, the note",
			yesNo(h.Cut.CPU <= time.Second && h.Cut.Last == texts.AnswerTruncated(h.AnswerLimit))}}
	})
	turn(h.Whole, "Long answer, whole", func() []row {
		return []row{{fmt.Sprintf("7 · The %s answer delivered whole (HERALD_MAX_ANSWER_BYTES %s): gateway CPU, peak RSS; messages", mib(c.AnswerBytes), mib(raisedAnswerLimit)),
			fmt.Sprintf("%s, %s; %d", cpuSeconds(h.Whole.CPU), mb(float64(h.Whole.PeakRSS)), h.Whole.Messages), "≤ 1 s of CPU, shown whole",
			yesNo(h.Whole.CPU <= time.Second && h.Whole.Whole)}}
	})
	return rows
}

// cpuSeconds formats CPU time read in clock ticks.
func cpuSeconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// size formats a byte count in KB below a MB, else in MB.
func size(n int) string {
	if n < 1e6 {
		return kb(float64(n))
	}
	return mb(float64(n))
}

// quoteCell puts a chat's text in a table cell: cut short, pipes escaped.
func quoteCell(s string) string {
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return "“" + strings.ReplaceAll(s, "|", `\|`) + "”"
}

// markdown is measure 7's section of the report.
func (h *hardeningResult) markdown(w func(string, ...any), c benchConfig) {
	w("## 7. Hardening: an agent server that sends too much\n\n")
	w("Each case is one question to a gateway of its own (default pacing), asked from a web chat page, with the simulator misbehaving as `internal/sim` lets it. The figures are read from outside the gateway's process, from the post until the page has every message of the answer as it ends (the turn journalled as done, and the page's event stream caught up): CPU is `utime + stime` of `/proc/<pid>/stat` (clock ticks of 10 ms), the peak is `VmHWM` of `/proc/<pid>/status`, reset to the RSS at the post (`clear_refs`), and the RSS before is `VmRSS` then. Issue 12 measured, before the bounds: ~1 GB of RSS for 200 MiB of data lines in one event, and 28.7 s of CPU for a 20 MiB answer; its bar is \"a 20 MiB answer must cost no more than a second of CPU\" (reported here, not checked).\n\n")
	if full := fullConfig(); c.Short && c.EndlessBytes == full.EndlessBytes && c.AnswerBytes == full.AnswerBytes {
		w("`-short` runs this measure at full size: it takes seconds.\n\n")
	}
	w("| case | RSS before | peak RSS | CPU (of which system) | wall | messages shown | text shown | page reconnects | the chat ends with |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		t    boundedTurn
	}{
		{fmt.Sprintf("endless event: %s of 1 KiB data lines, no blank line, then the connection cut (gateway.max_event_bytes %s)", mib(c.EndlessBytes), mib(h.EventLimit)), h.Endless},
		{fmt.Sprintf("a %s answer, as fast as the simulator writes, cut at gateway.max_answer_bytes (%s)", mib(c.AnswerBytes), mib(h.AnswerLimit)), h.Cut},
		{fmt.Sprintf("the same answer with HERALD_MAX_ANSWER_BYTES=%d (%s): delivered whole", raisedAnswerLimit, mib(raisedAnswerLimit)), h.Whole},
	} {
		if x.t.Err != nil {
			w("| %s | failed: %s | | | | | | | |\n", x.name, errText(x.t.Err))
			continue
		}
		w("| %s | %s | %s | %s (%s) | %s | %d | %s | %d | %s |\n", x.name, mb(float64(x.t.RSSBefore)), mb(float64(x.t.PeakRSS)),
			cpuSeconds(x.t.CPU), cpuSeconds(x.t.SysCPU), x.t.Wall.Round(time.Millisecond), x.t.Messages, size(x.t.Shown), x.t.Reconnects, quoteCell(x.t.Last))
	}
	if h.Whole.Err == nil {
		is := "is"
		if !h.Whole.Whole {
			is = "is **not**"
		}
		w("\nThe whole answer as the page shows it %s the agent's text (compared with white space folded: the answer is split into messages at white space).\n", is)
	}
	var logged strings.Builder
	for _, x := range []struct {
		name string
		t    boundedTurn
	}{{"endless event", h.Endless}, {"answer cut", h.Cut}, {"answer whole", h.Whole}} {
		if s := strings.TrimSpace(x.t.Warnings); s != "" {
			fmt.Fprintf(&logged, "%s:\n%s\n", x.name, truncateLines(s, 10))
		}
	}
	if logged.Len() > 0 {
		w("\nWhat the gateways logged (warnings and errors):\n\n```\n%s```\n", logged.String())
	}
	w("\n")
}
