package discordtest

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Rate limits as Discord's REST API enforces them
// (discord.com/developers/docs/topics/rate-limits): each route and
// top-level resource has a bucket, a fixed window that starts with the
// first call after a reset; every answer carries the bucket's state in
// X-RateLimit-* headers; a call over the limit gets 429 with retry_after.
// The global limit counts all of a bot's calls but interactions'.

// bucket is one route's bucket for one top-level resource.
type bucket struct {
	window   Window
	resetAt  time.Time // end of the current window; zero before the first call
	count    int       // calls in the current window
	blocked  time.Time // penalised until
	recorded time.Time // Until of the last penalty recorded for it
}

// rateFault makes a chosen call get 429 (see RateLimitNth).
type rateFault struct {
	channelID, route string
	nth, seen        int
	retryAfter       time.Duration
}

// rateLimits is the state of every bucket.
type rateLimits struct {
	buckets   map[string]*bucket // by route and major resource
	global    bucket
	faults    []*rateFault
	penalties []Penalty
}

func (l *rateLimits) init() { l.buckets = map[string]*bucket{} }

// verdict is what the limits say of one call.
type verdict struct {
	refused    bool
	global     bool
	violation  bool
	retryAfter time.Duration
	headers    http.Header
}

// RateLimitNth answers the nth call of a route to a channel (counting
// from now, 1 being the next; an empty route counts every route) with 429
// and retryAfter, and penalises that route's bucket until then: every
// call to it before then gets 429 too, and is a violation. It works with
// or without Options.Limits.
func (s *Server) RateLimitNth(channelID, route string, nth int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.faults = append(s.limits.faults, &rateFault{channelID: channelID, route: route, nth: max(nth, 1), retryAfter: retryAfter})
}

// windowFor is the window of a route, or the zero window (no limit).
func (s *Server) windowFor(route string) Window {
	if s.opts.Limits == nil {
		return Window{}
	}
	if w, ok := s.opts.Limits.Routes[route]; ok {
		return w
	}
	return s.opts.Limits.Route
}

// limitLocked applies the rate limits to a call of route on major (its
// top-level resource) at now. s.mu is held.
func (s *Server) limitLocked(route, major, channelID string, global bool, now time.Time) verdict {
	l := &s.limits
	key := route + " " + major
	b := l.buckets[key]
	if b == nil {
		b = &bucket{window: s.windowFor(route)}
		l.buckets[key] = b
	}
	// A forced 429.
	for i, f := range l.faults {
		if f.channelID != channelID || (f.route != "" && f.route != route) {
			continue
		}
		if f.seen++; f.seen < f.nth {
			continue
		}
		l.faults = slices.Delete(l.faults, i, i+1)
		until := now.Add(f.retryAfter)
		if until.After(b.blocked) {
			b.blocked = until
		}
		s.penaltyLocked(b, Penalty{ChannelID: channelID, Route: route, From: now, Until: until})
		return verdict{refused: true, retryAfter: f.retryAfter, headers: bucketHeaders(route, b, now)}
	}
	// The global limit.
	if lim := s.opts.Limits; global && lim != nil && lim.Global.Limit > 0 {
		g := &l.global
		g.window = lim.Global
		if g.resetAt.IsZero() || !now.Before(g.resetAt) {
			g.resetAt, g.count = now.Add(g.window.Per), 0
		}
		if g.count >= g.window.Limit {
			wait := g.resetAt.Sub(now)
			if g.recorded != g.resetAt {
				g.recorded = g.resetAt
				l.penalties = append(l.penalties, Penalty{ChannelID: channelID, Route: route, From: now, Until: g.resetAt, Global: true})
			}
			h := http.Header{}
			h.Set("X-RateLimit-Global", "true")
			return verdict{refused: true, global: true, violation: true, retryAfter: wait, headers: h}
		}
		g.count++
	}
	// A penalty.
	if now.Before(b.blocked) {
		return verdict{refused: true, violation: true, retryAfter: b.blocked.Sub(now), headers: bucketHeaders(route, b, now)}
	}
	if b.window.Limit <= 0 {
		if s.opts.Limits == nil {
			return verdict{}
		}
		return verdict{headers: bucketHeaders(route, b, now)}
	}
	if b.resetAt.IsZero() || !now.Before(b.resetAt) {
		b.resetAt, b.count = now.Add(b.window.Per), 0
	}
	if b.count >= b.window.Limit {
		s.penaltyLocked(b, Penalty{ChannelID: channelID, Route: route, From: now, Until: b.resetAt})
		return verdict{refused: true, violation: true, retryAfter: b.resetAt.Sub(now), headers: bucketHeaders(route, b, now)}
	}
	b.count++
	return verdict{headers: bucketHeaders(route, b, now)}
}

// penaltyLocked records a penalty, once for each time a bucket is closed.
func (s *Server) penaltyLocked(b *bucket, p Penalty) {
	if b.recorded.Equal(p.Until) {
		return
	}
	b.recorded = p.Until
	s.limits.penalties = append(s.limits.penalties, p)
}

// bucketHeaders are the X-RateLimit-* headers of a bucket at now.
func bucketHeaders(route string, b *bucket, now time.Time) http.Header {
	limit, remaining, reset := b.window.Limit, b.window.Limit-b.count, b.resetAt
	if now.Before(b.blocked) {
		remaining = 0
		if b.blocked.After(reset) {
			reset = b.blocked
		}
	}
	if limit <= 0 { // a route without a limit, penalised
		limit = 1
	}
	if reset.Before(now) {
		reset = now
	}
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
	h.Set("X-RateLimit-Reset", epochSeconds(reset))
	h.Set("X-RateLimit-Reset-After", formatSeconds(seconds(reset.Sub(now))))
	h.Set("X-RateLimit-Bucket", bucketHash(route))
	return h
}

// bucketHash is a route's X-RateLimit-Bucket: stable, opaque, per route.
func bucketHash(route string) string {
	h := fnv.New64a()
	h.Write([]byte(route))
	return fmt.Sprintf("%016x", h.Sum64())
}

// seconds is a wait in seconds with the millisecond precision Discord
// gives ("Can have decimals to match previous millisecond ratelimit
// precision", docs: topics/rate-limits#header-format), rounded up, and
// one millisecond more when a client that splits the number into whole
// seconds and a fraction and truncates the fraction's milliseconds (as
// discordgo does) would come out below the wait.
func seconds(d time.Duration) float64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	ms = max(ms, 0)
	for {
		f := float64(ms) / 1000
		whole := float64(int64(f))
		frac := f - whole
		if time.Duration(whole)*time.Second+time.Duration(frac*1000)*time.Millisecond >= time.Duration(ms)*time.Millisecond {
			return f
		}
		ms++
	}
}

func formatSeconds(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// epochSeconds is a time as X-RateLimit-Reset gives it: seconds since the
// Unix epoch, with milliseconds, rounded up.
func epochSeconds(t time.Time) string {
	ms := (t.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// retryAfterHeader is Retry-After in whole seconds, rounded up.
func retryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
