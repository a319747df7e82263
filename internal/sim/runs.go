package sim

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The runs API, served with Options.Runs: a client starts a run, which goes
// on whatever happens to the connection, reads its events as server-sent
// events, asks for its status, may steer it while it runs, and may stop it.

// The states of a run, as the real server names them.
const (
	runQueued    = "queued"
	runRunning   = "running"
	runCompleted = "completed"
	runFailed    = "failed"
	runCancelled = "cancelled"
	// runInterrupted is a run the server's process died in the middle of,
	// as a restarted server reports it from its durable record.
	runInterrupted = "interrupted"
)

// errServerRestarted ends the event streams of runs a restart replaced.
var errServerRestarted = errors.New("the server restarted")

// interruptedError is what the real server says of an interrupted run.
const interruptedError = "The gateway restarted before this run settled."

// IdempotencyKeyHeader names the request header that makes starting a run
// safe to retry: the same key and body answer with the first run.
const IdempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// capabilities is what GET /v1/capabilities answers, in the Hermes API
// server's shape (the part of it this simulator serves): feature flags,
// and the endpoints by name.
func (s *Server) capabilities() any {
	type endpoint struct {
		Method string `json:"method"`
		Path   string `json:"path"`
	}
	return map[string]any{
		"object":   "hermes.api_server.capabilities",
		"platform": "hermes-agent",
		"model":    s.opts.Model,
		"auth":     map[string]any{"type": "bearer", "required": s.key.Required()},
		"features": map[string]any{
			"chat_completions":           true,
			"chat_completions_streaming": true,
			"run_submission":             true,
			"runs_idempotency":           map[string]any{"supported": true, "durable": false, "retention_seconds": 86400},
			"run_status":                 true,
			"run_events_sse":             true,
			"run_steer":                  true,
			"run_stop":                   true,
			"tool_progress_events":       true,
			"session_continuity_header":  SessionHeader,
		},
		"endpoints": map[string]endpoint{
			"chat_completions": {http.MethodPost, "/v1/chat/completions"},
			"runs":             {http.MethodPost, "/v1/runs"},
			"run_status":       {http.MethodGet, "/v1/runs/{run_id}"},
			"run_events":       {http.MethodGet, "/v1/runs/{run_id}/events"},
			"run_steer":        {http.MethodPost, "/v1/runs/{run_id}/steer"},
			"run_stop":         {http.MethodPost, "/v1/runs/{run_id}/stop"},
		},
	}
}

// runRequest is the body of POST /v1/runs. A "model" field is accepted and,
// as in chat requests, ignored: the server answers with its own model.
type runRequest struct {
	Input        string        `json:"input"`
	SessionID    string        `json:"session_id"`
	Instructions string        `json:"instructions"`
	History      []chatMessage `json:"conversation_history"`
}

// run is one run of the simulated agent. Its fields after hash are guarded
// by Server.mu.
type run struct {
	id      string
	session string
	created time.Time
	cancel  context.CancelFunc // stops the agent
	key     string             // its Idempotency-Key, or ""
	hash    [sha256.Size]byte  // of its canonical request body

	status   string
	updated  time.Time
	events   []runEvent    // all of them, the terminal one last
	changed  chan struct{} // closed and replaced when an event is added
	claimed  bool          // a subscriber came: with RunEventsOnce, the only one
	restored bool          // answered from the durable record after a restart: no events
	gone     bool          // replaced by its record at a restart: its events go nowhere
	stopping bool          // a stop was asked: the real server's "stopping" status
	steers   []string      // the steer texts accepted, in order
}

func (r *run) active() bool {
	return r.status == runQueued || r.status == runRunning
}

// steerable reports whether the run takes steer text: only while it runs,
// as on the real server, and not once a stop was asked or a restart
// replaced it.
func (r *run) steerable() bool {
	return r.status == runRunning && !r.stopping && !r.gone
}

