// Package sim is a simulator of the Hermes agent's OpenAI-compatible API
// server. It speaks the same HTTP protocol as the real server (health, model
// list, chat completions with SSE streaming, session continuation, tool
// progress events, optionally the runs API) but runs no agent: every answer
// is a deterministic echo that says it comes from a simulator. Herald's
// demo, tests and benchmarks use it so they need neither a model nor a
// network, and its fault options let tests reproduce what a real server does
// when things go wrong.
package sim

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/bearer"
)

// Defaults applied by New to zero-valued Options fields, exported so callers
// (the CLI's flag help, tests) can show or rely on them.
const (
	DefaultModel             = "hermes-agent"
	DefaultAnswerTokens      = 20
	DefaultKeepaliveInterval = 30 * time.Second
	// DefaultMaxSessions is how many sessions the simulator remembers: our
	// choice, more than a demo or a benchmark runs at once, and a bound
	// on the memory a long-running simulator spends on them.
	DefaultMaxSessions = 10_000
)

// defaultTools is what ToolProgress reports when Options.Tools is empty.
var defaultTools = []string{"web_search"}

// MaxBodyBytes is the largest chat request body accepted, as on the real
// server; larger bodies get 413.
const MaxBodyBytes = 10 << 20

// SessionHeader carries the session id in both directions: a client sends it
// to continue a session and the server echoes the (possibly new) id back.
const SessionHeader = "X-Hermes-Session-Id"

// Options configures a simulated server. The zero value is a working server
// without authentication that answers as fast as it can.
type Options struct {
	// Key is the bearer key every request but /health must present.
	// Empty disables authentication, as on a real server without a key.
	Key string

	// Model is the id listed by /v1/models and put in answers.
	// Empty means DefaultModel.
	Model string

	// AllowSessionWithoutKey accepts the session header when no Key is set.
	// The real server refuses that with 403; Herald's demo sends the header
	// without a key, so it can opt in here.
	AllowSessionWithoutKey bool

	// FirstTokenDelay is how long the simulated agent "thinks" before the
	// first content token.
	FirstTokenDelay time.Duration

	// TokensPerSecond paces content tokens; 0 sends them as fast as possible.
	TokensPerSecond float64

	// AnswerTokens is the number of filler tokens after the echo line.
	// 0 means DefaultAnswerTokens.
	AnswerTokens int

	// AnswerBytes, when not 0, replaces the answer with exactly this many
	// bytes of filler text (words, a line break every answerPiece bytes),
	// streamed in chunks of that size, for tests and benchmarks of large
	// answers. The chunks repeat, so each is encoded once: a large answer
	// costs the simulator little.
	AnswerBytes int

	// Think, when not "", puts a reasoning block before the answer,
	// "<think>\n" + Think + "\n</think>\n\n", streamed word by word like
	// the answer, as reasoning models behind OpenAI-compatible servers do.
	Think string

	// ToolProgress emits a running/completed hermes.tool.progress pair for
	// each of Tools before the answer, as when the agent runs tools; the
	// tools share the first-token delay.
	ToolProgress bool

	// Tools names the tools ToolProgress reports, in order; empty means
	// just "web_search". Names starting with "_" are internal: they take their
	// share of the delay but, as on the real server, are never sent.
	Tools []string

	// KeepaliveInterval is how long a stream may stay silent before a
	// ": keepalive" comment is sent. 0 means DefaultKeepaliveInterval.
	KeepaliveInterval time.Duration

	// FailStatus, when not 0, answers every chat request with this HTTP
	// status (400-599) and a JSON error body.
	FailStatus int

	// DisconnectAfter, when not 0, cuts a streaming answer's connection
	// abruptly after this many content tokens (or after the last one, if the
	// answer is shorter): no finish chunk, no [DONE]. A non-streaming answer
	// is cut before anything is written.
	DisconnectAfter int

	// MalformedLines inserts a data line that is not JSON before the first
	// content chunk, to test a client's parser.
	MalformedLines bool

	// AgentError makes the simulated agent fail halfway through: a stream
	// sends part of the text, then finish_reason "error" and [DONE]; a
	// non-streaming request gets a 500 JSON error.
	AgentError bool

	// EndlessEventBytes, when not 0, ends a streamed answer in an endless
	// event: after the first content token, data lines adding up to this
	// many bytes with no blank line between them, then the connection is
	// cut.
	EndlessEventBytes int

	// JSONAnswerBytes, when not 0, answers every chat request, streaming
	// or not, with one chat.completion JSON body (application/json) whose
	// content is this many bytes of filler text.
	JSONAnswerBytes int

	// HTMLAnswer answers every chat request with 200 and a web page
	// (text/html), as a login portal or a misrouted proxy does.
	HTMLAnswer bool

	// RedirectTo, when not "", answers every request (any path, before
	// the key is checked) with 307 Temporary Redirect to this base URL
	// followed by the request's path, as a server that moved does.
	RedirectTo string

	// RotateSessionID answers each turn with a new session id, as the real
	// server does after compressing a session's context. The turn counter
	// moves to the new id; the old id starts over.
	RotateSessionID bool

	// MaxSessions is how many sessions the simulator remembers the turn
	// count of; past it, the session whose last turn is oldest is
	// forgotten (and starts again at turn 1 if it comes back). 0 means
	// DefaultMaxSessions. It also bounds the runs kept: past it, the
	// oldest finished run is forgotten (the oldest run if none has
	// finished), with its idempotency key.
	MaxSessions int

	// Runs serves the real server's runs API: /v1/capabilities and
	// /v1/runs, whose runs go on without a connection and whose events a
	// client reads, and re-reads, separately. Without it those paths answer
	// 404, as an older Hermes or another OpenAI-compatible server does. Of
	// the faults, FailStatus, AgentError, RunEventsCutAfter and
	// SteerPending apply to runs.
	Runs bool

	// RunEventsOnce serves run events as the real server does: one live
	// queue per run, read by its first subscriber only, frames without
	// ids; once that subscriber came, the events answer 404. Without it the
	// simulator keeps every event for the run's life, numbers them, and
	// replays them after a Last-Event-ID to any number of subscribers, as a
	// server that can resume a stream would.
	RunEventsOnce bool

	// RunEventsCutAfter, when not 0, cuts every run events connection
	// abruptly once this many bytes of its body are written, wherever that
	// lands: mid-frame, even mid-character.
	RunEventsCutAfter int

	// SteerPending makes the agent leave steer text undelivered: a run
	// steered while it ran does not end its answer with the text, but
	// completes with it as "pending_steer", on the terminal event and the
	// status, as the real server reports steer text the agent did not
	// take in.
	SteerPending bool

	// Now is the clock used for ids and "created" times; nil means time.Now.
	// Delays always use real time.
	Now func() time.Time

	// Logger receives the simulator's logs; nil means slog.Default().
	Logger *slog.Logger
}

