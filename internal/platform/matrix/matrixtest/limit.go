package matrixtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Limit is a rate limit of Synapse's kind (its rc_message): a token bucket
// per user that every event the user sends draws on (messages, edits,
// reactions: PUT .../send/..., and redactions), but not typing notices or
// state. An event that finds the bucket empty is refused with 429
// M_LIMIT_EXCEEDED and the retry_after_ms that lets it through, and is
// recorded as a violation, which a client that paces itself never makes.
type Limit struct {
	// Users are the user ids held to the limit (@name:localhost).
	Users []string
	platform.Bucket
}

// Event is an event a limited user sent, or tried to.
type Event struct {
	User    string
	Kind    string // "send" (with its event type) or "redact"
	Type    string // the event type, for a send
	Room    string
	At      time.Time
	Level   float64 // tokens in the user's bucket when it came
	Refused bool    // over the limit
}

// limiter is the proxy's state.
type limiter struct {
	limit Limit

	mu      sync.Mutex
	users   map[string]string           // access token → user id
	buckets map[string]*platform.Tokens // user id → bucket
	events  []Event
}

// eventPath matches the client-server API's event sends and redactions.
var eventPath = regexp.MustCompile(`^/_matrix/client/(?:v3|r0)/rooms/([^/]+)/(send/([^/]+)|redact/[^/]+)/[^/]+$`)

// limit returns the proxy that holds the limit in front of Dendrite.
func (s *Server) limit(l Limit) http.Handler {
	target, _ := url.Parse(s.url)
	lim := &limiter{limit: l, users: map[string]string{}, buckets: map[string]*platform.Tokens{}}
	s.limiter = lim
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = lim.learnTokens
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a client going away (a sync cut short) is no news
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, refused := lim.admit(r); refused {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":%d}`, wait.Milliseconds())
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// learnTokens notes whose access token a login or registration gave.
func (l *limiter) learnTokens(resp *http.Response) error {
	path := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK || !(strings.HasSuffix(path, "/login") || strings.HasSuffix(path, "/register")) {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var who struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &who) == nil && who.AccessToken != "" {
		l.mu.Lock()
		l.users[who.AccessToken] = who.UserID
		l.mu.Unlock()
	}
	return nil
}

// admit counts an event of a limited user against its bucket; it reports
// an event over the limit, and how long until it would pass.
func (l *limiter) admit(r *http.Request) (time.Duration, bool) {
	m := eventPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPut && r.Method != http.MethodPost {
		return 0, false
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	user := l.users[token]
	if !slices.Contains(l.limit.Users, user) {
		return 0, false
	}
	b := l.buckets[user]
	if b == nil {
		b = l.limit.Full(now)
		l.buckets[user] = b
	}
	room, _ := url.PathUnescape(m[1])
	ev := Event{User: user, Kind: "redact", Room: room, At: now, Level: b.Level(now)}
	if m[3] != "" {
		ev.Kind, ev.Type = "send", m[3]
	}
	wait := b.When(now, 1).Sub(now)
	if ev.Refused = wait > 0; !ev.Refused {
		b.Take(now, 1)
	}
	l.events = append(l.events, ev)
	return time.Duration(math.Ceil(float64(wait)/float64(time.Millisecond))) * time.Millisecond, ev.Refused
}

// Events are the events the limited users sent or tried to, in order.
func (s *Server) Events() []Event {
	if s.limiter == nil {
		return nil
	}
	s.limiter.mu.Lock()
	defer s.limiter.mu.Unlock()
	return slices.Clone(s.limiter.events)
}

// Violations are the events refused for being over the limit.
func (s *Server) Violations() []Event {
	var out []Event
	for _, e := range s.Events() {
		if e.Refused {
			out = append(out, e)
		}
	}
	return out
}