// runEvent is one event of a run, in the real server's shape.
type runEvent struct {
	Event     string    `json:"event"`
	RunID     string    `json:"run_id"`
	Timestamp float64   `json:"timestamp"`
	Delta     string    `json:"delta,omitempty"`
	Tool      string    `json:"tool,omitempty"`
	Preview   string    `json:"preview,omitempty"`
	Duration  *float64  `json:"duration,omitempty"`
	Error     any       `json:"error,omitempty"` // false on tool.completed, the message on run.failed
	Output    string    `json:"output,omitempty"`
	Usage     *runUsage `json:"usage,omitempty"`
	// PendingSteer is the steer text a completed run's agent left
	// undelivered, joined by line breaks.
	PendingSteer string `json:"pending_steer,omitempty"`
	Accepted     bool   `json:"accepted,omitempty"` // true on run.steered
}

type runUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// unixSeconds is t as the real server's timestamps are: seconds since the
// epoch, with a fraction.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixMicro()) / 1e6
}

func (s *Server) handleCapabilities(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.capabilities())
}

// notFound answers the runs API's paths on a server without it.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "Not found: "+r.Method+" "+r.URL.Path, "invalid_request_error", "not_found")
}

func runNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Run not found", "invalid_request_error", "run_not_found")
}

// refuseRun answers a refused runs API request.
func (s *Server) refuseRun(w http.ResponseWriter, e *requestError) {
	s.log.Debug("refused runs request", "status", e.status, "code", e.code, "message", e.message)
	writeError(w, e.status, e.message, e.typ, e.code)
}

func (s *Server) handleStartRun(w http.ResponseWriter, r *http.Request) {
	if s.opts.FailStatus != 0 {
		s.refuseRun(w, s.simulatedFailure())
		return
	}
	key, rerr := idempotencyKey(r)
	if rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	body, rerr := readBody(w, r)
	if rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	var req runRequest
	var canonical any
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &canonical) != nil {
		s.refuseRun(w, badRequest("Invalid JSON in request body", "invalid_json"))
		return
	}
	if req.Input == "" {
		s.refuseRun(w, badRequest("'input' must be a non-empty string", "invalid_request"))
		return
	}
	// The real server reads the body's session_id, not the session header.
	session := req.SessionID
	if rerr := s.checkSession(session); rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	history, rerr := readTurnInput(req.History)
	if rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	in := turnInput{
		said:         req.Input,
		promptTokens: history.promptTokens + len(strings.Fields(req.Instructions)) + len(strings.Fields(req.Input)),
	}
	// Marshalling the decoded body sorts its keys: bodies that differ only
	// in spacing or key order are the same request.
	sorted, _ := json.Marshal(canonical) // decoded JSON always marshals
	started, replayed, rerr := s.startRun(session, in, key, sha256.Sum256(sorted))
	if rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	if replayed {
		w.Header().Set("Idempotency-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, struct {
		RunID    string `json:"run_id"`
		Status   string `json:"status"`
		Replayed bool   `json:"replayed"`
	}{started.id, "started", replayed})
}