// maxAnswerTokens bounds AnswerTokens so a typo cannot make the simulator
// build a gigabyte answer.
const maxAnswerTokens = 1_000_000

// maxFaultBytes bounds the byte sizes of answers and faults: our choice,
// beyond any limit a client is likely to set (Herald's event bound is
// 16 MiB by default), and short of a typo that streams for an hour.
const maxFaultBytes = 1 << 30

// Validate reports every option that New cannot honour, naming the option, so
// the CLI can reject bad flags with a clear message.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sim: "+format, args...))
	}
	if o.FirstTokenDelay < 0 {
		bad("FirstTokenDelay must not be negative (got %v)", o.FirstTokenDelay)
	}
	if o.TokensPerSecond < 0 || math.IsNaN(o.TokensPerSecond) || math.IsInf(o.TokensPerSecond, 0) {
		bad("TokensPerSecond must be a finite number >= 0 (got %v)", o.TokensPerSecond)
	}
	if o.AnswerTokens < 0 || o.AnswerTokens > maxAnswerTokens {
		bad("AnswerTokens must be between 0 and %d (got %d)", maxAnswerTokens, o.AnswerTokens)
	}
	if o.KeepaliveInterval < 0 {
		bad("KeepaliveInterval must not be negative (got %v)", o.KeepaliveInterval)
	}
	if o.FailStatus != 0 && (o.FailStatus < 400 || o.FailStatus > 599) {
		bad("FailStatus must be 0 or an HTTP error status 400-599 (got %d)", o.FailStatus)
	}
	if o.DisconnectAfter < 0 {
		bad("DisconnectAfter must not be negative (got %d)", o.DisconnectAfter)
	}
	for _, size := range []struct {
		name string
		n    int
	}{
		{"AnswerBytes", o.AnswerBytes}, {"EndlessEventBytes", o.EndlessEventBytes},
		{"JSONAnswerBytes", o.JSONAnswerBytes}, {"RunEventsCutAfter", o.RunEventsCutAfter},
	} {
		if size.n < 0 || size.n > maxFaultBytes {
			bad("%s must be between 0 and %d (got %d)", size.name, maxFaultBytes, size.n)
		}
	}
	if o.RedirectTo != "" {
		if u, err := url.Parse(o.RedirectTo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("RedirectTo must be an http or https URL with a host (got %q)", o.RedirectTo)
		}
	}
	var answers []string // the options set that each replace the answer
	for _, opt := range []struct {
		name string
		set  bool
	}{
		{"AnswerBytes", o.AnswerBytes != 0}, {"EndlessEventBytes", o.EndlessEventBytes != 0}, {"FailStatus", o.FailStatus != 0},
		{"HTMLAnswer", o.HTMLAnswer}, {"JSONAnswerBytes", o.JSONAnswerBytes != 0}, {"RedirectTo", o.RedirectTo != ""},
	} {
		if opt.set {
			answers = append(answers, opt.name)
		}
	}
	if len(answers) > 1 {
		bad("%s each replace the answer: set one at most", strings.Join(answers, ", "))
	}
	if o.MaxSessions < 0 {
		bad("MaxSessions must not be negative (got %d)", o.MaxSessions)
	}
	if !o.Runs && (o.RunEventsOnce || o.RunEventsCutAfter != 0 || o.SteerPending) {
		bad("RunEventsOnce, RunEventsCutAfter and SteerPending need Runs")
	}
	for i, name := range o.Tools {
		if strings.TrimSpace(name) == "" {
			bad("Tools[%d] must not be empty", i)
		}
	}
	if strings.ContainsAny(o.Model, " \t\r\n") {
		bad("Model must not contain whitespace (got %q)", o.Model)
	}
	return errors.Join(errs...)
}

