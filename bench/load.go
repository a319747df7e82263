package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-chat/herald/internal/sim"
)

// simServer is the simulator, behind the tap, on a loopback port.
type simServer struct {
	URL  string
	Sim  *sim.Server
	Tap  *tap
	srv  *http.Server
	done chan struct{}
}

func startSim(opts sim.Options) (*simServer, error) {
	opts.AllowSessionWithoutKey = true
	opts.Logger = slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &simServer{Sim: sim.New(opts), done: make(chan struct{})}
	s.Tap = newTap(s.Sim)
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.Tap, ReadHeaderTimeout: 10 * time.Second}
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *simServer) close() {
	_ = s.srv.Close()
	<-s.done
}

// streamShape is what the simulator sends for each turn.
type streamShape struct {
	Tokens     int           // content tokens per answer, the echo line included
	TPS        float64       // tokens per second; 0 is as fast as possible
	FirstDelay time.Duration // the agent's "thinking" before the first token
}

// echoTokens is how many tokens the simulator's echo line takes for the
// messages the bench sends ("bench <id>"): "[Hermes simulator · turn 1] You
// said: "bench <id>"." The tap counts the tokens actually sent.
const echoTokens = 9

func (s streamShape) simOptions() sim.Options {
	return sim.Options{
		AnswerTokens:    max(s.Tokens-echoTokens, 1),
		TokensPerSecond: s.TPS,
		FirstTokenDelay: s.FirstDelay,
	}
}

// duration is how long one answer takes to stream.
func (s streamShape) duration() time.Duration {
	d := s.FirstDelay
	if s.TPS > 0 {
		d += time.Duration(float64(s.Tokens-1) / s.TPS * float64(time.Second))
	}
	return d
}

// runSpec describes one run of conversations, each one turn.
type runSpec struct {
	Label string
	N     int
	// Parallel > 0 runs the conversations through that many workers, each
	// opening, asking and closing one conversation after another; 0 makes
	// them simultaneous: every page connected first, then the messages
	// posted spread over Ramp, all answers streaming at once.
	Parallel int
	Ramp     time.Duration
	Timeout  time.Duration // for the whole run
	// OnAllFirst, if set, is called (in its own goroutine) once every
	// conversation shows its first text, with the number already final.
	OnAllFirst func(finals int64)
	// Profile, if set, is where a CPU profile of the gateway is written,
	// taken over ProfileFor from the first post on.
	Profile    string
	ProfileFor time.Duration

	beforePosts func() // simultaneous runs: called once every page is connected
}

// runResult is what one run measured.
type runResult struct {
	Path        string // "direct" or "herald"
	Spec        runSpec
	Convs       []conversation
	First       dist // upstream's first content flushed → first text at the client
	Final       dist // upstream's [DONE] flushed → final text at the client
	Pre         dist // message sent → request at the upstream
	Errors      int
	ErrSamples  []string
	Dropped     int
	DropSamples []string
	Reconnects  int
	Tokens      int
	Wall        time.Duration
	Before      childStats // the gateway, before the posts
	After       childStats // and once every turn was journalled as done
	CPU         time.Duration
	DriverCPU   time.Duration // the bench process's own (simulator and clients)
	MachineBusy float64       // share of all cores busy during the run, any process
	Warnings    string        // what the gateway logged at warn level or above
	// Stages split the Herald path's latencies at the gateway's marks.
	Stages [stageCount]dist
}

// The stages of the Herald path, between the tap, the gateway's marks and
// the client.
const (
	stageFirstRead = iota // upstream's first content flushed → the backend parsed it
	stageFirstPlan        // parsed → the delivery handed the first text to the web chat
	stageFirstOut         // handed → the client had it
	stageFinalRead        // [DONE] flushed → the backend returned
	stageFinalPlan        // returned → the final text handed to the web chat
	stageFinalOut         // handed → the client had it
	stageCount
)

var stageNames = [stageCount]string{
	"upstream flush → parsed by the backend",
	"parsed → handed to the web chat",
	"handed → at the client",
	"[DONE] flushed → backend returned",
	"returned → final text handed to the web chat",
	"handed → at the client",
}

// machineCPU samples /proc/stat: jiffies busy and in all, over every core.
type machineCPU struct{ busy, total uint64 }

func sampleMachine() machineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var m machineCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is counted in user already
			break
		}
		m.total += n
		if i != 3 && i != 4 { // idle, iowait
			m.busy += n
		}
	}
	return m
}

// busySince is the share of the machine's CPU busy since m.
func (m machineCPU) busySince() float64 {
	now := sampleMachine()
	if now.total <= m.total {
		return 0
	}
	return float64(now.busy-m.busy) / float64(now.total-m.total)
}

func (r *runResult) errorf(format string, args ...any) {
	r.Errors++
	if len(r.ErrSamples) < 5 {
		r.ErrSamples = append(r.ErrSamples, fmt.Sprintf(format, args...))
	}
}

// convID makes a conversation id the web chat accepts: 8 to 64 of [A-Za-z0-9_-].
func convID(label string, i int, tag string) string {
	return fmt.Sprintf("%s-%s-%06d", label, tag, i)
}