// startRun starts a run for the turn in, or finds the run started earlier
// with the same idempotency key and body hash.
func (s *Server) startRun(session string, in turnInput, key string, hash [sha256.Size]byte) (r *run, replayed bool, rerr *requestError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, &requestError{status: http.StatusServiceUnavailable, message: "Server is shutting down", typ: "server_error", code: "server_shutting_down"}
	}
	if first := s.keyed[key]; first != nil {
		if first.hash != hash {
			return nil, false, &requestError{
				status:  http.StatusConflict,
				message: "Idempotency-Key was used with a different request body",
				typ:     "invalid_request_error",
				code:    "idempotency_key_conflict",
			}
		}
		s.countLocked(func(st *Stats) { st.RunsReplayed++ })
		s.log.Debug("replaying a run", "run", first.id, "key", key)
		return first, true, nil
	}
	// A run without a session is its own session, named by its id.
	id := "run_" + randomHex(16)
	turn, session := s.startTurnLocked(cmp.Or(session, id))
	now := s.opts.Now()
	ctx, cancel := context.WithCancel(s.runsCtx)
	r = &run{
		id:      id,
		session: session,
		created: now,
		cancel:  cancel,
		key:     key,
		hash:    hash,
		status:  runQueued,
		updated: now,
		changed: make(chan struct{}),
	}
	s.runs[r.id] = r
	s.runOrder = append(s.runOrder, r)
	if key != "" {
		s.keyed[key] = r
	}
	s.pruneRunsLocked()
	s.countLocked(func(st *Stats) { st.Runs++ })
	s.working.Go(func() { s.work(ctx, r, turn, in) })
	s.log.Debug("run started", "run", r.id, "session", session, "turn", turn)
	return r, false, nil
}

// idempotencyKey returns the request's Idempotency-Key, "" if it has none.
func idempotencyKey(r *http.Request) (string, *requestError) {
	if len(r.Header.Values(IdempotencyKeyHeader)) == 0 {
		return "", nil
	}
	key := r.Header.Get(IdempotencyKeyHeader)
	valid := len(key) >= 1 && len(key) <= maxIdempotencyKey
	for i := 0; valid && i < len(key); i++ {
		valid = key[i] >= 0x21 && key[i] <= 0x7e
	}
	if !valid {
		return "", badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters", "invalid_idempotency_key")
	}
	return key, nil
}

// pruneRunsLocked forgets runs past MaxSessions: the oldest finished ones,
// else the oldest ones, which are stopped.
func (s *Server) pruneRunsLocked() {
	for len(s.runOrder) > s.opts.MaxSessions {
		i := max(0, slices.IndexFunc(s.runOrder, func(r *run) bool { return !r.active() }))
		r := s.runOrder[i]
		s.runOrder = slices.Delete(s.runOrder, i, i+1)
		delete(s.runs, r.id)
		if s.keyed[r.key] == r {
			delete(s.keyed, r.key)
		}
		r.cancel()
	}
}

// RestartRuns is the server restarted, as the real one does: a run started
// without an idempotency key is forgotten; one started with a key is
// answered from its durable record, with its key, status and output, but
// no events, and "interrupted" if it had not ended. The runs still going
// are stopped.
func (s *Server) RestartRuns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := s.runOrder
	s.runs, s.runOrder, s.keyed = map[string]*run{}, nil, map[string]*run{}
	for _, r := range order {
		r.cancel()
		r.gone = true
		close(r.changed) // its readers' connections end with the process
		r.changed = make(chan struct{})
		if r.key == "" {
			continue
		}
		kept := &run{
			id: r.id, session: r.session, created: r.created, cancel: func() {}, key: r.key, hash: r.hash,
			status: r.status, updated: r.updated, events: slices.Clone(r.events), changed: make(chan struct{}), restored: true,
		}
		if r.active() {
			kept.status, kept.updated = runInterrupted, s.opts.Now()
			kept.events = append(kept.events, runEvent{Event: "run.interrupted", Error: interruptedError})
		}
		s.runs[kept.id], s.keyed[kept.key] = kept, kept
		s.runOrder = append(s.runOrder, kept)
	}
}

// work is the simulated agent doing a run: what a chat turn streams, as the
// run's events.
func (s *Server) work(ctx context.Context, r *run, turn int, in turnInput) {
	defer r.cancel()
	now := s.opts.Now()
	s.mu.Lock()
	r.status, r.updated = runRunning, now
	s.mu.Unlock()
	end := s.produce(ctx, r, s.answerTokens(turn, in), in.promptTokens)
	s.finish(r, end)
	s.log.Debug("run ended", "run", r.id, "event", end.Event)
}