// Stats counts what the server has seen, so tests can assert on the server's
// side of a conversation (for example that it saw the client leave).
type Stats struct {
	// Requests is the number of chat completion requests received, whatever
	// their outcome.
	Requests int
	// Completed counts chat answers sent in full (a stream through [DONE]).
	Completed int
	// Rejected counts chat requests answered with an HTTP error status.
	Rejected int
	// ClientGone counts answers abandoned because the client went away
	// before the end.
	ClientGone int
	// Aborted counts answers cut on purpose by the DisconnectAfter or
	// EndlessEventBytes fault.
	Aborted int
	// Turns holds the number of turns so far for each session the
	// simulator remembers: the MaxSessions whose last turn is most recent.
	Turns map[string]int
	// Runs counts the runs started: the agent's work, idempotent replays
	// excluded.
	Runs int
	// RunsReplayed counts run requests answered with an earlier run, by
	// their Idempotency-Key.
	RunsReplayed int
	// RunsSteered counts the steer texts accepted into runs.
	RunsSteered int
	// RunsCompleted, RunsFailed and RunsCancelled count the runs that
	// ended so.
	RunsCompleted int
	RunsFailed    int
	RunsCancelled int
}

// Server is the simulated API server; it is an http.Handler, safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	key     bearer.Token
	created int64 // the model's "created" time

	mu         sync.Mutex
	stats      Stats
	recent     *list.List               // the ids in stats.Turns, the latest turn's first
	places     map[string]*list.Element // each id's element in recent
	changed    chan struct{}            // closed and replaced whenever stats change
	clientGone chan struct{}            // closed the first time a client leaves
	closed     bool                     // Close was called: no more runs
	runs       map[string]*run          // by id
	runOrder   []*run                   // the runs in runs, oldest first
	keyed      map[string]*run          // the runs started with an Idempotency-Key, by key

	// runsCtx is the runs' context, not any request's: a run goes on
	// after its client leaves, until Close.
	runsCtx   context.Context
	closeRuns context.CancelFunc
	working   sync.WaitGroup // the runs' goroutines
}

