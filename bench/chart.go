package main

import (
	"context"
	"fmt"
	"html"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A bar chart in SVG, written by hand: grouped bars on a logarithmic axis,
// in panels side by side, with dashed reference lines.

type chartSeries struct{ Name, Color string }

type chartGroup struct {
	Label  string
	Values []float64 // one per series; NaN for none
}

type chartLine struct {
	Value float64
	Label string
}

type chartPanel struct {
	Title  string
	Groups []chartGroup
	Lines  []chartLine
}

type barChart struct {
	Title  string
	YLabel string
	Series []chartSeries
	Panels []chartPanel
	Note   string
}

const (
	chartW      = 1100
	chartH      = 520
	plotTop     = 70
	plotBottom  = 420
	plotLeft    = 80
	plotRight   = 1020
	panelGap    = 40
	minDecade   = -2 // 0.01
	groupMargin = 0.18
)

// svg renders the chart.
func (c barChart) svg() string {
	maxV := 1.0
	for _, p := range c.Panels {
		for _, g := range p.Groups {
			for _, v := range g.Values {
				if !math.IsNaN(v) && v > maxV {
					maxV = v
				}
			}
		}
		for _, l := range p.Lines {
			maxV = math.Max(maxV, l.Value)
		}
	}
	top := int(math.Ceil(math.Log10(maxV)))
	if math.Pow(10, float64(top)) <= maxV*1.05 {
		top++
	}
	y := func(v float64) float64 {
		lv := math.Log10(math.Max(v, math.Pow(10, minDecade)))
		return plotBottom - (lv-minDecade)/float64(top-minDecade)*(plotBottom-plotTop)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="17" font-weight="bold">%s</text>`+"\n", plotLeft, esc(c.Title))

	// The logarithmic axis and its grid, across the whole plot.
	for d := minDecade; d <= top; d++ {
		v := math.Pow(10, float64(d))
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", plotLeft, yy, plotRight, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-6, yy+4, axisLabel(v))
	}
	fmt.Fprintf(&b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		(plotTop+plotBottom)/2, esc(c.YLabel))

	total := 0
	for _, p := range c.Panels {
		total += max(len(p.Groups), 1)
	}
	width := float64(plotRight-plotLeft-panelGap*(len(c.Panels)-1)) / float64(total)
	x := float64(plotLeft)
	for _, p := range c.Panels {
		pw := width * float64(max(len(p.Groups), 1))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="none" stroke="#888888"/>`+"\n",
			x, plotTop, pw, plotBottom-plotTop)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n",
			x+pw/2, plotTop-10, esc(p.Title))
		for gi, g := range p.Groups {
			gx := x + float64(gi)*width
			inner := width * (1 - 2*groupMargin)
			bw := inner / float64(max(len(c.Series), 1))
			for si, v := range g.Values {
				if math.IsNaN(v) || si >= len(c.Series) {
					continue
				}
				bx := gx + width*groupMargin + float64(si)*bw
				yy := y(v)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
					bx, yy, bw-1, plotBottom-yy, c.Series[si].Color, esc(c.Series[si].Name), esc(valueLabel(v)))
				if v < math.Pow(10, minDecade) {
					fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="9">≤</text>`+"\n", bx+bw/2, plotBottom-3)
				}
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+width/2, plotBottom+18, esc(g.Label))
		}
		for _, l := range p.Lines {
			yy := y(l.Value)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/>`+"\n",
				x, yy, x+pw, yy)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#c0392b" font-size="11">%s</text>`+"\n",
				x+pw+4, yy+4, esc(l.Label))
		}
		x += pw + panelGap
	}

	// The legend.
	lx := float64(plotLeft)
	for _, s := range c.Series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, plotBottom+38, s.Color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+17, plotBottom+48, esc(s.Name))
		lx += 17 + 7*float64(len(s.Name)) + 24
	}
	if c.Note != "" {
		for i, line := range strings.Split(c.Note, "\n") {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#555555">%s</text>`+"\n", plotLeft, plotBottom+72+14*i, esc(line))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func axisLabel(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%g s", v/1000)
	default:
		return fmt.Sprintf("%g ms", v)
	}
}

func valueLabel(v float64) string {
	return ms(time.Duration(v * float64(time.Millisecond)))
}

// toMS converts a duration to milliseconds for the chart.
func toMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencyChart draws the added latencies: measure 1 and measure 2.
func latencyChart(r *report) barChart {
	c := barChart{
		Title:  "Herald: latency added to the direct path (upstream byte → text at the web chat client)",
		YLabel: "added latency (log scale)",
		Series: []chartSeries{
			{"first text p50", "#2e86c1"},
			{"first text p99", "#85c1e9"},
			{"final text p50", "#239b56"},
			{"final text p99", "#82e0aa"},
		},
	}
	group := func(label string, direct, herald *runResult) chartGroup {
		if direct == nil || herald == nil || len(herald.First) == 0 || len(direct.First) == 0 {
			return chartGroup{Label: label, Values: []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}}
		}
		a := addedOf(direct, herald)
		return chartGroup{Label: label, Values: []float64{
			toMS(a.FirstP50), toMS(a.FirstP99), toMS(a.FinalP50), toMS(a.FinalP99),
		}}
	}
	if r.Relay != nil {
		c.Panels = append(c.Panels, chartPanel{
			Title: "1 conversation at a time",
			Groups: []chartGroup{
				group("pacing off", r.Relay.Direct, r.Relay.Zero),
				group("default pacing", r.Relay.Direct, r.Relay.Default),
			},
		})
	}
	if len(r.Scale) > 0 {
		p := chartPanel{Title: "simultaneous conversations (default pacing)"}
		for _, lv := range r.Scale {
			p.Groups = append(p.Groups, group(fmt.Sprintf("%d", lv.N), lv.Direct, lv.Herald))
		}
		p.Lines = []chartLine{{5, "p99 ≤ 5 ms"}, {1, "p50 ≤ 1 ms"}}
		c.Panels = append(c.Panels, p)
	}
	c.Note = "Added latency = the Herald path less the direct path's median, both from the moment the simulator flushed the bytes. Dashed: the first-text targets (set at 1,000).\n" +
		"Bars at the bottom edge (≤) are 0.01 ms or less, or negative. Loopback on a shared 2-core machine: the load generator runs on the same cores."
	return c
}

// writePNG renders the SVG to a PNG with headless Chromium, where there is one.
func writePNG(ctx context.Context, svgPath, pngPath string) error {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		return fmt.Errorf("no Chromium on PATH")
	}
	abs, err := filepath.Abs(svgPath)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(pngPath)
	if err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "herald-bench-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+profile, "--screenshot="+out,
		fmt.Sprintf("--window-size=%d,%d", chartW, chartH), "file://"+abs)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(out); err != nil {
		return fmt.Errorf("chromium wrote no screenshot: %w", err)
	}
	return nil
}