// runTag tells one run's conversations from another's.
func runTag() string { return strings.ToLower(rand.Text()[:6]) }

// progress counts a run's first and final texts, and calls the spec's
// OnAllFirst once every conversation shows its first text.
type progress struct {
	spec           runSpec
	firsts, finals atomic.Int64
	hook           sync.WaitGroup // the run ends after its OnAllFirst
}

// first notes a conversation's first text.
func (p *progress) first() {
	if p.firsts.Add(1) == int64(p.spec.N) && p.spec.OnAllFirst != nil {
		n := p.finals.Load()
		p.hook.Go(func() { p.spec.OnAllFirst(n) })
	}
}

// wait waits for OnAllFirst to return.
func (p *progress) wait() { p.hook.Wait() }

// runDirect runs the conversations against the simulator directly.
func runDirect(ctx context.Context, s *simServer, spec runSpec) *runResult {
	res := &runResult{Path: "direct", Spec: spec}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	hc := newHTTPClient(1024, 30*time.Second)
	defer hc.CloseIdleConnections()
	tag := runTag()
	convs := make([]conversation, spec.N)
	prog := &progress{spec: spec}
	defer prog.wait()
	one := func(i int) {
		id := convID(spec.Label, i, tag)
		convs[i] = directTurn(ctx, hc, s.URL, id, "bench "+id, prog.first)
		prog.finals.Add(1)
	}
	start, mach, cpu0 := time.Now(), sampleMachine(), processCPU()
	forEach(spec, one)
	res.Wall = time.Since(start)
	res.MachineBusy, res.DriverCPU = mach.busySince(), processCPU()-cpu0
	prog.wait()
	res.Convs = convs
	res.analyze(s.Tap)
	return res
}

// runHerald runs the conversations through the gateway's web chat.
func runHerald(ctx context.Context, s *simServer, ch *child, spec runSpec) *runResult {
	res := &runResult{Path: "herald", Spec: spec}
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	wc := &webClient{base: ch.base(), cursor: ch.Cursor}
	tag := runTag()
	convs := make([]conversation, spec.N)
	prog := &progress{spec: spec}
	defer prog.wait()
	var err error
	if res.Before, err = ch.stats(ctx, false, true); err != nil {
		res.errorf("gateway stats: %v", err)
	}
	start, mach, cpu0 := time.Now(), sampleMachine(), processCPU()
	if spec.Parallel > 0 {
		forEach(spec, func(i int) {
			c := &convs[i]
			c.ID = convID(spec.Label, i, tag)
			es, err := wc.open(ctx, c.ID, prog.first)
			if err != nil {
				c.Err = err
				return
			}
			defer es.close()
			c.Posted = time.Now()
			if c.Err = es.post(ctx, "m"+c.ID, "bench "+c.ID); c.Err != nil {
				return
			}
			es.await(ctx, c)
			prog.finals.Add(1)
		})
	} else {
		// Every page connects first, as users with the chat open.
		streams := make([]*eventStream, spec.N)
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for i := range convs {
			convs[i].ID = convID(spec.Label, i, tag)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				streams[i], convs[i].Err = wc.open(ctx, convs[i].ID, prog.first)
			})
		}
		wg.Wait()
		if spec.beforePosts != nil {
			spec.beforePosts()
		}
		if res.Before, err = ch.stats(ctx, false, true); err != nil {
			res.errorf("gateway stats: %v", err)
		}
		if spec.Profile != "" {
			wg.Go(func() {
				if err := ch.profile(ctx, spec.ProfileFor, spec.Profile); err != nil {
					res.Warnings += "profile: " + err.Error() + "\n"
				}
			})
		}
		start, mach, cpu0 = time.Now(), sampleMachine(), processCPU()
		forEach(spec, func(i int) {
			c, es := &convs[i], streams[i]
			if es == nil {
				return
			}
			defer es.close()
			c.Posted = time.Now()
			if c.Err = es.post(ctx, "m"+c.ID, "bench "+c.ID); c.Err != nil {
				return
			}
			es.await(ctx, c)
			prog.finals.Add(1)
		})
		wg.Wait()
	}
	res.Wall = time.Since(start)
	res.MachineBusy, res.DriverCPU = mach.busySince(), processCPU()-cpu0
	prog.wait()
	res.Convs = convs

	posted := 0
	for _, c := range convs {
		if !c.Posted.IsZero() {
			posted++
		}
	}
	settleFor := max(time.Until(deadline(ctx)), time.Second)
	if res.After, err = ch.settled(context.Background(), res.Before.Settled+posted, settleFor); err != nil {
		res.errorf("waiting for the gateway to journal every turn: %v", err)
		res.After, _ = ch.stats(context.Background(), false, false)
	}
	res.CPU = (res.After.CPUUser + res.After.CPUSys) - (res.Before.CPUUser + res.Before.CPUSys)
	marks, err := ch.marks(context.Background())
	if err != nil {
		res.errorf("gateway marks: %v", err)
	}
	res.stages(s.Tap, marks)
	res.analyze(s.Tap)
	for outcome, n := range res.After.Outcomes {
		if d := n - res.Before.Outcomes[outcome]; outcome != "delivered" && d > 0 {
			res.errorf("%d turns ended %q in the gateway", int(d), outcome)
		}
	}
	return res
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(time.Minute)
	}
	return d
}

