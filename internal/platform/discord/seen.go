package discord

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Discord's ids are snowflakes: the milliseconds since Discord's epoch,
// shifted left by 22 bits (discord.com/developers/docs/reference#snowflakes).
const (
	discordEpoch   = 1420070400000 // ms, the first second of 2015
	snowflakeShift = 22
)

// snowflakeAt is the smallest id made at t, for "after" in a read.
func snowflakeAt(t time.Time) string {
	ms := max(t.UnixMilli()-discordEpoch, 0)
	return strconv.FormatUint(uint64(ms)<<snowflakeShift, 10)
}

// snowflakeTime is when an id was made; the zero time for what is not one.
func snowflakeTime(id string) time.Time {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(n>>snowflakeShift) + discordEpoch)
}

// later is the later of two ids.
func later(a, b string) string {
	if compareSnowflakes(a, b) >= 0 {
		return a
	}
	return b
}

// compareSnowflakes orders ids as numbers.
func compareSnowflakes(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}

// Bounds of the conversations kept for the backfill.
const (
	// recentConversation is how long a conversation counts as recent: the
	// backfill reads those only, one request each.
	recentConversation = 24 * time.Hour
	// maxConversations bounds how many are kept, and read at a start.
	maxConversations = 500
)

// seen keeps the last message taken in each recent conversation (channel
// or thread), in the state store, for the backfill. While a conversation
// is being read back, its kept position moves with the messages read back
// only, in order; the newer ones the gateway dispatches meanwhile move it
// once the reading is done. A stop in the middle so reads the rest again.
type seen struct {
	state platform.StateStore // nil: memory only
	key   string
	log   *slog.Logger

	mu      sync.Mutex
	last    map[string]string // channel → message id
	pending map[string]string // channel being read back → the newest message dispatched meanwhile
}

// loadSeen reads the positions kept under key, retrying while the store
// fails; its error is ctx's.
func loadSeen(ctx context.Context, state platform.StateStore, key string, log *slog.Logger) (*seen, error) {
	s := &seen{state: state, key: key, log: log, last: map[string]string{}, pending: map[string]string{}}
	if state == nil {
		return s, nil
	}
	var delay platform.Backoff
	for {
		v, ok, err := state.State(ctx, key)
		if err == nil {
			if ok && json.Unmarshal([]byte(v), &s.last) != nil {
				log.Error("the saved Discord positions are unreadable; the backfill starts afresh", "key", key)
				s.last = map[string]string{}
			}
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait := delay.Next()
		log.Error("reading the Discord positions failed; retrying", "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// saw records a message the gateway dispatched and took, in channel.
func (s *seen) saw(ctx context.Context, channel, id string) {
	s.mu.Lock()
	if p, ok := s.pending[channel]; ok {
		if compareSnowflakes(id, p) > 0 {
			s.pending[channel] = id
		}
		s.mu.Unlock()
		return
	}
	s.advanceLocked(ctx, channel, id)
}

// readBack records a message read back and taken, in channel.
func (s *seen) readBack(ctx context.Context, channel, id string) {
	s.mu.Lock()
	s.advanceLocked(ctx, channel, id)
}

// done ends the reading back of channel: the messages dispatched meanwhile
// count as seen.
func (s *seen) done(ctx context.Context, channel string) {
	s.mu.Lock()
	p, ok := s.pending[channel]
	delete(s.pending, channel)
	if !ok || p == "" {
		s.mu.Unlock()
		return
	}
	s.advanceLocked(ctx, channel, p)
}

// advanceLocked moves channel's position to id, if later, and saves the
// positions; it unlocks s.mu. A failure to save costs a message read
// again after a restart, which the gateway drops as a duplicate.
func (s *seen) advanceLocked(ctx context.Context, channel, id string) {
	if compareSnowflakes(id, s.last[channel]) <= 0 {
		s.mu.Unlock()
		return
	}
	s.last[channel] = id
	s.prune(time.Now())
	data, _ := json.Marshal(s.last)
	s.mu.Unlock()
	if s.state == nil {
		return
	}
	if err := s.state.SetState(ctx, s.key, string(data)); err != nil && ctx.Err() == nil {
		s.log.Error("saving the Discord positions failed", "error", err)
	}
}

// prune forgets conversations that are no longer recent, and the oldest
// beyond the bound.
func (s *seen) prune(now time.Time) {
	for ch, id := range s.last {
		if now.Sub(snowflakeTime(id)) > recentConversation {
			delete(s.last, ch)
		}
	}
	for len(s.last) > maxConversations {
		var oldest string
		for ch, id := range s.last {
			if oldest == "" || compareSnowflakes(id, s.last[oldest]) < 0 {
				oldest = ch
			}
		}
		delete(s.last, oldest)
	}
}

// begin starts reading back the recent conversations, and returns them
// with their last message taken.
func (s *seen) begin(now time.Time) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	for ch := range s.last {
		if _, ok := s.pending[ch]; !ok {
			s.pending[ch] = ""
		}
	}
	return maps.Clone(s.last)
}
