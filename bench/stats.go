package main

import (
	"fmt"
	"slices"
	"time"
)

// dist is a sorted sample of durations.
type dist []time.Duration

func newDist(ds []time.Duration) dist {
	d := slices.Clone(ds)
	slices.Sort(d)
	return d
}

// pct returns the p-th percentile (0 < p <= 100) by the nearest-rank
// method, or 0 for an empty sample.
func (d dist) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	rank := int(float64(len(d))*p/100+0.999999) - 1
	return d[min(max(rank, 0), len(d)-1)]
}

func (d dist) p50() time.Duration { return d.pct(50) }
func (d dist) p99() time.Duration { return d.pct(99) }

func (d dist) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch a := abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case a >= 10:
		return fmt.Sprintf("%.1f ms", v)
	case a >= 1:
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.3f ms", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// kb formats a byte count in KB (1,000 bytes, as the targets are written).
func kb(b float64) string {
	switch a := abs(b); {
	case a >= 100_000:
		return fmt.Sprintf("%.0f KB", b/1000)
	case a >= 10_000:
		return fmt.Sprintf("%.1f KB", b/1000)
	default:
		return fmt.Sprintf("%.2f KB", b/1000)
	}
}

// mb formats a byte count in MB (10^6 bytes).
func mb(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }
