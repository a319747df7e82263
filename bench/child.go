package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/webchat"
	"github.com/herald-chat/herald/internal/store"
)

// The gateway under test runs in a process of its own, so that its CPU time,
// memory and file descriptors are its own and not the load generator's. It is
// this same executable, started again with childEnv set.
const (
	childEnv       = "HERALD_BENCH_CHILD"  // "gateway" makes the process the gateway
	childPacingEnv = "HERALD_BENCH_PACING" // "zero" or "default"
)

// isChild reports whether this process was started as the gateway under test.
func isChild() bool { return os.Getenv(childEnv) == "gateway" }

// childHello is the one line the gateway prints on stdout once it is ready.
type childHello struct {
	Addr   string `json:"addr"`
	Cursor string `json:"cursor"`
}

// Stage marks: when, inside the gateway, each chat's answer passed a point
// of the relay, in Unix nanoseconds (the driver's clock is the same).
const (
	markFirstDelta = iota // the backend parsed the first text delta
	markFirstCall         // the delivery called the platform with the first text
	markRunDone           // the backend returned: [DONE] was parsed
	markFinalCall         // the delivery called the platform with the final text
	markCount
)

// marks records the stage marks per chat.
type marks struct {
	mu sync.Mutex
	m  map[string]*[markCount]int64
}

func (m *marks) set(chat string, stage int, first bool) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.m[chat]
	if v == nil {
		v = new([markCount]int64)
		m.m[chat] = v
	}
	if !first || v[stage] == 0 {
		v[stage] = now
	}
}

// take returns the marks and forgets them.
func (m *marks) take() map[string][markCount]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][markCount]int64, len(m.m))
	for k, v := range m.m {
		out[k] = *v
	}
	m.m = map[string]*[markCount]int64{}
	return out
}

// markedBackend is the Hermes backend, marking when the first delta was
// parsed and when the answer ended.
type markedBackend struct {
	agent.Backend
	marks *marks
}

func (b markedBackend) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	chatID := turn.Source.ChatID
	res := b.Backend.Run(ctx, turn, func(ev agent.Event) {
		if ev.Kind == agent.EventDelta {
			b.marks.set(chatID, markFirstDelta, true)
		}
		emit(ev)
	})
	b.marks.set(chatID, markRunDone, false)
	return res
}

// Ping keeps /status working through the wrapper.
func (b markedBackend) Ping(ctx context.Context) error {
	if p, ok := b.Backend.(agent.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// markedWebchat is the web chat, marking when the delivery hands it the first and the final
// text. Everything else is the web chat's.
type markedWebchat struct {
	platform.Adapter
	cursor string
	marks  *marks
}

func (w markedWebchat) mark(chatID, text string) {
	w.marks.set(chatID, markFirstCall, true)
	if !strings.HasSuffix(text, w.cursor) {
		w.marks.set(chatID, markFinalCall, false)
	}
}

func (w markedWebchat) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	w.mark(t.ChatID, text)
	return w.Adapter.Send(ctx, t, text)
}

func (w markedWebchat) Edit(ctx context.Context, t chat.Target, id, text string) error {
	w.mark(t.ChatID, text)
	return w.Adapter.Edit(ctx, t, id, text)
}

// runChild runs the gateway as `herald run` builds it (app.Build: config
// defaults, the SQLite store, the web chat, the Hermes proxy backend),
// with the measuring wrappers, endpoints under /bench/ for the driver and
// /debug/pprof/ for profiles. The driver sets its configuration in the
// environment. It runs until SIGTERM, SIGINT or the end of its standard
// input.
func runChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the driver holds the other end
		stop()
	}()

	pacing := os.Getenv(childPacingEnv)
	cfg, err := config.Load(config.Options{RequireBackend: true})
	if err != nil {
		return err
	}
	if pacing == "zero" {
		// stream.Start takes 0 for "default", so the smallest interval
		// there is; a threshold of one character makes every delta due.
		cfg.Streaming.EditInterval = time.Nanosecond
		cfg.Streaming.BufferThreshold = 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	stageMarks := &marks{m: map[string]*[markCount]int64{}}
	var st *timedStore
	var metricsReg *ops.Metrics
	routes := map[string]http.Handler{
		"GET /bench/stats": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("gc") == "1" {
				debug.FreeOSMemory() // a full collection, and free pages go back
			}
			writeChildJSON(w, st.stats(metricsReg, r.URL.Query().Get("reset") == "1"))
		}),
		"GET /bench/settled": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			wait, _ := time.ParseDuration(r.URL.Query().Get("timeout"))
			if err := st.waitSettled(r.Context(), n, wait); err != nil {
				http.Error(w, err.Error(), http.StatusGatewayTimeout)
				return
			}
			writeChildJSON(w, st.stats(metricsReg, false))
		}),
		"GET /bench/marks": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeChildJSON(w, stageMarks.take())
		}),
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
	}
	a, err := app.Build(ctx, cfg, app.Options{
		Logger: log,
		Routes: routes,
		WrapStore: func(s store.Store) store.Store {
			st = newTimedStore(s)
			return st
		},
		WrapBackend: func(b agent.Backend) agent.Backend { return markedBackend{Backend: b, marks: stageMarks} },
		WrapAdapter: func(ad platform.Adapter) platform.Adapter {
			if ad.Name() != webchat.Name {
				return ad // measure 6's platforms: timed by their fakes
			}
			return markedWebchat{Adapter: ad, cursor: cfg.Streaming.Cursor, marks: stageMarks}
		},
	})
	if err != nil {
		return err
	}
	metricsReg = a.Metrics
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	if err := a.WaitReady(ctx); err != nil {
		return fmt.Errorf("gateway ended before it was ready: %w", errors.Join(err, <-ran))
	}
	if err := json.NewEncoder(os.Stdout).Encode(childHello{Addr: a.Addr(), Cursor: cfg.Streaming.Cursor}); err != nil {
		return err
	}
	return <-ran
}

func writeChildJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// timedStore is the store with every write timed, and settled turns
// counted so the driver can wait for a run's turns to be journalled as done.
type timedStore struct {
	store.Store

	mu       sync.Mutex
	sched0   *metrics.Float64Histogram // scheduling latencies at the last reset
	writes   map[string][]time.Duration
	inFlight int
	maxQueue int // most writes waiting or running at once
	settled  int
	failed   int
	changed  chan struct{} // closed and replaced when settled changes
}

var _ store.Store = (*timedStore)(nil)

func newTimedStore(s store.Store) *timedStore {
	return &timedStore{Store: s, writes: map[string][]time.Duration{}, changed: make(chan struct{})}
}

// timed runs one write and records how long it took, queueing included.
func (s *timedStore) timed(op string, fn func() error) error {
	s.mu.Lock()
	s.inFlight++
	s.maxQueue = max(s.maxQueue, s.inFlight)
	s.mu.Unlock()
	start := time.Now()
	err := fn()
	d := time.Since(start)
	s.mu.Lock()
	s.inFlight--
	s.writes[op] = append(s.writes[op], d)
	s.mu.Unlock()
	return err
}

func (s *timedStore) Receive(ctx context.Context, key string, in chat.Inbound) (t store.Turn, err error) {
	err = s.timed("Receive", func() error { t, err = s.Store.Receive(ctx, key, in); return err })
	return t, err
}

func (s *timedStore) SetTurnStatus(ctx context.Context, id int64, status store.TurnStatus, errText string) error {
	err := s.timed("SetTurnStatus", func() error { return s.Store.SetTurnStatus(ctx, id, status, errText) })
	if status == store.Delivered || status == store.Failed {
		s.mu.Lock()
		s.settled++
		if status == store.Failed {
			s.failed++
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
	return err
}

func (s *timedStore) MarkShown(ctx context.Context, id int64) error {
	return s.timed("MarkShown", func() error { return s.Store.MarkShown(ctx, id) })
}

func (s *timedStore) SetSessionID(ctx context.Context, key, id string) error {
	return s.timed("SetSessionID", func() error { return s.Store.SetSessionID(ctx, key, id) })
}

func (s *timedStore) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	return s.timed("Append", func() error { return s.Store.Append(ctx, sessionID, entries...) })
}

// waitSettled waits until n turns have been settled (delivered or failed).
func (s *timedStore) waitSettled(ctx context.Context, n int, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s.mu.Lock()
		got, changed := s.settled, s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d turns settled: %w", got, n, ctx.Err())
		}
	}
}

// childStats is what /bench/stats answers.
type childStats struct {
	CPUUser   time.Duration `json:"cpu_user"`
	CPUSys    time.Duration `json:"cpu_sys"`
	RSS       int64         `json:"rss"`         // VmRSS
	HeapLive  uint64        `json:"heap_live"`   // live heap at the last GC
	HeapInUse uint64        `json:"heap_in_use"` // heap spans in use
	GoTotal   uint64        `json:"go_total"`    // all memory the Go runtime mapped
	Stacks    uint64        `json:"stacks"`      // goroutine stacks
	// Classes is every /memory/classes/ metric of the Go runtime.
	Classes    map[string]uint64       `json:"classes"`
	Goroutines int                     `json:"goroutines"`
	FDs        int                     `json:"fds"`
	Settled    int                     `json:"settled"`
	Failed     int                     `json:"failed"`
	Outcomes   map[string]float64      `json:"outcomes"` // herald_turns_total by outcome
	Edits      float64                 `json:"edits"`
	Writes     map[string]writeLatency `json:"writes"`
	MaxQueue   int                     `json:"max_queue"`
	Upstream   map[string]float64      `json:"upstream_errors"`
	// SchedP50 and SchedP99 are how long goroutines waited to run once
	// runnable, since the last reset: high when the CPU is the limit.
	SchedP50 time.Duration `json:"sched_p50"`
	SchedP99 time.Duration `json:"sched_p99"`
	// GCCPU is the CPU time the garbage collector used, in all.
	GCCPU time.Duration `json:"gc_cpu"`
}

