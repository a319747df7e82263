package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// report is everything one bench run measured.
type report struct {
	Config            benchConfig
	Started, Finished time.Time
	LoadStart         string
	LoadEnd           string

	SSE        *sseResult
	SSEErr     error
	Startup    *startupResult
	Relay      *relayResult
	RelayErr   error
	Scale      []scaleLevel
	ScaleErr   error
	Memory     *memoryResult
	MemoryErr  error
	Pacing     *pacingResult
	Hardening  *hardeningResult
	ChartNote  string
	ProfileDir string
}

// added is the latency Herald adds: its sample less the direct path's median.
type added struct {
	FirstP50, FirstP99, FinalP50, FinalP99 time.Duration
}

func addedOf(direct, herald *runResult) added {
	base1, base2 := direct.First.p50(), direct.Final.p50()
	return added{
		FirstP50: herald.First.p50() - base1, FirstP99: herald.First.p99() - base1,
		FinalP50: herald.Final.p50() - base2, FinalP99: herald.Final.p99() - base2,
	}
}

// row is one line of the summary table.
type row struct{ measure, figure, target, met string }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

const dash = "—"

// loadAvg reads /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimLeft(v, " \t:"))
		}
	}
	return runtime.GOARCH
}

func noFileLimit() string {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%d (hard %d)", l.Cur, l.Max)
}

func perToken(r *runResult) string {
	if r == nil || r.Tokens == 0 {
		return dash
	}
	return fmt.Sprintf("%.1f µs", float64(r.CPU)/float64(r.Tokens)/1e3)
}

func pp(d dist) string {
	if len(d) == 0 {
		return dash
	}
	return ms(d.p50()) + " / " + ms(d.p99())
}

func errText(err error) string {
	s := strings.TrimSpace(err.Error())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// summary builds the table of figures beside their targets.
func (r *report) summary() []row {
	var rows []row
	short := r.Config.Short

	if rl := r.Relay; rl != nil && rl.Direct != nil {
		for _, h := range []struct {
			name string
			run  *runResult
		}{{"pacing off", rl.Zero}, {"default pacing", rl.Default}} {
			if h.run == nil || len(h.run.First) == 0 {
				continue
			}
			a := addedOf(rl.Direct, h.run)
			rows = append(rows,
				row{fmt.Sprintf("1 · Relay, %s: added latency to first text p50 / p99 (%d turns, one at a time)", h.name, len(h.run.First)),
					ms(a.FirstP50) + " / " + ms(a.FirstP99), dash + " (targets are set at 1,000 conversations)", dash},
				row{fmt.Sprintf("1 · Relay, %s: added latency to final text p50 / p99", h.name),
					ms(a.FinalP50) + " / " + ms(a.FinalP99), dash, dash})
		}
	} else if r.RelayErr != nil {
		rows = append(rows, row{"1 · Relay overhead", "failed: " + errText(r.RelayErr), dash, "**no**"})
	}

	for _, lv := range r.Scale {
		if lv.Direct == nil || lv.Herald == nil {
			continue
		}
		a := addedOf(lv.Direct, lv.Herald)
		fig := fmt.Sprintf("%s / %s (the direct path alone: %s / %s)", ms(a.FirstP50), ms(a.FirstP99), ms(lv.Direct.First.p50()), ms(lv.Direct.First.p99()))
		if len(lv.Herald.First) == 0 {
			fig = "no samples"
		}
		target, met := dash, dash
		if lv.N == 1000 {
			target, met = "≤ 1 ms / ≤ 5 ms", yesNo(len(lv.Herald.First) > 0 && a.FirstP50 <= time.Millisecond && a.FirstP99 <= 5*time.Millisecond)
		}
		rows = append(rows, row{fmt.Sprintf("2 · %s: added latency to first text p50 / p99", convs(lv.N)), fig, target, met})
	}
	for _, lv := range r.Scale {
		if lv.Herald == nil {
			continue
		}
		target := "0 / 0"
		if lv.N == 5000 {
			target = "0 / 0 (target at 5,000)"
		}
		rows = append(rows, row{fmt.Sprintf("2 · %s: errors / answers with dropped text", convs(lv.N)),
			fmt.Sprintf("%d / %d of %d", lv.Herald.Errors+errorsOf(lv.Direct), lv.Herald.Dropped, lv.N), target,
			yesNo(lv.Herald.Errors+errorsOf(lv.Direct) == 0 && lv.Herald.Dropped == 0)})
	}
	for _, lv := range r.Scale {
		if lv.Herald != nil && lv.N >= 1000 {
			n, _, p99, _ := writeSummary(lv.Herald.After.Writes)
			rows = append(rows, row{fmt.Sprintf("2 · %s: message posted → request at the agent server p50 / p99 (journal and session writes first)", convs(lv.N)),
				fmt.Sprintf("%s / %s (SQLite writes p99 %s, %d at most waiting of %d)", ms(lv.Herald.Pre.p50()), ms(lv.Herald.Pre.p99()), ms(p99), lv.Herald.After.MaxQueue, n), dash, dash})
		}
	}
	if len(r.Scale) > 0 {
		var parts []string
		for _, lv := range r.Scale {
			parts = append(parts, fmt.Sprintf("%d: %s", lv.N, perToken(lv.Herald)))
		}
		rows = append(rows, row{"2 · Gateway CPU time per relayed token, by conversations", strings.Join(parts, "; "), dash, dash})
	}
	if !short && (len(r.Scale) > 0 || r.ScaleErr != nil) {
		have := map[int]bool{}
		for _, lv := range r.Scale {
			have[lv.N] = lv.Herald != nil
		}
		for _, n := range []int{1000, 5000} {
			if !have[n] {
				msg := "not run"
				if r.ScaleErr != nil {
					msg = "failed: " + errText(r.ScaleErr)
				}
				rows = append(rows, row{"2 · " + convs(n), msg, "see above", "**no**"})
			}
		}
	} else if r.ScaleErr != nil {
		rows = append(rows, row{"2 · Concurrency", "failed: " + errText(r.ScaleErr), dash, "**no**"})
	}

	if m := r.Memory; m != nil {
		if m.IdleRun != nil {
			n := float64(m.Idle)
			heap := float64(int64(m.IdleAfter.HeapLive)-int64(m.IdleBase.HeapLive)) / n
			rss := float64(m.IdleAfter.RSS-m.IdleBase.RSS) / n
			rows = append(rows,
				row{fmt.Sprintf("3 · Go heap per idle session (%s sessions)", thousands(m.Idle)), kb(heap), "≤ 20 KB", notShortMet(short, heap <= 20_000)},
				row{fmt.Sprintf("3 · RSS per idle session (%s sessions)", thousands(m.Idle)), kb(rss), "≤ 20 KB", notShortMet(short, rss <= 20_000)})
		}
		if m.ActiveRun != nil && m.Streaming.RSS > 0 {
			n := float64(m.Active)
			heap := float64(int64(m.Streaming.HeapLive)-int64(m.Pages.HeapLive)) / n
			rss := float64(m.Streaming.RSS-m.Pages.RSS) / n
			rows = append(rows,
				row{fmt.Sprintf("3 · Go heap per active stream (%s streams)", thousands(m.Active)), kb(heap), "≤ 64 KB", notShortMet(short, heap <= 64_000)},
				row{fmt.Sprintf("3 · RSS per active stream (%s streams)", thousands(m.Active)), kb(rss), "≤ 64 KB", notShortMet(short, rss <= 64_000)})
		}
	}
	if r.MemoryErr != nil {
		rows = append(rows, row{"3 · Memory", "failed: " + errText(r.MemoryErr), dash, "**no**"})
	}

	if s := r.Startup; s != nil {
		if s.Err != nil {
			rows = append(rows, row{"4 · Start-up", "failed: " + errText(s.Err), "≤ 100 ms", "**no**"})
		} else {
			rows = append(rows,
				row{fmt.Sprintf("4 · Start to /readyz 200 with the web chat, p50 (max) of %d, fresh HERALD_HOME", len(s.Fresh)),
					fmt.Sprintf("%s (%s)", ms(s.Fresh.p50()), ms(s.Fresh.max())), "≤ 100 ms", yesNo(s.Fresh.p50() <= 100*time.Millisecond)},
				row{"4 · Binary size (static, -trimpath -s -w)", mb(float64(s.Size)), "≤ 40 MB", yesNo(s.Size <= 40e6)})
		}
	}

	if s := r.SSE; s != nil {
		for i, st := range s.Streams {
			label := "5 · SSE parsing, " + st.Name + ": Herald vs openai-go, events per CPU-second"
			rows = append(rows, row{label, fmt.Sprintf("%.2f M vs %.2f M: %.2f×", st.Herald.EventsPerSec/1e6, st.OpenAI.EventsPerSec/1e6, st.Ratio()),
				"≥ 2×", yesNo(st.Ratio() >= 2)})
			if i == 0 {
				rows = append(rows,
					row{"5 · SSE parsing, same stream: MB/s", fmt.Sprintf("%.0f vs %.0f", st.Herald.MBPerSec, st.OpenAI.MBPerSec), dash, dash},
					row{"5 · SSE parsing, same stream: allocations per event", fmt.Sprintf("%.2f vs %.2f", st.Herald.AllocsPerEvent, st.OpenAI.AllocsPerEvent), dash, dash})
			}
		}
	} else if r.SSEErr != nil {
		rows = append(rows, row{"5 · SSE parsing", "failed: " + errText(r.SSEErr), "≥ 2×", "**no**"})
	}
	if p := r.Pacing; p != nil {
		rows = append(rows, p.summary()...)
	}
	if h := r.Hardening; h != nil {
		rows = append(rows, h.summary(r.Config)...)
	}
	return rows
}

// summary is measure 6's rows: per platform, the first and final text's
// delay after the agent at p99, and the calls over a budget.
func (p *pacingResult) summary() []row {
	var rows []row
	for _, x := range []struct {
		name    string
		answers []pacedAnswer
		over    int
		err     error
		skipped string
	}{{"Telegram", p.Telegram, p.TelegramOver, p.TelegramErr, ""}, {"Matrix", p.Matrix, p.MatrixOut, p.MatrixErr, p.MatrixSkipped}} {
		switch {
		case x.skipped != "":
			rows = append(rows, row{"6 · " + x.name + ": pacing by budget", "not run: " + x.skipped, dash, dash})
			continue
		case x.err != nil:
			rows = append(rows, row{"6 · " + x.name + ": pacing by budget", "failed: " + errText(x.err), dash, "**no**"})
		}
		if len(x.answers) == 0 {
			continue
		}
		first, final := delays(x.answers)
		rows = append(rows,
			row{fmt.Sprintf("6 · %s, flood control on: agent's first text → first text shown, p99 (%d answers)", x.name, len(x.answers)), ms(first.p99()), "≤ 50 ms", yesNo(first.p99() <= 50*time.Millisecond)})
		if x.name == "Matrix" {
			var funded []pacedAnswer
			for _, a := range x.answers {
				if a.Tokens >= 2 {
					funded = append(funded, a)
				}
			}
			f, _ := delays(funded)
			rows = append(rows, row{fmt.Sprintf("6 · Matrix: the same, answers that began with the 2 tokens a first and a final text take (%d of %d)", len(funded), len(x.answers)),
				ms(f.p99()), "≤ 50 ms", yesNo(len(funded) > 0 && f.p99() <= 50*time.Millisecond)})
		}
		rows = append(rows,
			row{fmt.Sprintf("6 · %s, flood control on: agent's end → final text shown, p99", x.name), ms(final.p99()), "≤ 50 ms", yesNo(final.p99() <= 50*time.Millisecond)},
			row{fmt.Sprintf("6 · %s: calls over the platform's budget / answers shown other than sent", x.name), fmt.Sprintf("%d / %d", x.over, differences(x.answers)), "0 / 0", yesNo(x.over == 0 && differences(x.answers) == 0)})
	}
	return rows
}

// delays are the answers' first and final text delays.
func delays(answers []pacedAnswer) (first, final dist) {
	var f, l []time.Duration
	for _, a := range answers {
		f, l = append(f, a.First), append(l, a.Final)
	}
	return newDist(f), newDist(l)
}

// differences counts the answers shown other than the agent sent them.
func differences(answers []pacedAnswer) int {
	n := 0
	for _, a := range answers {
		n += a.Differences
	}
	return n
}

// convs says "1 conversation", "1,000 conversations".
func convs(n int) string {
	if n == 1 {
		return "1 conversation"
	}
	return thousands(n) + " conversations"
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func notShortMet(short, ok bool) string {
	if short {
		return "n/a (-short)"
	}
	return yesNo(ok)
}

func errorsOf(r *runResult) int {
	if r == nil {
		return 0
	}
	return r.Errors
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full"
	if r.Config.Short {
		mode = "short (-short: small counts, for CI; not the figures to quote)"
	}
	w("# Herald benchmarks\n\n")
	w("Written by `go run -tags goolm ./bench` (`make bench`), %s mode, on %s; the run took %s.\n\n",
		mode, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Round(time.Second))
	w("Machine: %s, %d cores (GOMAXPROCS %d), %s/%s, %s; open files limit %s; load average %s at the start, %s at the end.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), noFileLimit(), r.LoadStart, r.LoadEnd)
	w("Everything runs on loopback on this one machine: the simulator and the clients (the load generator) share the cores with the gateway under test, and the machine is shared with other work, so figures are noisy, tails most of all. Benchmarks are never timed assertions: CI runs the short mode only to keep the command working.\n\n")

	w("## Summary\n\n| measure | figure | target | met? |\n|---|---|---|---|\n")
	for _, rw := range r.summary() {
		w("| %s | %s | %s | %s |\n", rw.measure, rw.figure, rw.target, rw.met)
	}
	w("\n![added latency](latency.svg)\n\n")
	if r.ChartNote != "" {
		w("%s\n\n", r.ChartNote)
	}

	w("## How the figures are measured\n\n")
	w("- **Upstream times.** The Hermes API simulator (`internal/sim`) runs in the bench process behind a tap: a wrapper of its `http.ResponseWriter` that reads what it writes and stamps, just before each flush to the socket, the first content chunk and the `[DONE]` marker of every stream (matched to its conversation by the `X-Hermes-Chat-Id` header Herald sends). It also keeps the text sent, to compare with the text shown.\n")
	w("- **Direct path.** A client posts to the simulator and reads the stream with Herald's own SSE reader and `encoding/json`, noting when the first content and `[DONE]` arrive.\n")
	w("- **Herald path.** The gateway runs as a separate process (this command started again as the gateway: the same packages `herald run` wires — configuration defaults, the SQLite store, the web chat, the Hermes proxy backend), so that its CPU time (getrusage), RSS, Go heap (runtime/metrics) and file descriptors are its own. A client drives it through the web chat's real HTTP API, one simulated page per conversation with connections of its own as a browser tab: it opens `GET /api/events` for the conversation, reads `GET /api/history` on a second connection (kept alive for its posts), posts `POST /api/messages`, and notes when the first `message` event with text and the final text (the first text not ending in the streaming cursor) arrive. A stream Herald cuts off because the client fell behind is reopened from the last cursor, as the page does (counted as reconnects, not errors).\n")
	w("- **Added latency** = the Herald path's time from the upstream's flush to the text at the client, less the median of the same time on the direct path (so the loopback and the client's own parsing cancel out). p99 is the Herald path's p99 less the direct median. Where the load generator alone saturates the machine (the direct path's own figures show it), the difference stops meaning much: at 5,000 the direct clients, which parse every token, load the machine more than the web chat clients, which see one edit in five tokens, and the difference can come out negative.\n")
	w("- **Pacing.** The web chat has no rate limit, so no budget paces it (see `platform.Caps.Budgets`). *Pacing off*: `streaming.edit_interval` 1 ns and `buffer_threshold` 1: every delta becomes an edit at once. *Default pacing*: the configuration defaults (0.8 s, 24 characters of new text). The first text goes out at once either way (it waits only for 4 visible characters), and so does the final text: the streaming interval spaces intermediate edits only.\n")
	w("- **Errors** are: failed posts or event streams, turns that did not end `delivered` in the gateway's metrics, upstream requests missing or repeated, and answers that never became final. **Dropped text** is a final text that differs from what the simulator sent.\n")
	w("- **CPU per relayed token** is the gateway process's user+system CPU time from the first post until every turn is journalled as settled, divided by the content tokens the simulator sent; it includes each turn's fixed work (journal, session, transcript).\n")
	w("- **Memory.** The gateway answers `/bench/stats?gc=1` after `debug.FreeOSMemory()` (a full collection; freed pages returned): Go heap is `/gc/heap/live:bytes`, RSS is `VmRSS`. *Per active stream*: (all answers streaming) − (the same pages connected and idle), over the number of streams; the page connections' own cost is shown apart. *Per idle session*: after a warm-up of 50 turns, N more conversations of one short turn each, then nothing; (after) − (after warm-up), over N.\n")
	w("- **Start-up**: the real binary, built as `make build` builds it, started as `herald run` with the web chat on a free loopback port and `GATEWAY_PROXY_URL` at a simulator; the time from `exec` to the first `/readyz` 200 (polled every 0.2 ms).\n")
	w("- **SSE parsing**: each stream decoded again and again by `internal/sse` (`Reader.Next`, as the gateway reads agent streams) and by openai-go's `ssestream` decoder in alternating rounds, each side checksumming every event's data (CRC-32) so that both touch all of it and must agree, timed by the process's CPU time (so other work on the machine disturbs it less); the median round is kept; allocations from `runtime.MemStats`. Two streams: the one `internal/sse`'s own benchmark uses (the target's reference) and a recorded simulator answer.\n\n")

	if rl := r.Relay; rl != nil {
		w("## 1. Relay overhead\n\n")
		w("%d turns per path, one at a time; each answer %d tokens at %.0f tokens/s after %s of thinking.\n\n",
			r.Config.RelaySamples, rl.Shape.Tokens, rl.Shape.TPS, rl.Shape.FirstDelay)
		w("| path | turns | upstream first content → first text p50 / p99 | upstream last byte → final text p50 / p99 | message → request upstream p50 / p99 | errors | dropped |\n|---|---|---|---|---|---|---|\n")
		for _, x := range []struct {
			name string
			run  *runResult
		}{{"direct", rl.Direct}, {"Herald, pacing off", rl.Zero}, {"Herald, default pacing", rl.Default}} {
			if x.run == nil {
				continue
			}
			w("| %s | %d | %s | %s | %s | %d | %d |\n", x.name, len(x.run.First), pp(x.run.First), pp(x.run.Final), pp(x.run.Pre), x.run.Errors, x.run.Dropped)
		}
		w("\n")
		stageTable(w, []labelled{{"pacing off", rl.Zero}, {"default pacing", rl.Default}})
	}
	if r.RelayErr != nil {
		w("Relay overhead failed: %s\n\n", errText(r.RelayErr))
	}

	if len(r.Scale) > 0 {
		w("## 2. Concurrency\n\n")
		w("Each conversation: one answer of %d tokens at %.0f tokens/s (%s of thinking first); the messages are posted spread over %s, so all answers stream at the same time; default pacing. Every web chat page is connected before the first message.\n\n",
			r.Config.ScaleShape.Tokens, r.Config.ScaleShape.TPS, r.Config.ScaleShape.FirstDelay, r.Config.Ramp)
		w("| conversations | path | first text p50 / p99 | final text p50 / p99 | added to first text p50 / p99 | added to final text p50 / p99 | message → request upstream p50 / p99 | CPU per token | errors | dropped | reconnects | wall |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, lv := range r.Scale {
			if lv.Direct != nil {
				w("| %d | direct | %s | %s | | | | | %d | %d | | %s |\n", lv.N, pp(lv.Direct.First), pp(lv.Direct.Final), lv.Direct.Errors, lv.Direct.Dropped, lv.Direct.Wall.Round(time.Millisecond))
			}
			if lv.Herald != nil && lv.Direct != nil {
				a := addedOf(lv.Direct, lv.Herald)
				w("| %d | Herald | %s | %s | %s / %s | %s / %s | %s | %s | %d | %d | %d | %s |\n", lv.N,
					pp(lv.Herald.First), pp(lv.Herald.Final), ms(a.FirstP50), ms(a.FirstP99), ms(a.FinalP50), ms(a.FinalP99),
					pp(lv.Herald.Pre), perToken(lv.Herald), lv.Herald.Errors, lv.Herald.Dropped, lv.Herald.Reconnects, lv.Herald.Wall.Round(time.Millisecond))
			}
		}
		w("\n")
		var ls []labelled
		for _, lv := range r.Scale {
			ls = append(ls, labelled{fmt.Sprint(lv.N), lv.Herald})
		}
		stageTable(w, ls)
		w("Where the time goes, through Herald: how busy the whole machine was (every core, any process), the CPU of the gateway and of the bench process (simulator and clients) over the run, how long the gateway's goroutines waited for a CPU once runnable, and its SQLite writer (one connection; each write timed in the gateway, queueing for the connection included; the slowest kind of write):\n\n")
		w("| conversations | machine busy | gateway CPU | bench CPU | gateway GC CPU | goroutine run-queue wait p50 / p99 | store writes | write p50 / p99 / max | most writes waiting | open files at full load | edits |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, lv := range r.Scale {
			h := lv.Herald
			if h == nil {
				continue
			}
			n, p50, p99, mx := writeSummary(h.After.Writes)
			w("| %d | %.0f%% | %s | %s | %s | %s / %s | %d | %s / %s / %s | %d | %d | %.0f |\n", lv.N, 100*h.MachineBusy,
				h.CPU.Round(time.Millisecond), h.DriverCPU.Round(time.Millisecond), (h.After.GCCPU - h.Before.GCCPU).Round(time.Millisecond),
				ms(h.After.SchedP50), ms(h.After.SchedP99), n, ms(p50), ms(p99), ms(mx), h.After.MaxQueue, lv.PeakFDs, h.After.Edits-h.Before.Edits)
		}
		w("\n")
		for _, lv := range r.Scale {
			for _, run := range []*runResult{lv.Direct, lv.Herald} {
				if run == nil {
					continue
				}
				for _, s := range append(run.ErrSamples, run.DropSamples...) {
					w("- %d, %s: %s\n", lv.N, run.Path, s)
				}
			}
		}
		w("\n")
	}
	if r.ScaleErr != nil {
		w("Concurrency failed: %s\n\n", errText(r.ScaleErr))
	}

	if m := r.Memory; m != nil {
		w("## 3. Memory\n\n| state | gateway RSS | Go heap (live) | goroutine stacks | Go runtime total | goroutines | open files |\n|---|---|---|---|---|---|---|\n")
		for _, x := range []struct {
			name string
			st   childStats
		}{
			{"started, nothing connected", m.ActiveBase},
			{fmt.Sprintf("%d web chat pages connected, idle", m.Active), m.Pages},
			{fmt.Sprintf("%d answers streaming (%d already final)", m.Active, m.FinalsAt), m.Streaming},
			{"after a warm-up of 50 turns", m.IdleBase},
			{fmt.Sprintf("%d more sessions, idle", m.Idle), m.IdleAfter},
		} {
			if x.st.RSS == 0 {
				continue
			}
			w("| %s | %s | %s | %s | %s | %d | %d |\n", x.name, mb(float64(x.st.RSS)), mb(float64(x.st.HeapLive)), mb(float64(x.st.Stacks)), mb(float64(x.st.GoTotal)), x.st.Goroutines, x.st.FDs)
		}
		if m.Streaming.RSS > 0 && m.Pages.RSS > 0 {
			n := float64(m.Active)
			w("\nPer active stream: %s of RSS, of which %s live heap and %s goroutine stacks (%.1f goroutines per stream); the rest is heap beyond the live objects: what 1,000 streams allocate between collections, and free spans.\n",
				kb(float64(m.Streaming.RSS-m.Pages.RSS)/n), kb(float64(int64(m.Streaming.HeapLive)-int64(m.Pages.HeapLive))/n),
				kb(float64(int64(m.Streaming.Stacks)-int64(m.Pages.Stacks))/n), float64(m.Streaming.Goroutines-m.Pages.Goroutines)/n)
		}
		if len(m.Streaming.Classes) > 0 && len(m.Pages.Classes) > 0 {
			n := float64(m.Active)
			var names []string
			for k := range m.Streaming.Classes {
				if k != "total" {
					names = append(names, k)
				}
			}
			sort.Strings(names)
			w("\nWhat the Go runtime holds per active stream, by its memory classes (streaming less pages connected; `runtime/metrics` /memory/classes/, after a forced collection; *released* is not resident):\n\n| class | per stream |\n|---|---|\n")
			for _, k := range names {
				d := float64(int64(m.Streaming.Classes[k])-int64(m.Pages.Classes[k])) / n
				if abs(d) >= 50 {
					w("| %s | %s |\n", k, kb(d))
				}
			}
		}
		if m.Pages.RSS > 0 && m.ActiveBase.RSS > 0 {
			n := float64(m.Active)
			w("\nA connected web chat page (its event stream and its kept-alive API connection) costs %s of heap and %s of RSS by itself; it is left out of the per-stream figure, since other platforms hold no connection per chat.\n",
				kb(float64(int64(m.Pages.HeapLive)-int64(m.ActiveBase.HeapLive))/n), kb(float64(m.Pages.RSS-m.ActiveBase.RSS)/n))
		}
		if m.IdleRun != nil && m.Idle > 0 {
			w("\nThe store file (state.db with its WAL) after the idle sessions: %s, %s per session (on disk, not in memory). Idle run: %d errors, %d dropped.\n",
				mb(float64(m.DiskBytes)), kb(float64(m.DiskBytes)/float64(m.Idle+50)), m.IdleRun.Errors, m.IdleRun.Dropped)
		}
		w("\n")
	}
	if r.MemoryErr != nil {
		w("Memory failed: %s\n\n", errText(r.MemoryErr))
	}

	if s := r.Startup; s != nil && s.Err == nil {
		w("## 4. Start-up\n\n%s, %s. Start to `/readyz` 200: fresh HERALD_HOME p50 %s, max %s; restart on existing state p50 %s, max %s (%d runs each).\n\n",
			s.Binary, mb(float64(s.Size)), ms(s.Fresh.p50()), ms(s.Fresh.max()), ms(s.Restart.p50()), ms(s.Restart.max()), len(s.Fresh))
		if s.BuildCmd != "" {
			w("Built with `%s`.\n\n", s.BuildCmd)
		}
	}

	if s := r.SSE; s != nil {
		w("## 5. SSE parsing\n\n%d alternating rounds of %s of CPU time per decoder and stream; the median round of each.\n\n", s.Rounds, s.Round)
		w("| stream | decoder | events per CPU-second | MB per CPU-second | allocations per event | bytes allocated per event |\n|---|---|---|---|---|---|\n")
		for _, st := range s.Streams {
			name := fmt.Sprintf("%s: %d bytes, %d events", st.Name, st.Bytes, st.Events)
			w("| %s | Herald `internal/sse` | %.0f | %.0f | %.2f | %.0f |\n", name, st.Herald.EventsPerSec, st.Herald.MBPerSec, st.Herald.AllocsPerEvent, st.Herald.BytesPerEvent)
			w("| | openai-go `ssestream` | %.0f | %.0f | %.2f | %.0f |\n", st.OpenAI.EventsPerSec, st.OpenAI.MBPerSec, st.OpenAI.AllocsPerEvent, st.OpenAI.BytesPerEvent)
		}
		w("\n")
	}

	if p := r.Pacing; p != nil {
		w("## 6. Pacing by budget\n\n")
		w("Answers of %v at %d tokens/s, relayed to platforms that keep their rate limits: Telegram's fake Bot API (`telegramtest`) with the flood limits of Telegram's Bot API FAQ on (a chat 1/s in bursts of 3, a group 20/min, the bot 30/s), %d answers in private chats, %d at a time; and Dendrite behind Synapse's default `rc_message` for the bot's account (0.2 events/s, bursts of 10; messages, edits, reactions and redactions all count), %d answers one at a time, reactions on. The fakes refuse and count every call over a limit. Times are taken where the platform receives the calls, from the moment the simulator flushed the agent's first content and its `[DONE]`.\n\n",
			r.Config.PacingLengths, pacingTPS, r.Config.PacingTelegram, r.Config.PacingParallel, r.Config.PacingMatrix)
		w("| platform | answer length | answers | first text after the agent p50 / p99 / max | final text after the agent's end p50 / p99 / max | Matrix budget when the agent began (tokens) p50 |\n|---|---|---|---|---|---|\n")
		for _, x := range []struct {
			name    string
			answers []pacedAnswer
		}{{"Telegram", p.Telegram}, {"Matrix", p.Matrix}} {
			groups := byLength(x.answers, r.Config.PacingLengths)
			for _, l := range r.Config.PacingLengths {
				g := groups[l]
				if len(g) == 0 {
					continue
				}
				first, final := delays(g)
				tokens := dash
				if x.name == "Matrix" {
					var ts []float64
					for _, a := range g {
						ts = append(ts, a.Tokens)
					}
					sort.Float64s(ts)
					tokens = fmt.Sprintf("%.1f", ts[len(ts)/2])
				}
				w("| %s | %v | %d | %s / %s / %s | %s / %s / %s | %s |\n", x.name, l, len(g),
					ms(first.p50()), ms(first.p99()), ms(first.max()), ms(final.p50()), ms(final.p99()), ms(final.max()), tokens)
			}
		}
		w("\nHow the delay grows: Matrix's budget refills one event every 5 s for the whole account, so answers one after another spend the burst of 10. An answer's intermediate edits always leave two tokens, one for its final text and one for the next answer's first text, and markers (👀, ✅) take only what text can spare; so the final text never waits, and a first text waits only when answers come faster than the budget refills.\n\n")
	}

	if h := r.Hardening; h != nil {
		h.markdown(w, r.Config)
	}

	var runs []*runResult
	if r.Relay != nil {
		runs = append(runs, r.Relay.Zero, r.Relay.Default)
	}

	for _, lv := range r.Scale {
		runs = append(runs, lv.Herald)
	}
	if r.Memory != nil {
		runs = append(runs, r.Memory.ActiveRun, r.Memory.IdleRun)
	}
	if warn := warnings(runs...); warn != "" {
		w("## What the gateway logged (warnings and errors)\n\n```\n%s```\n", truncateLines(warn, 40))
	}
	return b.String()
}

type labelled struct {
	label string
	run   *runResult
}

// stageTable splits the Herald path's latencies at the gateway's marks.
func stageTable(w func(string, ...any), runs []labelled) {
	w("The Herald path split at marks inside the gateway (its backend's first parsed delta and return, its first and final calls to the web chat adapter; p50 / p99):\n\n| run |")
	for _, n := range stageNames {
		w(" %s |", n)
	}
	w("\n|---|")
	for range stageNames {
		w("---|")
	}
	w("\n")
	for _, l := range runs {
		if l.run == nil {
			continue
		}
		w("| %s |", l.label)
		for _, d := range l.run.Stages {
			w(" %s |", pp(d))
		}
		w("\n")
	}
	w("\n")
}

func writeSummary(ws map[string]writeLatency) (n int, p50, p99, mx time.Duration) {
	// The slowest kind's figures: the writer is one queue for all of them.
	keys := make([]string, 0, len(ws))
	for k := range ws {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := ws[k]
		n += w.N
		p50, p99, mx = max(p50, w.P50), max(p99, w.P99), max(mx, w.Max)
	}
	return n, p50, p99, mx
}

func truncateLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("… (%d more lines)\n", len(lines)-n)
}
