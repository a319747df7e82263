// Command bench measures what Herald costs on the way between an agent
// server and a chat: the latency it adds to the direct path, how that holds
// up with thousands of simultaneous conversations, its memory per idle
// session and per active stream, its start-up time and binary size, and its
// SSE reader against openai-go's. It runs everything on loopback and writes
// bench/results/report.md with a chart, latency.svg (and latency.png when
// Chromium is installed).
//
//	go run -tags goolm ./bench          # the full run, some minutes
//	go run -tags goolm ./bench -short   # small counts, for CI
//
// The gateway under test runs as a child process: this same executable,
// started again with HERALD_BENCH_CHILD=gateway.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if isChild() {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench gateway:", err)
			os.Exit(1)
		}
		return
	}
	short := flag.Bool("short", false, "small counts (1 and 10 conversations, 100 idle sessions, 10 streams), for CI")
	out := flag.String("out", "", "directory for report.md and the chart (default: bench/results of the module)")
	herald := flag.String("herald", "", "a built herald binary to time and size (default: build one as `make build` does)")
	profile := flag.Bool("profile", false, "write a CPU profile of the gateway during the largest concurrency run to the output directory (cpu-N.prof)")
	only := flag.String("only", "", "run only these measures, comma-separated: sse, startup, relay, scale, memory, pacing, hardening")
	levels := flag.String("levels", "", "concurrency levels to run instead of the mode's, comma-separated (e.g. 100,1000)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *short, *out, *herald, *profile, *only, *levels); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, short bool, out, herald string, profile bool, only, levels string) error {
	cfg := fullConfig()
	if short {
		cfg = shortConfig()
	}
	if levels != "" {
		cfg.Levels = nil
		for _, f := range strings.Split(levels, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("-levels: %q is not a number of conversations", f)
			}
			cfg.Levels = append(cfg.Levels, n)
		}
	}
	if out == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		out = filepath.Join(root, "bench", "results")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	cfg.Herald = herald
	if profile {
		cfg.ProfileDir = out
	}
	cfg.Log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	want := func(name string) bool {
		return only == "" || slices.Contains(strings.Split(only, ","), name)
	}

	r := collect(ctx, cfg, want)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return write(ctx, r, out)
}

// collect runs the measures wanted, in an order that puts the light ones
// first, and gathers them in a report.
func collect(ctx context.Context, cfg benchConfig, want func(string) bool) *report {
	r := &report{Config: cfg, Started: time.Now(), LoadStart: loadAvg(), ProfileDir: cfg.ProfileDir}
	if want("sse") && ctx.Err() == nil {
		cfg.logf("SSE parsing: %d rounds of %s per decoder", cfg.SSERounds, cfg.SSERound)
		s, err := measureSSE(cfg.SSERounds, cfg.SSERound)
		if err != nil {
			r.SSEErr = err
		} else {
			r.SSE = &s
		}
	}
	if want("startup") && ctx.Err() == nil {
		cfg.logf("start-up: %d starts on a fresh home and %d restarts", cfg.StartupRuns, cfg.StartupRuns)
		s := measureStartup(ctx, cfg.Herald, cfg.StartupRuns)
		r.Startup = &s
	}
	if want("relay") && ctx.Err() == nil {
		r.Relay, r.RelayErr = measureRelay(ctx, cfg)
	}
	if want("scale") && ctx.Err() == nil {
		r.Scale, r.ScaleErr = measureScale(ctx, cfg)
	}
	if want("memory") && ctx.Err() == nil {
		r.Memory, r.MemoryErr = measureMemory(ctx, cfg)
	}
	if want("pacing") && ctx.Err() == nil {
		r.Pacing = measurePacing(ctx, cfg)
	}
	if want("hardening") && ctx.Err() == nil {
		r.Hardening = measureHardening(ctx, cfg)
	}
	r.Finished, r.LoadEnd = time.Now(), loadAvg()
	return r
}

// write puts the report and the chart in dir and says where they are.
func write(ctx context.Context, r *report, dir string) error {
	svgPath := filepath.Join(dir, "latency.svg")
	pngPath := filepath.Join(dir, "latency.png")
	if err := os.WriteFile(svgPath, []byte(latencyChart(r).svg()), 0o644); err != nil {
		return err
	}
	if err := writePNG(ctx, svgPath, pngPath); err != nil {
		r.ChartNote = "No PNG this time (" + errText(err) + "); the SVG is the chart."
		_ = os.Remove(pngPath)
	} else {
		r.ChartNote = "The same chart as a PNG: [latency.png](latency.png)."
	}
	reportPath := filepath.Join(dir, "report.md")
	if err := os.WriteFile(reportPath, []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	fmt.Println("report:", reportPath)
	fmt.Println("chart: ", svgPath)
	if _, err := os.Stat(pngPath); err == nil {
		fmt.Println("chart: ", pngPath)
	}
	for _, rw := range r.summary() {
		fmt.Printf("  %-95s %-28s %-22s %s\n", rw.measure, rw.figure, rw.target, rw.met)
	}
	err := errors.Join(r.SSEErr, r.RelayErr, r.ScaleErr, r.MemoryErr)
	if r.Pacing != nil {
		err = errors.Join(err, r.Pacing.TelegramErr, r.Pacing.MatrixErr)
	}
	if r.Hardening != nil {
		err = errors.Join(err, r.Hardening.errs())
	}
	return err
}