// writeLatency summarises one kind of store write.
type writeLatency struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

func (s *timedStore) stats(m *ops.Metrics, reset bool) childStats {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/sched/latencies:seconds"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(samples)
	out := childStats{
		CPUUser:    time.Duration(ru.Utime.Nano()),
		CPUSys:     time.Duration(ru.Stime.Nano()),
		RSS:        vmRSS("self"),
		HeapLive:   samples[0].Value.Uint64(),
		HeapInUse:  samples[1].Value.Uint64(),
		GoTotal:    samples[2].Value.Uint64(),
		Goroutines: runtime.NumGoroutine(),
		FDs:        countFDs("self"),
		Outcomes:   map[string]float64{},
		Upstream:   map[string]float64{},
		Writes:     map[string]writeLatency{},
		Edits:      counterValue(m.Edits),
		GCCPU:      time.Duration(samples[4].Value.Float64() * float64(time.Second)),
		Stacks:     samples[5].Value.Uint64(),
	}
	sched := samples[3].Value.Float64Histogram()
	out.Classes = map[string]uint64{}
	var classes []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") && d.Kind == metrics.KindUint64 {
			classes = append(classes, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(classes)
	for _, c := range classes {
		out.Classes[strings.TrimSuffix(strings.TrimPrefix(c.Name, "/memory/classes/"), ":bytes")] = c.Value.Uint64()
	}
	for _, o := range []string{"delivered", "error", "failed", "interrupted", "stopped"} {
		if v := counterValue(m.Turns.WithLabelValues(o)); v > 0 {
			out.Outcomes[o] = v
		}
	}
	for _, k := range []string{"status", "connection", "idle_timeout", "agent", "incomplete", "other"} {
		if v := counterValue(m.UpstreamErrors.WithLabelValues(k)); v > 0 {
			out.Upstream[k] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.Settled, out.Failed, out.MaxQueue = s.settled, s.failed, s.maxQueue
	for op, ds := range s.writes {
		d := newDist(ds)
		out.Writes[op] = writeLatency{N: len(d), P50: d.p50(), P99: d.p99(), Max: d.max()}
	}
	out.SchedP50, out.SchedP99 = histPct(sched, s.sched0, 50), histPct(sched, s.sched0, 99)
	if reset {
		s.writes = map[string][]time.Duration{}
		s.maxQueue = s.inFlight
		s.sched0 = sched
	}
	return out
}

// histPct is the p-th percentile of the samples h gained since base (nil:
// all of them), at the upper bound of its bucket.
func histPct(h, base *metrics.Float64Histogram, p float64) time.Duration {
	counts := slices.Clone(h.Counts)
	if base != nil && len(base.Counts) == len(counts) {
		for i := range counts {
			counts[i] -= base.Counts[i]
		}
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*p/100 + 0.5)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= max(want, 1) {
			upper := h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = h.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}

// counterValue reads a Prometheus counter or gauge.
func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// vmRSS reads a process's resident set size from /proc (pid "self" for this
// one), or -1 where there is no /proc.
func vmRSS(pid string) int64 { return procStatusBytes(pid, "VmRSS") }

// procStatusBytes reads a size field of /proc/<pid>/status (given there in
// kB) in bytes, or -1 where there is no /proc.
func procStatusBytes(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return -1
}

// countFDs counts a process's open file descriptors, or -1 without /proc.
func countFDs(pid string) int {
	entries, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// child is a running gateway under test, seen from the driver.
type child struct {
	Addr   string
	Cursor string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	home   string
	stderr *tailBuffer
	hc     *http.Client
}

// benchHTTPTimeout is the gateway's HTTP idle and write timeouts in the
// bench (see startChild): far beyond what any measure waits, our choice.
const benchHTTPTimeout = "1h"

// benchHTTPCap is the listener's caps for the bench: as many connections
// as the open-file limit holds beside the cap's spare quarter and the
// process's own files (the gateway warns beyond that), which is far above
// the bench's 10,000 connections on a machine set up for it.
func benchHTTPCap() string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return "1000000"
	}
	return strconv.FormatUint((rl.Cur-64)*4/5, 10)
}

// startChild starts the gateway under test, relaying to the simulator at
// simURL with the given pacing ("zero" or "default").
// Extra variables (NAME=value) configure more of it, such as a platform.
func startChild(ctx context.Context, simURL, pacing string, extra ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(environWithoutHerald(),
		childEnv+"=gateway",
		childPacingEnv+"="+pacing,
		"HERALD_HOME="+home,
		"GATEWAY_PROXY_URL="+simURL,
		"HERALD_HTTP_ADDR=127.0.0.1:0",
		"HERALD_LOG_LEVEL=warn",
		// Every bench client comes from 127.0.0.1, one client address to
		// the listener's caps, which are sized for people's browsers: the
		// bench holds up to 5,000 pages of two connections each, one of
		// them an event stream. Caps far above that keep it out of their way.
		"HERALD_HTTP_MAX_CONNECTIONS="+benchHTTPCap(),
		"HERALD_HTTP_MAX_CONNECTIONS_PER_CLIENT="+benchHTTPCap(),
		"HERALD_HTTP_MAX_EVENT_STREAMS="+benchHTTPCap(),
		"HERALD_HTTP_MAX_EVENT_STREAMS_PER_CLIENT="+benchHTTPCap(),
		// Pages hold their API connection idle from the history until their
		// post, the driver's connection waits between its stats calls, and
		// /bench/settled answers only once a run's turns are done (minutes,
		// for a large run): neither the idle nor the write timeout may cut
		// them. A request still has to arrive within the read timeout.
		"HERALD_HTTP_IDLE_TIMEOUT="+benchHTTPTimeout,
		"HERALD_HTTP_WRITE_TIMEOUT="+benchHTTPTimeout,
	)
	cmd.Env = append(cmd.Env, extra...)
	c := &child{cmd: cmd, home: home, stderr: &tailBuffer{max: 64 << 10}}
	cmd.Stderr = c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(home)
		return nil, err
	}
	hello := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			var h childHello
			if err = json.Unmarshal(line, &h); err == nil {
				c.Addr, c.Cursor = h.Addr, h.Cursor
			}
		}
		hello <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-hello:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(60 * time.Second):
		err = errors.New("no answer in 60 s")
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("starting the gateway under test: %w (stderr: %s)", err, c.stderr.String())
	}
	c.hc = &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}}
	return c, nil
}