// finish emits the run's terminal event. Steer text is accepted until
// then, so the agent takes it in under the same lock: a completed answer
// ends with each text, a delta apiece, or, with SteerPending, carries it
// as pending, as the real server reports steer text left undelivered.
func (s *Server) finish(r *run, end runEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end.Event == "run.completed" {
		if s.opts.SteerPending {
			end.PendingSteer = strings.Join(r.steers, "\n")
		} else {
			for _, text := range r.steers {
				delta := " [steered: " + text + "]"
				s.emitLocked(r, runEvent{Event: "message.delta", Delta: delta})
				end.Output += delta
				end.Usage.OutputTokens++
				end.Usage.TotalTokens++
			}
		}
	}
	s.emitLocked(r, end)
}

// produce emits the run's tool and message events and returns its terminal
// event.
func (s *Server) produce(ctx context.Context, r *run, tokens []string, promptTokens int) runEvent {
	cancelled := runEvent{Event: "run.cancelled"}
	if !s.opts.ToolProgress {
		if sleep(ctx, s.opts.FirstTokenDelay) != nil {
			return cancelled
		}
	} else {
		each := s.opts.FirstTokenDelay / time.Duration(len(s.opts.Tools))
		for _, name := range s.opts.Tools {
			internal := strings.HasPrefix(name, "_")
			if !internal {
				preview := toolLooks[name].label
				if preview == "" {
					preview = "running " + name
				}
				s.emit(r, runEvent{Event: "tool.started", Tool: name, Preview: preview})
			}
			began := time.Now()
			if sleep(ctx, each) != nil {
				return cancelled
			}
			if !internal {
				took := time.Since(began).Seconds()
				s.emit(r, runEvent{Event: "tool.completed", Tool: name, Duration: &took, Error: false})
			}
		}
	}

	send := tokens
	if s.opts.AgentError {
		send = send[:max(1, len(send)/2)]
	}
	interval := s.tokenInterval()
	for i, tok := range send {
		if i > 0 && sleep(ctx, interval) != nil {
			return cancelled
		}
		s.emit(r, runEvent{Event: "message.delta", Delta: tok})
	}
	if s.opts.AgentError {
		return runEvent{Event: "run.failed", Error: "Simulated agent failure (Hermes API server simulator)"}
	}
	return runEvent{
		Event:  "run.completed",
		Output: strings.Join(tokens, ""),
		Usage:  &runUsage{InputTokens: promptTokens, OutputTokens: len(tokens), TotalTokens: promptTokens + len(tokens)},
	}
}

// sleep pauses for d unless ctx ends first; it fails once ctx has ended,
// even for no pause, so that a stopped run stops between tokens.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// emit adds ev to the run's events and wakes their readers; a terminal
// event also ends the run.
func (s *Server) emit(r *run, ev runEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(r, ev)
}

// emitLocked is emit with s.mu held.
func (s *Server) emitLocked(r *run, ev runEvent) {
	if r.gone {
		return
	}
	now := s.opts.Now()
	ev.RunID, ev.Timestamp = r.id, unixSeconds(now)
	r.events = append(r.events, ev)
	r.updated = now
	close(r.changed)
	r.changed = make(chan struct{})
	switch ev.Event {
	case "run.completed":
		r.status = runCompleted
		s.countLocked(func(st *Stats) { st.RunsCompleted++ })
	case "run.failed":
		r.status = runFailed
		s.countLocked(func(st *Stats) { st.RunsFailed++ })
	case "run.cancelled":
		r.status = runCancelled
		s.countLocked(func(st *Stats) { st.RunsCancelled++ })
	}
}