// New returns a server for opts with defaults applied. It panics if
// opts.Validate fails, so a misconfigured test fails loudly; call Validate
// first on options that come from users.
func New(opts Options) *Server {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	if opts.AnswerTokens == 0 {
		opts.AnswerTokens = DefaultAnswerTokens
	}
	if len(opts.Tools) == 0 {
		opts.Tools = defaultTools
	}
	opts.Tools = slices.Clone(opts.Tools)
	if opts.KeepaliveInterval == 0 {
		opts.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger.With("component", "sim"),
		key:        bearer.New(opts.Key),
		created:    opts.Now().Unix(),
		stats:      Stats{Turns: map[string]int{}},
		recent:     list.New(),
		places:     map[string]*list.Element{},
		changed:    make(chan struct{}),
		clientGone: make(chan struct{}),
		runs:       map[string]*run{},
		keyed:      map[string]*run{},
	}
	s.runsCtx, s.closeRuns = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /v1/models", s.handleModels)
	s.mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	if opts.Runs {
		s.mux.HandleFunc("GET /v1/capabilities", s.handleCapabilities)
		s.mux.HandleFunc("POST /v1/runs", s.handleStartRun)
		s.mux.HandleFunc("GET /v1/runs/{run_id}", s.handleRunStatus)
		s.mux.HandleFunc("GET /v1/runs/{run_id}/events", s.handleRunEvents)
		s.mux.HandleFunc("POST /v1/runs/{run_id}/steer", s.handleSteerRun)
		s.mux.HandleFunc("POST /v1/runs/{run_id}/stop", s.handleStopRun)
	} else {
		for _, path := range []string{"/v1/capabilities", "/v1/runs", "/v1/runs/"} {
			s.mux.HandleFunc(path, notFound)
		}
	}
	return s
}

// Close cancels the runs still going and waits for their goroutines; later
// runs are refused. A server without runs needs no Close.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeRuns()
	s.working.Wait()
}

// ServeHTTP checks the bearer key (except on /health) and routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.RedirectTo != "" {
		if r.URL.Path == "/v1/chat/completions" {
			s.count(func(st *Stats) { st.Requests++ })
		}
		s.log.Debug("redirecting (RedirectTo fault)", "path", r.URL.Path)
		http.Redirect(w, r, strings.TrimRight(s.opts.RedirectTo, "/")+r.URL.Path, http.StatusTemporaryRedirect)
		return
	}
	if r.URL.Path != "/health" && !s.authorized(r) {
		if r.URL.Path == "/v1/chat/completions" {
			s.count(func(st *Stats) { st.Requests++; st.Rejected++ })
		}
		s.log.Debug("rejected request with a bad key", "path", r.URL.Path)
		writeError(w, http.StatusUnauthorized, "Invalid API key", "invalid_request_error", "invalid_api_key")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized checks the bearer key as the real server does: exactly
// "Bearer " and the key.
func (s *Server) authorized(r *http.Request) bool {
	if !s.key.Required() {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.key.Matches(got)
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status":    "ok",
		"platform":  "hermes-agent",
		"simulator": true,
	})
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{
		Object: "list",
		Data:   []model{{ID: s.opts.Model, Object: "model", Created: s.created, OwnedBy: "hermes"}},
	})
}

// Stats returns a snapshot of the counters; the Turns map is a copy.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

func (s *Server) snapshot() Stats {
	st := s.stats
	st.Turns = make(map[string]int, len(s.stats.Turns))
	for id, n := range s.stats.Turns {
		st.Turns[id] = n
	}
	return st
}

// ClientGone returns a channel closed the first time a client leaves before
// its answer is complete, so a test can wait for that without sleeping.
func (s *Server) ClientGone() <-chan struct{} {
	return s.clientGone
}

// Wait blocks until cond holds for the server's stats or ctx ends, so tests
// can wait for server-side events (say, three completed answers) without
// sleeping.
func (s *Server) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st := s.snapshot()
		changed := s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("sim: waiting for stats (last %+v): %w", st, context.Cause(ctx))
		}
	}
}

// count applies update to the stats and wakes Wait callers.
func (s *Server) count(update func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countLocked(update)
}

func (s *Server) countLocked(update func(*Stats)) {
	before := s.stats.ClientGone
	update(&s.stats)
	if before == 0 && s.stats.ClientGone > 0 {
		close(s.clientGone)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is the OpenAI error body shape the real server uses.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

func writeError(w http.ResponseWriter, status int, message, typ, code string) {
	writeJSON(w, status, apiError{Error: apiErrorBody{Message: message, Type: typ, Code: code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		// Only our own fixed types are marshalled; this cannot happen.
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshal is json.Marshal without HTML escaping, so echoed text such as
// "<b>" stays readable on the wire.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