// environWithoutHerald is this process's environment less every variable
// Herald reads, so that the gateway under test has only the bench's own
// configuration.
func environWithoutHerald() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, herald := config.Lookup(name); !herald {
			env = append(env, kv)
		}
	}
	return env
}

// base is the gateway's HTTP base URL.
func (c *child) base() string { return "http://" + c.Addr }

// Pid is the gateway's process id.
func (c *child) Pid() int { return c.cmd.Process.Pid }

// stats asks the gateway for its figures; gc makes it collect first.
func (c *child) stats(ctx context.Context, gc, reset bool) (childStats, error) {
	q := "?"
	if gc {
		q += "gc=1&"
	}
	if reset {
		q += "reset=1"
	}
	return c.getStats(ctx, "/bench/stats"+q)
}

// settled waits until n turns are journalled as done.
func (c *child) settled(ctx context.Context, n int, timeout time.Duration) (childStats, error) {
	return c.getStats(ctx, fmt.Sprintf("/bench/settled?n=%d&timeout=%s", n, timeout))
}

func (c *child) getStats(ctx context.Context, path string) (childStats, error) {
	var st childStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+path, nil)
	if err != nil {
		return st, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return st, json.Unmarshal(body, &st)
}

// marks fetches (and clears) the gateway's stage marks.
func (c *child) marks(ctx context.Context) (map[string][markCount]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/bench/marks", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string][markCount]int64
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// profile fetches a CPU profile of the next d into path.
func (c *child) profile(ctx context.Context, d time.Duration, path string) error {
	return c.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())), path)
}

// fetch saves what the gateway answers at a path of its listener.
func (c *child) fetch(ctx context.Context, urlPath, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+urlPath, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", urlPath, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// stop ends the gateway (SIGTERM, then a kill after 20 s) and removes its
// home. Errors it logged at warn level or above are returned.
func (c *child) stop() string {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	if c.stdin != nil {
		_ = c.stdin.Close()
	}
	if c.hc != nil {
		c.hc.CloseIdleConnections()
	}
	_ = os.RemoveAll(c.home)
	return c.stderr.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = slices.Delete(t.b, 0, over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
