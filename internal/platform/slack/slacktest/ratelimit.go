package slacktest

import (
	"slices"
	"strconv"
	"time"
)

// Rate limits as the Web API enforces them
// (docs.slack.dev/apis/web-api/rate-limits): each method has a tier, a
// number of calls per minute per workspace and app that tolerates bursts,
// and chat.postMessage its own limit per channel. A call over a limit gets
// HTTP 429 with a Retry-After header in whole seconds and the body
// {"ok":false,"error":"ratelimited"}. Slack publishes no headers telling
// how much is left, so a client cannot see a limit coming: the first 429 is
// no fault, but a call before its Retry-After is over is one.

// Rate is a method's limit: Limit calls per Per on average, Burst (Limit
// if 0) at once, as a token bucket that refills continuously.
type Rate struct {
	Limit int
	Per   time.Duration
	Burst int
	// PerChannel: each channel has its own bucket; otherwise the whole
	// workspace shares one.
	PerChannel bool
}

// Limits are the rate limits a Server enforces, by method; a method not
// listed has none.
type Limits struct {
	Methods map[string]Rate
}

// The tiers (docs.slack.dev/apis/web-api/rate-limits, "Rate limit tiers"):
// "Tier 2: 20+ per minute", "Tier 3: 50+ per minute", "Tier 4: 100+ per
// minute". The fake takes the numbers as they are, the "+" aside.
var (
	tier2 = Rate{Limit: 20, Per: time.Minute}
	tier3 = Rate{Limit: 50, Per: time.Minute}
	tier4 = Rate{Limit: 100, Per: time.Minute}
)

// DocumentedLimits are Slack's limits as far as it states them.
var DocumentedLimits = Limits{Methods: map[string]Rate{
	// "1 message per second per channel", with "short bursts" allowed
	// (docs.slack.dev/apis/web-api/rate-limits, "Posting messages"). Slack
	// does not say how long a burst; 3 is the fake's choice.
	"chat.postMessage": {Limit: 1, Per: time.Second, Burst: 3, PerChannel: true},
	// Tier 3 (docs.slack.dev/reference/methods/chat.update, "Rate limits").
	"chat.update": tier3,
	// Tier 3 (docs.slack.dev/reference/methods/chat.delete, "Rate limits").
	"chat.delete": tier3,
	// Not stated for chat.startStream; the Tier 4 of chat.appendStream.
	"chat.startStream": tier4,
	// Tier 4 (docs.slack.dev/reference/methods/chat.appendStream, "Tier 4:
	// 100+ per minute"; "rate_limits": "t4" in
	// github.com/slack-ruby/slack-api-ref).
	"chat.appendStream": tier4,
	// Tier 2 (api.slack.com/methods/chat.stopStream, "Rate limits").
	"chat.stopStream": tier2,
	// "Special rate limits apply", without numbers
	// (docs.slack.dev/reference/methods/assistant.threads.setStatus);
	// Tier 4 here.
	"assistant.threads.setStatus": tier4,
	// apps.connections.open is Tier 1 (api.slack.com/methods/
	// apps.connections.open), but bursts are allowed and a client opens
	// a connection rarely; the fake does not limit it, so that tests of
	// reconnections need not wait a minute.
}}

// bucket is one method's (and channel's) token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// rateFault makes a chosen call get 429 (see RateLimitNth).
type rateFault struct {
	method, channel string
	nth, seen       int
	retryAfter      time.Duration
}

// rateState is the state of every bucket, fault and penalty.
type rateState struct {
	buckets   map[string]*bucket
	faults    []*rateFault
	penalties []Penalty
}

func (l *rateState) init() { l.buckets = map[string]*bucket{} }

// verdict is what the limits say of one call.
type verdict struct {
	refused    bool
	violation  bool
	retryAfter time.Duration
}

// RateLimitNth answers the nth call of a method (counting from now, 1
// being the next; an empty channel counts calls in every channel) with 429
// and retryAfter (in whole seconds, at least 1, as Retry-After gives it),
// and penalises the method until then, in the call's channel for a method
// limited per channel: every call to it before then gets 429 too, and is a
// violation. It works with or without Options.Limits.
func (s *Server) RateLimitNth(method, channel string, nth int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.faults = append(s.limits.faults, &rateFault{method: method, channel: channel,
		nth: max(nth, 1), retryAfter: wholeSeconds(retryAfter)})
}

// rateFor is the limit of a method, and whether it has one.
func (s *Server) rateFor(method string) (Rate, bool) {
	if s.opts.Limits == nil {
		return Rate{}, false
	}
	r, ok := s.opts.Limits.Methods[method]
	return r, ok && r.Limit > 0 && r.Per > 0
}

// perChannel tells whether a method's limit is per channel: as the
// server's limits say, or else as Slack's do.
func (s *Server) perChannel(method string) bool {
	if r, ok := s.rateFor(method); ok {
		return r.PerChannel
	}
	return DocumentedLimits.Methods[method].PerChannel
}

// limitLocked applies the rate limits to a call of a method in a channel
// at now.
func (s *Server) limitLocked(method, channel string, now time.Time) verdict {
	l := &s.limits
	// A running penalty: the client did not wait.
	for _, p := range l.penalties {
		if p.Method == method && (p.Channel == "" || p.Channel == channel) && now.Before(p.Until) {
			return verdict{refused: true, violation: true, retryAfter: wholeSeconds(p.Until.Sub(now))}
		}
	}
	scope := ""
	if s.perChannel(method) {
		scope = channel
	}
	// A forced 429.
	for i, f := range l.faults {
		if f.method != method || (f.channel != "" && f.channel != channel) {
			continue
		}
		if f.seen++; f.seen < f.nth {
			continue
		}
		l.faults = slices.Delete(l.faults, i, i+1)
		l.penalties = append(l.penalties, Penalty{Method: method, Channel: scope, At: now, Until: now.Add(f.retryAfter)})
		return verdict{refused: true, retryAfter: f.retryAfter}
	}
	r, ok := s.rateFor(method)
	if !ok {
		return verdict{}
	}
	key := method
	if r.PerChannel {
		key += " " + channel
	}
	burst := float64(r.Burst)
	if burst <= 0 {
		burst = float64(r.Limit)
	}
	per := r.Per.Seconds() / float64(r.Limit) // seconds a token takes
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()/per)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return verdict{}
	}
	wait := wholeSeconds(time.Duration((1 - b.tokens) * per * float64(time.Second)))
	l.penalties = append(l.penalties, Penalty{Method: method, Channel: scope, At: now, Until: now.Add(wait)})
	return verdict{refused: true, retryAfter: wait}
}

// wholeSeconds rounds a wait up to whole seconds, at least one, as
// Retry-After gives it ("the number of seconds until you can retry",
// docs.slack.dev/apis/web-api/rate-limits).
func wholeSeconds(d time.Duration) time.Duration {
	d = (d + time.Second - 1) / time.Second * time.Second
	return max(d, time.Second)
}

// retryAfterHeader is Retry-After's value for a wait.
func retryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64(wholeSeconds(d)/time.Second), 10)
}