// forEach runs fn for 0..N-1: through spec.Parallel workers, or all at once
// with the starts spread evenly over spec.Ramp.
func forEach(spec runSpec, fn func(i int)) {
	var wg sync.WaitGroup
	if spec.Parallel > 0 {
		next := make(chan int)
		for range min(spec.Parallel, spec.N) {
			wg.Go(func() {
				for i := range next {
					fn(i)
				}
			})
		}
		for i := range spec.N {
			next <- i
		}
		close(next)
		wg.Wait()
		return
	}
	start := time.Now()
	for i := range spec.N {
		at := start.Add(time.Duration(int64(spec.Ramp) * int64(i) / int64(spec.N)))
		wg.Go(func() {
			if d := time.Until(at); d > 0 {
				time.Sleep(d) // pacing the load, not synchronising
			}
			fn(i)
		})
	}
	wg.Wait()
}

// analyze matches each conversation with its upstream stream: latencies,
// errors, and text dropped on the way.
func (r *runResult) analyze(t *tap) {
	var first, final, pre []time.Duration
	keys := make([]string, 0, len(r.Convs))
	for _, c := range r.Convs {
		keys = append(keys, c.ID)
		r.Reconnects += c.Reconnects
		if c.Err != nil {
			r.errorf("%s: %v", c.ID, c.Err)
			continue
		}
		rec, ok := t.record(c.ID, 10*time.Second)
		switch {
		case !ok:
			r.errorf("%s: the simulator was never asked", c.ID)
			continue
		case rec.Requests != 1:
			r.errorf("%s: the simulator was asked %d times", c.ID, rec.Requests)
			continue
		case rec.FirstText.IsZero() || rec.LastByte.IsZero():
			r.errorf("%s: the simulator's stream did not complete", c.ID)
			continue
		}
		r.Tokens += rec.Tokens
		if c.Text != rec.Text {
			r.Dropped++
			if len(r.DropSamples) < 3 {
				r.DropSamples = append(r.DropSamples, describeDiff(c.ID, rec.Text, c.Text))
			}
		}
		first = append(first, c.FirstAt.Sub(rec.FirstText))
		final = append(final, c.FinalAt.Sub(rec.LastByte))
		if !c.Posted.IsZero() {
			pre = append(pre, rec.Arrived.Sub(c.Posted))
		}
	}
	t.forget(keys)
	r.First, r.Final, r.Pre = newDist(first), newDist(final), newDist(pre)
}

// stages splits each conversation's latencies at the gateway's marks.
// Call it before analyze, which forgets the tap's records.
func (r *runResult) stages(t *tap, marks map[string][markCount]int64) {
	var st [stageCount][]time.Duration
	for _, c := range r.Convs {
		m, ok := marks[c.ID]
		if c.Err != nil || !ok || m[markFirstDelta] == 0 || m[markFirstCall] == 0 || m[markRunDone] == 0 || m[markFinalCall] == 0 {
			continue
		}
		rec, ok := t.record(c.ID, 10*time.Second)
		if !ok || rec.FirstText.IsZero() || rec.LastByte.IsZero() {
			continue
		}
		at := func(ns int64) time.Time { return time.Unix(0, ns) }
		wall := func(t time.Time) time.Time { return t.Round(0) } // the wall clock, as in the gateway
		st[stageFirstRead] = append(st[stageFirstRead], at(m[markFirstDelta]).Sub(wall(rec.FirstText)))
		st[stageFirstPlan] = append(st[stageFirstPlan], at(m[markFirstCall]).Sub(at(m[markFirstDelta])))
		st[stageFirstOut] = append(st[stageFirstOut], wall(c.FirstAt).Sub(at(m[markFirstCall])))
		st[stageFinalRead] = append(st[stageFinalRead], at(m[markRunDone]).Sub(wall(rec.LastByte)))
		st[stageFinalPlan] = append(st[stageFinalPlan], at(m[markFinalCall]).Sub(at(m[markRunDone])))
		st[stageFinalOut] = append(st[stageFinalOut], wall(c.FinalAt).Sub(at(m[markFinalCall])))
	}
	for i := range st {
		r.Stages[i] = newDist(st[i])
	}
}

// describeDiff says where the text shown departs from the text sent.
func describeDiff(id, want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return fmt.Sprintf("%s: sent %d bytes, shown %d, first difference at byte %d (sent %q, shown %q)",
		id, len(want), len(got), i, snippet(want, i), snippet(got, i))
}

func snippet(s string, i int) string {
	return s[i:min(len(s), i+24)]
}

// ok reports whether the run had no error and dropped no text.
func (r *runResult) ok() error {
	if r.Errors == 0 && r.Dropped == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s run %q: %d errors, %d with dropped text", r.Path, r.Spec.Label, r.Errors, r.Dropped)
	for _, s := range append(r.ErrSamples, r.DropSamples...) {
		b.WriteString("\n  " + s)
	}
	return errors.New(b.String())
}
