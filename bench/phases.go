package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// benchConfig holds the counts of one bench run.
type benchConfig struct {
	Short bool

	RelaySamples int         // sequential turns per path for the relay overhead
	RelayShape   streamShape //
	Levels       []int       // simultaneous conversations
	ScaleShape   streamShape //
	Ramp         time.Duration
	Active       int // simultaneous streams for the memory figure
	Idle         int // sessions left idle for the memory figure
	IdleParallel int
	StartupRuns  int
	SSERounds    int
	SSERound     time.Duration
	// Measure 6: answers of these lengths to Telegram (that many in all,
	// PacingParallel at a time) and to Matrix (one at a time).
	PacingLengths  []time.Duration
	PacingTelegram int
	PacingMatrix   int
	PacingParallel int
	// Measure 7: the endless event's bytes of data lines, and the long
	// answer's bytes.
	EndlessBytes int
	AnswerBytes  int

	Herald     string // a prebuilt binary for the start-up figure; empty builds one
	ProfileDir string // where CPU profiles of the largest run go; empty: none
	Log        func(format string, args ...any)
}

func fullConfig() benchConfig {
	return benchConfig{
		RelaySamples: 200,
		RelayShape:   streamShape{Tokens: 20, TPS: 100, FirstDelay: 20 * time.Millisecond},
		Levels:       []int{1, 10, 100, 1000, 5000},
		ScaleShape:   streamShape{Tokens: 200, TPS: 50, FirstDelay: 50 * time.Millisecond},
		Ramp:         time.Second,
		Active:       1000,
		Idle:         10000,
		IdleParallel: 64,
		StartupRuns:  10,
		SSERounds:    5,
		SSERound:     time.Second,

		PacingLengths:  []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second},
		PacingTelegram: 200,
		PacingMatrix:   8,
		PacingParallel: 10,

		EndlessBytes: 200 << 20, // the sizes issue 12 asks about
		AnswerBytes:  20 << 20,
	}
}

func shortConfig() benchConfig {
	c := fullConfig()
	c.Short = true
	c.RelaySamples = 20
	c.Levels = []int{1, 10}
	c.ScaleShape.Tokens = 50 // 1 s streams: the counts are small, the shape the same
	c.Active = 10
	c.Idle = 100
	c.IdleParallel = 16
	c.StartupRuns = 3
	c.SSERounds = 3
	c.SSERound = 100 * time.Millisecond
	c.PacingLengths = []time.Duration{time.Second, 3 * time.Second}
	c.PacingTelegram = 20
	c.PacingMatrix = 2
	return c
}

func (c benchConfig) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

// runTimeout is a generous bound for one run of n conversations.
func runTimeout(n int, shape streamShape, parallel int) time.Duration {
	per := shape.duration() + 2*time.Second
	if parallel > 0 {
		return time.Duration(n/parallel+1)*per + 2*time.Minute
	}
	return per + 3*time.Minute + time.Duration(n)*20*time.Millisecond
}

// relayResult is measure 1: the same streams read directly and through
// Herald's web chat, one conversation at a time.
type relayResult struct {
	Shape   streamShape
	Direct  *runResult
	Zero    *runResult // edit pacing off
	Default *runResult // edit pacing as configured by default
}

func measureRelay(ctx context.Context, c benchConfig) (*relayResult, error) {
	s, err := startSim(c.RelayShape.simOptions())
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &relayResult{Shape: c.RelayShape}
	spec := runSpec{N: c.RelaySamples, Parallel: 1, Timeout: runTimeout(c.RelaySamples, c.RelayShape, 1)}
	spec.Label = "relay"
	c.logf("relay overhead: %d turns directly", spec.N)
	res.Direct = runDirect(ctx, s, spec)
	for _, pacing := range []string{"zero", "default"} {
		c.logf("relay overhead: %d turns through Herald, %s pacing", spec.N, pacing)
		ch, err := startChild(ctx, s.URL, pacing)
		if err != nil {
			return res, err
		}
		spec.Label = "relay" + pacing[:1]
		r := runHerald(ctx, s, ch, spec)
		r.Warnings += ch.stop()
		if pacing == "zero" {
			res.Zero = r
		} else {
			res.Default = r
		}
	}
	return res, nil
}

// scaleLevel is measure 2 at one level: n conversations at once, directly
// and through Herald (default pacing).
type scaleLevel struct {
	N      int
	Direct *runResult
	Herald *runResult
	// PeakFDs are the gateway's open files once every answer streams.
	PeakFDs int
}

func measureScale(ctx context.Context, c benchConfig) ([]scaleLevel, error) {
	s, err := startSim(c.ScaleShape.simOptions())
	if err != nil {
		return nil, err
	}
	defer s.close()
	var levels []scaleLevel
	for i, n := range c.Levels {
		lv := scaleLevel{N: n}
		spec := runSpec{Label: fmt.Sprintf("s%d", n), N: n, Ramp: c.Ramp, Timeout: runTimeout(n, c.ScaleShape, 0)}
		c.logf("concurrency %d: directly", n)
		lv.Direct = runDirect(ctx, s, spec)
		c.logf("concurrency %d: through Herald", n)
		ch, err := startChild(ctx, s.URL, "default")
		if err != nil {
			return levels, err
		}
		var fdsOnce sync.Once
		spec.OnAllFirst = func(int64) {
			fdsOnce.Do(func() { lv.PeakFDs = countFDs(fmt.Sprint(ch.Pid())) })
		}
		if c.ProfileDir != "" && i == len(c.Levels)-1 {
			spec.Profile = filepath.Join(c.ProfileDir, fmt.Sprintf("cpu-%d.prof", n))
			spec.ProfileFor = max(c.ScaleShape.duration(), 2*time.Second)
		}
		lv.Herald = runHerald(ctx, s, ch, spec)
		lv.Herald.Warnings += ch.stop()
		c.logf("concurrency %d: first text +%s p50 / +%s p99, %d errors, %d dropped",
			n, ms(lv.Herald.First.p50()-lv.Direct.First.p50()), ms(lv.Herald.First.p99()-lv.Direct.First.p50()),
			lv.Herald.Errors, lv.Herald.Dropped)
		levels = append(levels, lv)
	}
	return levels, nil
}

// memoryResult is measure 3.
type memoryResult struct {
	Active     int
	ActiveBase childStats // before the pages connected
	Pages      childStats // every page connected, nothing asked
	Streaming  childStats // every answer streaming
	FinalsAt   int64      // answers already final when Streaming was taken
	ActiveRun  *runResult

	Idle      int
	IdleBase  childStats // after a warm-up
	IdleAfter childStats // after Idle more conversations of one turn each
	DiskBytes int64      // state.db and its WAL after them
	IdleRun   *runResult
}

func measureMemory(ctx context.Context, c benchConfig) (*memoryResult, error) {
	res := &memoryResult{Active: c.Active, Idle: c.Idle}

	// Active streams: the scale test's streams, sampled once all stream.
	s, err := startSim(c.ScaleShape.simOptions())
	if err != nil {
		return nil, err
	}
	c.logf("memory: %d active streams", c.Active)
	ch, err := startChild(ctx, s.URL, "default")
	if err != nil {
		s.close()
		return nil, err
	}
	if res.ActiveBase, err = ch.stats(ctx, true, false); err != nil {
		return nil, err
	}
	sampled := make(chan struct{})
	spec := runSpec{Label: "active", N: c.Active, Ramp: c.Ramp, Timeout: runTimeout(c.Active, c.ScaleShape, 0)}
	var sampleErr error
	spec.OnAllFirst = func(finals int64) {
		defer close(sampled)
		res.FinalsAt = finals
		res.Streaming, sampleErr = ch.stats(ctx, true, false)
		if c.ProfileDir != "" {
			_ = ch.fetch(ctx, "/debug/pprof/goroutine?debug=1", filepath.Join(c.ProfileDir, "goroutines-streaming.prof"))
			_ = ch.fetch(ctx, "/debug/pprof/heap", filepath.Join(c.ProfileDir, "heap-streaming.prof"))
		}
	}
	// The pages' cost is sampled by the run itself: Before is taken once
	// every page is connected; take it again here with a collection.
	res.ActiveRun = runHeraldSampled(ctx, s, ch, spec, func() {
		res.Pages, _ = ch.stats(ctx, true, false)
	})
	select {
	case <-sampled:
	case <-time.After(time.Minute):
		sampleErr = fmt.Errorf("no sample: not every answer showed text")
	}
	res.ActiveRun.Warnings += ch.stop()
	s.close()
	if sampleErr != nil {
		return res, sampleErr
	}

	// Idle sessions: one turn each, then nothing.
	idleShape := streamShape{Tokens: 20}
	if s, err = startSim(idleShape.simOptions()); err != nil {
		return res, err
	}
	defer s.close()
	c.logf("memory: %d idle sessions", c.Idle)
	if ch, err = startChild(ctx, s.URL, "default"); err != nil {
		return res, err
	}
	warm := runSpec{Label: "warm", N: 50, Parallel: c.IdleParallel, Timeout: runTimeout(50, idleShape, c.IdleParallel)}
	if r := runHerald(ctx, s, ch, warm); r.ok() != nil {
		ch.stop()
		return res, r.ok()
	}
	if res.IdleBase, err = ch.stats(ctx, true, false); err != nil {
		ch.stop()
		return res, err
	}
	spec = runSpec{Label: "idle", N: c.Idle, Parallel: c.IdleParallel, Timeout: runTimeout(c.Idle, idleShape, c.IdleParallel)}
	res.IdleRun = runHerald(ctx, s, ch, spec)
	if res.IdleAfter, err = ch.stats(ctx, true, false); err != nil {
		ch.stop()
		return res, err
	}
	for _, name := range []string{"state.db", "state.db-wal"} {
		if fi, err := os.Stat(filepath.Join(ch.home, name)); err == nil {
			res.DiskBytes += fi.Size()
		}
	}
	res.IdleRun.Warnings += ch.stop()
	return res, nil
}

// runHeraldSampled is runHerald with a hook run once every page is
// connected, before the first message.
func runHeraldSampled(ctx context.Context, s *simServer, ch *child, spec runSpec, pagesConnected func()) *runResult {
	spec.beforePosts = pagesConnected
	return runHerald(ctx, s, ch, spec)
}

// warnings gathers what gateways logged, trimmed.
func warnings(runs ...*runResult) string {
	var b strings.Builder
	for _, r := range runs {
		if r != nil && strings.TrimSpace(r.Warnings) != "" {
			fmt.Fprintf(&b, "%s %s:\n%s\n", r.Path, r.Spec.Label, strings.TrimSpace(r.Warnings))
		}
	}
	return b.String()
}