func (s *Server) handleRunStatus(w http.ResponseWriter, req *http.Request) {
	type status struct {
		Object       string    `json:"object"`
		RunID        string    `json:"run_id"`
		Status       string    `json:"status"`
		SessionID    string    `json:"session_id"`
		Model        string    `json:"model"`
		CreatedAt    float64   `json:"created_at"`
		UpdatedAt    float64   `json:"updated_at"`
		LastEvent    *string   `json:"last_event"`
		Output       *string   `json:"output,omitempty"`
		Usage        *runUsage `json:"usage,omitempty"`
		PendingSteer string    `json:"pending_steer,omitempty"`
		Error        any       `json:"error,omitempty"`
	}
	s.mu.Lock()
	r := s.runs[req.PathValue("run_id")]
	if r == nil {
		s.mu.Unlock()
		runNotFound(w)
		return
	}
	st := status{
		Object:    "hermes.run",
		RunID:     r.id,
		Status:    r.status,
		SessionID: r.session,
		Model:     s.opts.Model,
		CreatedAt: unixSeconds(r.created),
		UpdatedAt: unixSeconds(r.updated),
	}
	if len(r.events) > 0 {
		last := r.events[len(r.events)-1]
		st.LastEvent = &last.Event
		switch r.status {
		case runCompleted:
			st.Output, st.Usage, st.PendingSteer = &last.Output, last.Usage, last.PendingSteer
		case runFailed, runInterrupted:
			st.Error = last.Error
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleStopRun(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	r := s.runs[req.PathValue("run_id")]
	active := r != nil && r.active()
	if active {
		r.stopping = true
		r.cancel()
	}
	s.mu.Unlock()
	switch {
	case r == nil:
		runNotFound(w)
	case !active:
		s.refuseRun(w, &requestError{status: http.StatusConflict, message: "Run is not active", typ: "invalid_request_error", code: "run_not_active"})
	default:
		s.log.Debug("stopping a run", "run", r.id)
		writeJSON(w, http.StatusOK, struct {
			RunID  string `json:"run_id"`
			Status string `json:"status"`
		}{r.id, "stopping"})
	}
}

// steerRequest is the body of POST /v1/runs/{run_id}/steer; the real server
// takes the text from the first of its fields that is not empty.
type steerRequest struct {
	Input   string `json:"input"`
	Message string `json:"message"`
	Text    string `json:"text"`
}

func notAcceptingSteer(id string) *requestError {
	return &requestError{
		status:  http.StatusConflict,
		message: "Run is not currently accepting steer input: " + id,
		typ:     "invalid_request_error",
		code:    "run_not_accepting_steer",
	}
}

// handleSteerRun gives a running run's agent more text; it goes into the
// answer when the run ends (see finish). As on the real server, the run's
// state is checked before the body is read.
func (s *Server) handleSteerRun(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("run_id")
	s.mu.Lock()
	r := s.runs[id]
	steerable := r != nil && r.steerable()
	s.mu.Unlock()
	if r == nil {
		runNotFound(w)
		return
	}
	if !steerable {
		s.refuseRun(w, notAcceptingSteer(id))
		return
	}
	body, rerr := readBody(w, req)
	if rerr != nil {
		s.refuseRun(w, rerr)
		return
	}
	var sr steerRequest
	if json.Unmarshal(body, &sr) != nil {
		s.refuseRun(w, badRequest("Invalid JSON in request body", "invalid_json"))
		return
	}
	text := strings.TrimSpace(cmp.Or(sr.Input, sr.Message, sr.Text))
	if text == "" {
		s.refuseRun(w, badRequest("Missing non-empty steer text; expected 'input', 'message', or 'text'.", "invalid_steer_input"))
		return
	}
	// The run may have ended while the body was read.
	s.mu.Lock()
	steerable = r.steerable()
	if steerable {
		r.steers = append(r.steers, text)
		s.emitLocked(r, runEvent{Event: "run.steered", Accepted: true})
		s.countLocked(func(st *Stats) { st.RunsSteered++ })
	}
	s.mu.Unlock()
	if !steerable {
		s.refuseRun(w, notAcceptingSteer(id))
		return
	}
	s.log.Debug("run steered", "run", id)
	writeJSON(w, http.StatusOK, struct {
		Object   string `json:"object"`
		RunID    string `json:"run_id"`
		Accepted bool   `json:"accepted"`
	}{"hermes.run.steer", id, true})
}

func (s *Server) handleRunEvents(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	r := s.runs[req.PathValue("run_id")]
	if r == nil || r.restored || (s.opts.RunEventsOnce && r.claimed) {
		s.mu.Unlock()
		runNotFound(w)
		return
	}
	from := 0
	if id := req.Header.Get("Last-Event-ID"); id != "" && !s.opts.RunEventsOnce {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n > len(r.events) {
			s.mu.Unlock()
			s.refuseRun(w, badRequest("Last-Event-ID is not the id of an event of this run", "invalid_last_event_id"))
			return
		}
		from = n
	}
	r.claimed = true
	s.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	body := w
	if s.opts.RunEventsCutAfter > 0 {
		body = &cutWriter{ResponseWriter: w, left: s.opts.RunEventsCutAfter}
	}
	sw := &sseWriter{
		w:         body,
		rc:        http.NewResponseController(w),
		ctx:       req.Context(),
		keepalive: s.opts.KeepaliveInterval,
		last:      time.Now(),
	}
	// The headers go at once, so the client knows the stream is open
	// before the first event.
	err := sw.rc.Flush()
	if err == nil {
		err = s.sendRunEvents(sw, r, from)
	}
	if err != nil {
		s.log.Info("run events reader left", "run", r.id, "err", err)
	}
}

// sendRunEvents writes the run's events after the first from, following
// the run live until it ends.
func (s *Server) sendRunEvents(sw *sseWriter, r *run, from int) error {
	for n := from; ; {
		s.mu.Lock()
		events, ended, changed, gone := r.events[n:], !r.active(), r.changed, r.gone
		s.mu.Unlock()
		if gone {
			return errServerRestarted
		}
		for _, ev := range events {
			n++
			if err := sw.write(s.runFrame(n, ev)); err != nil {
				return err
			}
		}
		if ended {
			return sw.write([]byte(": stream closed\n\n"))
		}
		if len(events) == 0 {
			if err := sw.await(changed); err != nil {
				return err
			}
		}
	}
}

// runFrame is the n-th event of a run as an SSE frame: with its number as
// the id when events are kept, a bare data line when they are not.
func (s *Server) runFrame(n int, ev runEvent) []byte {
	frame, err := encode("", ev)
	if err != nil {
		panic(err) // only our own fixed types are marshalled
	}
	if s.opts.RunEventsOnce {
		return frame
	}
	return append([]byte("id: "+strconv.Itoa(n)+"\n"), frame...)
}

// await waits until changed is closed, sending keepalive comments while
// the stream is silent, and stops early if the client leaves.
func (sw *sseWriter) await(changed <-chan struct{}) error {
	for {
		ka := time.NewTimer(sw.keepalive - time.Since(sw.last))
		select {
		case <-changed:
			ka.Stop()
			return nil
		case <-sw.ctx.Done():
			ka.Stop()
			return sw.ctx.Err()
		case <-ka.C:
			if err := sw.write([]byte(": keepalive\n\n")); err != nil {
				return err
			}
		}
	}
}

// cutWriter is a response body cut abruptly after a number of bytes: the
// RunEventsCutAfter fault.
type cutWriter struct {
	http.ResponseWriter
	left int // bytes to write before the cut
}

// Write writes p, or the part of it before the cut; at the cut it flushes
// and drops the connection: net/http closes it without ending the response
// when a handler panics with http.ErrAbortHandler.
func (c *cutWriter) Write(p []byte) (int, error) {
	if len(p) < c.left {
		c.left -= len(p)
		return c.ResponseWriter.Write(p)
	}
	_, _ = c.ResponseWriter.Write(p[:c.left])
	_ = http.NewResponseController(c.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}
