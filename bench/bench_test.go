package main

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/texts"
)

// TestMain lets the test binary be the gateway under test too: the bench
// starts its own executable again with HERALD_BENCH_CHILD set.
func TestMain(m *testing.M) {
	if isChild() {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testConfig is the short mode, smaller still: these tests check that every
// measure works and relays every answer whole, never how fast.
func testConfig(t *testing.T) benchConfig {
	c := shortConfig()
	c.RelaySamples = 5
	// 20 pages at once hold more event streams than the listener lets one
	// client address hold by default (16), as the bench's every page comes
	// from 127.0.0.1: startChild must lift the caps.
	c.Levels = []int{1, 20}
	c.RelayShape = streamShape{Tokens: 12, TPS: 200, FirstDelay: 5 * time.Millisecond}
	c.ScaleShape = streamShape{Tokens: 20, TPS: 100, FirstDelay: 5 * time.Millisecond}
	c.Ramp = 100 * time.Millisecond
	c.Active = 5
	c.Idle = 20
	c.IdleParallel = 4
	c.StartupRuns = 1
	c.SSERounds = 1
	c.SSERound = 20 * time.Millisecond
	c.PacingLengths = []time.Duration{time.Second}
	c.PacingTelegram = 4
	c.PacingMatrix = 1
	c.PacingParallel = 4
	c.EndlessBytes = 20 << 20 // past the default event limit, 16 MiB
	c.AnswerBytes = 2 << 20   // past the default answer limit, 1 MiB
	c.Log = t.Logf
	return c
}

// wholeRun fails the test unless every conversation of the run was
// answered in full, with one upstream stream each, and measured.
func wholeRun(t *testing.T, r *runResult, n, tokens int) {
	t.Helper()
	if r == nil {
		t.Fatal("no run")
	}
	if err := r.ok(); err != nil {
		t.Fatal(err)
	}
	if len(r.First) != n || len(r.Final) != n {
		t.Errorf("%s %s: %d first and %d final latencies, want %d each", r.Path, r.Spec.Label, len(r.First), len(r.Final), n)
	}
	if tokens > 0 && r.Tokens != n*tokens {
		t.Errorf("%s %s: the simulator sent %d tokens, want %d", r.Path, r.Spec.Label, r.Tokens, n*tokens)
	}
	if r.Path == "herald" {
		for i, d := range r.Stages {
			if len(d) != n {
				t.Errorf("%s: stage %q has %d samples, want %d", r.Spec.Label, stageNames[i], len(d), n)
			}
		}
	}
}

func TestShortMode(t *testing.T) {
	cfg := testConfig(t)
	ctx := t.Context()
	r := &report{Config: cfg, Started: time.Now(), LoadStart: loadAvg()}

	t.Run("sse", func(t *testing.T) {
		s, err := measureSSE(cfg.SSERounds, cfg.SSERound)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 2 {
			t.Fatalf("%d streams measured, want 2", len(s.Streams))
		}
		for _, st := range s.Streams {
			if st.Events < 1000 || st.Herald.EventsPerSec <= 0 || st.OpenAI.EventsPerSec <= 0 {
				t.Errorf("%s: %+v", st.Name, st)
			}
		}
		r.SSE = &s
	})

	t.Run("relay", func(t *testing.T) {
		rl, err := measureRelay(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range []*runResult{rl.Direct, rl.Zero, rl.Default} {
			wholeRun(t, run, cfg.RelaySamples, cfg.RelayShape.Tokens)
		}
		r.Relay = rl
	})

	t.Run("scale", func(t *testing.T) {
		levels, err := measureScale(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(levels) != len(cfg.Levels) {
			t.Fatalf("%d levels run, want %d", len(levels), len(cfg.Levels))
		}
		for _, lv := range levels {
			wholeRun(t, lv.Direct, lv.N, cfg.ScaleShape.Tokens)
			wholeRun(t, lv.Herald, lv.N, cfg.ScaleShape.Tokens)
			if lv.Herald.CPU <= 0 {
				t.Errorf("%d conversations: gateway CPU %v", lv.N, lv.Herald.CPU)
			}
		}
		r.Scale = levels
	})

	t.Run("memory", func(t *testing.T) {
		m, err := measureMemory(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wholeRun(t, m.ActiveRun, cfg.Active, cfg.ScaleShape.Tokens)
		wholeRun(t, m.IdleRun, cfg.Idle, 20)
		for name, st := range map[string]childStats{"pages": m.Pages, "streaming": m.Streaming, "idle": m.IdleAfter} {
			if st.RSS <= 0 || st.HeapLive == 0 {
				t.Errorf("%s: RSS %d, heap %d", name, st.RSS, st.HeapLive)
			}
		}
		if m.IdleAfter.Settled != 50+cfg.Idle {
			t.Errorf("%d turns settled, want %d", m.IdleAfter.Settled, 50+cfg.Idle)
		}
		r.Memory = m
	})

	t.Run("pacing", func(t *testing.T) {
		p := measurePacing(ctx, cfg)
		if p.MatrixSkipped != "" && !testing.Short() {
			t.Errorf("Matrix not run: %s", p.MatrixSkipped)
		}
		for _, x := range []struct {
			name    string
			answers []pacedAnswer
			want    int
			over    int
			err     error
		}{{"Telegram", p.Telegram, cfg.PacingTelegram, p.TelegramOver, p.TelegramErr}, {"Matrix", p.Matrix, cfg.PacingMatrix, p.MatrixOut, p.MatrixErr}} {
			if x.name == "Matrix" && p.MatrixSkipped != "" {
				continue
			}
			if x.err != nil {
				t.Errorf("%s: %v", x.name, x.err)
			}
			if len(x.answers) != x.want || x.over != 0 || differences(x.answers) != 0 {
				t.Errorf("%s: %d answers measured of %d, %d calls over the budget, %d shown other than sent", x.name, len(x.answers), x.want, x.over, differences(x.answers))
			}
			for _, a := range x.answers {
				if a.Length <= 0 || a.First < 0 || a.Final < 0 {
					t.Errorf("%s: answer %+v: a text shown before the agent wrote it", x.name, a)
				}
			}
		}
		r.Pacing = p
	})

	t.Run("hardening", func(t *testing.T) {
		h := measureHardening(ctx, cfg)
		if err := h.errs(); err != nil {
			t.Fatal(err)
		}
		for name, turn := range map[string]boundedTurn{"endless": h.Endless, "cut": h.Cut, "whole": h.Whole} {
			if turn.RSSBefore <= 0 || turn.PeakRSS < turn.RSSBefore || turn.CPU <= 0 || turn.Messages == 0 {
				t.Errorf("%s: %+v", name, turn)
			}
		}
		if want := "⚠️ The answer was interrupted: the agent server sent more at once than Herald accepts"; !strings.HasPrefix(h.Endless.Last, want) {
			t.Errorf("endless event: the chat ends with %q, want %q…", h.Endless.Last, want)
		}
		if want := texts.AnswerTruncated(h.AnswerLimit); h.Cut.Last != want || h.Cut.Shown > h.AnswerLimit+len(want)+4 {
			t.Errorf("answer cut: the chat shows %d bytes ending with %q, want at most %d and %q", h.Cut.Shown, h.Cut.Last, h.AnswerLimit, want)
		}
		if !h.Whole.Whole {
			t.Errorf("answer whole: %d messages of %d bytes in all, not the agent's %d", h.Whole.Messages, h.Whole.Shown, cfg.AnswerBytes)
		}
		r.Hardening = h
	})

	t.Run("startup", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the binary")
		}
		s := measureStartup(ctx, "", cfg.StartupRuns)
		if s.Err != nil {
			t.Fatal(s.Err)
		}
		if s.Size < 1<<20 || len(s.Fresh) != cfg.StartupRuns || s.Fresh.p50() <= 0 {
			t.Errorf("start-up result %+v", s)
		}
		r.Startup = &s
	})

	t.Run("report", func(t *testing.T) {
		r.Finished, r.LoadEnd = time.Now(), loadAvg()
		dir := t.TempDir()
		if err := write(ctx, r, dir); err != nil {
			t.Fatal(err)
		}
		md, err := os.ReadFile(filepath.Join(dir, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"| measure | figure | target | met? |", "added latency to first text", "errors / answers with dropped text", "idle session", "SSE parsing", "6. Pacing by budget", "7. Hardening"} {
			if !strings.Contains(string(md), want) {
				t.Errorf("report.md lacks %q", want)
			}
		}
		if strings.Contains(string(md), "| failed: ") {
			t.Errorf("report.md reports a failure:\n%s", md)
		}
		svg, err := os.ReadFile(filepath.Join(dir, "latency.svg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(svg, new(struct{})); err != nil {
			t.Errorf("latency.svg is not well-formed XML: %v", err)
		}
	})
}

// The tap must see dropped text: an answer shown shorter than sent counts.
func TestAnalyzeCountsDroppedText(t *testing.T) {
	tp := newTap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, chunk := range []string{"Hello", ` \"world\"`, "!"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n", chunk)
			if err := rc.Flush(); err != nil {
				t.Error(err)
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		_ = rc.Flush()
	}))
	srv := httptest.NewServer(tp)
	defer srv.Close()
	for _, id := range []string{"conv-whole", "conv-short"} {
		c := directTurn(t.Context(), srv.Client(), srv.URL, id, "hi", nil)
		if c.Err != nil || c.Text != `Hello "world"!` {
			t.Fatalf("direct client got %q, %v", c.Text, c.Err)
		}
	}
	now := time.Now()
	r := &runResult{Convs: []conversation{
		{ID: "conv-whole", FirstAt: now, FinalAt: now, Text: `Hello "world"!`},
		{ID: "conv-short", FirstAt: now, FinalAt: now, Text: `Hello "world"`},
		{ID: "conv-never", FirstAt: now, FinalAt: now, Text: "?"},
	}}
	r.analyze(tp)
	if r.Dropped != 1 || len(r.DropSamples) != 1 || !strings.Contains(r.DropSamples[0], "conv-short") {
		t.Errorf("dropped %d: %q", r.Dropped, r.DropSamples)
	}
	if r.Errors != 1 || !strings.Contains(r.ErrSamples[0], "never asked") {
		t.Errorf("errors %d: %q", r.Errors, r.ErrSamples)
	}
	if r.Tokens != 6 {
		t.Errorf("%d tokens counted, want 6", r.Tokens)
	}
	if r.ok() == nil {
		t.Error("ok() passed a run with dropped text")
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := newDist(ds)
	if d.p50() != 50*time.Millisecond || d.p99() != 99*time.Millisecond || d.max() != 100*time.Millisecond {
		t.Errorf("p50 %v, p99 %v, max %v", d.p50(), d.p99(), d.max())
	}
	if got := newDist(nil).p99(); got != 0 {
		t.Errorf("empty p99 = %v", got)
	}
}
