package platform

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the pause between attempts of an adapter's loop that retries
// (reaching its server, saving a position): it doubles with each failure
// in a row, from one second up to Max, less up to a quarter at random so
// that loops failing together (after an outage) do not retry in step. The
// zero value's Max is a minute.
type Backoff struct {
	Max time.Duration
	d   time.Duration
}

// Next is the pause before the next attempt.
func (b *Backoff) Next() time.Duration {
	limit := b.Max
	if limit <= 0 {
		limit = time.Minute
	}
	b.d = min(max(b.d*2, time.Second), limit)
	return b.d - rand.N(b.d/4)
}

// Reset starts again from one second, after a success.
func (b *Backoff) Reset() { b.d = 0 }

// Sleep waits for d; it reports false when ctx ended first (or had ended,
// for a d of zero or less).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
