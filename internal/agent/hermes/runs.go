package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
	"github.com/herald-chat/herald/internal/sse"
)

// The runs API of the Hermes API server (see the README's protocol
// section): a turn is a run that lives on the server apart from the HTTP
// connection that started it, so a gateway that restarts follows the same
// run to its end rather than cutting the answer short or asking again.

// Whether the server serves the runs API, as last checked.
const (
	runsUnknown int32 = iota
	runsYes
	runsNo
)

// Modes name how turns reach the agent server, for the startup log and
// herald check.
const (
	ModeRuns        = "runs (/v1/runs)"
	ModeCompletions = "chat completions (/v1/chat/completions)"
)

// pollInterval is how often a run's status is read while its events cannot
// be (our choice: at most a second's wait at the end of an answer, for one
// small GET).
const pollInterval = time.Second

// maxReconnects is how many times in a row a run's events are connected
// to again without a new event before its status is polled instead (our
// choice).
const maxReconnects = 3

// stopTimeout bounds the request that stops a run on the server (our
// choice): a /stop must not hang the chat's next turn.
const stopTimeout = 5 * time.Second

// maxRunID bounds a run id from the server: the idempotency keys' bound
// on the Hermes API server (255), far above its "run_" and 32 hex digits.
const maxRunID = 255

// errEventsGone means the server keeps no events of the run for a new
// subscriber (the Hermes API server's stream is consumed once).
var errEventsGone = errors.New("the run's events are no longer available")

// errCancelledOnServer is a run that ended cancelled without the gateway
// stopping it: shown as stopped.
var errCancelledOnServer = fmt.Errorf("the run was cancelled on the agent server: %w", context.Canceled)

// Mode implements agent.Moder: it says how turns reach the agent server,
// asking the server for its capabilities when that is not known yet, or
// why it cannot tell (the server does not answer).
func (b *Backend) Mode(ctx context.Context) (string, error) {
	ok, err := b.runsServed(ctx)
	if err != nil {
		return "", err
	}
	if ok {
		return ModeRuns, nil
	}
	return ModeCompletions, nil
}

// usesRuns reports whether turns go through runs. A server whose
// capabilities cannot be read (it is down) gets chat completions for now,
// and is asked again at the next turn.
func (b *Backend) usesRuns(ctx context.Context) bool {
	ok, err := b.runsServed(ctx)
	if err != nil {
		b.log.Debug("the agent server's capabilities could not be read; chat completions for now", "error", err)
	}
	return ok
}

// runsServed is what the last check of the server's capabilities said, or
// a new check, whose answer is kept and logged.
func (b *Backend) runsServed(ctx context.Context) (bool, error) {
	switch b.runs.Load() {
	case runsYes:
		return true, nil
	case runsNo:
		return false, nil
	}
	ok, err := b.checkRuns(ctx)
	if err != nil {
		return false, err
	}
	mode := ModeCompletions
	if ok {
		b.runs.Store(runsYes)
		mode = ModeRuns
	} else {
		b.runs.Store(runsNo)
	}
	b.log.Info("agent server mode", "mode", mode)
	return ok, nil
}

// recheck makes the next turn ask the server for its capabilities again:
// after an error, the server may have been replaced by another version.
func (b *Backend) recheck() { b.runs.Store(runsUnknown) }

// checkRuns asks GET /v1/capabilities whether the server serves runs. A
// server without that endpoint (an older Hermes, any OpenAI-compatible
// server) does not.
func (b *Backend) checkRuns(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/v1/capabilities", nil)
	if err != nil {
		return false, err
	}
	resp, err := b.client.Send(req)
	if err != nil {
		return false, completions.TransportError(ctx, ctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return false, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return false, b.client.StatusError(resp, resp.Body)
	}
	var caps map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBody)).Decode(&caps); err != nil {
		return false, nil // not a capabilities document: no runs
	}
	runs, steer := advertisesRuns(caps)
	b.steers.Store(runs && steer)
	return runs, nil
}

// advertisesRuns reads the Hermes API server's capabilities document: it
// serves what a turn needs of runs when its features include starting a
// run, its status and its events (run_submission, run_status and
// run_events_sse all true), and steers a running one with run_steer.
func advertisesRuns(caps map[string]json.RawMessage) (runs, steer bool) {
	var features struct {
		Submission bool `json:"run_submission"`
		Status     bool `json:"run_status"`
		Events     bool `json:"run_events_sse"`
		Steer      bool `json:"run_steer"`
	}
	if json.Unmarshal(caps["features"], &features) != nil {
		return false, false
	}
	return features.Submission && features.Status && features.Events, features.Steer
}

// maxStatusBody bounds a capabilities document or a run's status (our
// choice: a status holds the run's output, which the answer limit bounds
// apart; this bounds the rest).
const maxStatusBody = 64 << 10

// runTurn runs a turn as a run on the server: it starts one (or follows
// turn.RunID) and reads its events into emit. It reports false when the
// server turned out not to serve runs before anything ran, so that the
// turn goes through chat completions instead.
func (b *Backend) runTurn(ctx context.Context, turn agent.Turn, emit func(agent.Event)) (agent.Result, bool) {
	start := time.Now()
	runID := turn.RunID
	if runID == "" {
		id, err := b.startRun(ctx, turn)
		if se, ok := errors.AsType[*agent.StatusError](err); ok && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed) {
			b.log.Info("the agent server does not start runs after all; chat completions", "status", se.Status)
			b.runs.Store(runsNo)
			return agent.Result{}, false
		}
		if err != nil {
			return b.runResult(turn, "", "", err, start), true
		}
		runID = id
		if turn.Started != nil {
			turn.Started(runID)
		}
	}
	f := &follower{b: b, runID: runID, emit: emit}
	text, err := f.follow(ctx)
	res := b.runResult(turn, runID, text, err, start)
	if err == nil {
		res.SessionID = b.adoptSession(turn, f.sessionID(ctx))
		res.PendingSteer = f.pendingSteer
	}
	return res, true
}

// runResult is a run's Result, logged as the completions client logs a turn.
func (b *Backend) runResult(turn agent.Turn, runID, text string, err error, start time.Time) agent.Result {
	attrs := []any{"run", runID, "session", turn.SessionID, "chars", len(text), "duration", time.Since(start), "error", err}
	// A failed turn is the gateway's warning, with the turn's ids.
	b.log.Debug("run finished", attrs...)
	if err != nil && !errors.Is(err, agent.ErrDetached) && !errors.Is(err, context.Canceled) {
		b.recheck()
	}
	return agent.Result{
		FinalResponse: agent.FinalText("Proxy", text, err),
		Text:          text,
		SessionID:     turn.SessionID,
		Err:           err,
	}
}

// runRequest is the body of POST /v1/runs.
type runRequest struct {
	Input               string        `json:"input"`
	SessionID           string        `json:"session_id,omitempty"`
	ConversationHistory []historyItem `json:"conversation_history,omitempty"`
	Model               string        `json:"model,omitempty"`
}

type historyItem struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// startRun starts the turn's run, with the turn's key as the idempotency
// key: a turn started again after a crash gets the same run back.
func (b *Backend) startRun(ctx context.Context, turn agent.Turn) (string, error) {
	body := runRequest{Input: turn.Message, SessionID: turn.SessionID, Model: b.client.Model}
	for _, m := range turn.History {
		if m.Content != "" && (m.Role == "user" || m.Role == "assistant") {
			body.ConversationHistory = append(body.ConversationHistory, historyItem{Role: string(m.Role), Content: m.Content})
		}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encoding the run: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/v1/runs", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header = identityHeaders(turn)
	req.Header.Set("Content-Type", "application/json")
	if turn.Key != "" {
		req.Header.Set("Idempotency-Key", turn.Key)
	}
	resp, err := b.client.Send(req)
	if err != nil {
		return "", completions.TransportError(ctx, ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", b.client.StatusError(resp, resp.Body)
	}
	var started struct {
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBody)).Decode(&started); err != nil {
		return "", fmt.Errorf("%w (its answer to POST /v1/runs is not JSON: %v)", agent.ErrNotAStream, err)
	}
	if started.RunID == "" || len(started.RunID) > maxRunID {
		return "", fmt.Errorf("%w (its answer to POST /v1/runs has no usable run_id)", agent.ErrNotAStream)
	}
	b.log.Debug("run started", "run", started.RunID, "replayed", resp.Header.Get("Idempotency-Replayed") == "true")
	return started.RunID, nil
}

// follower reads one run to its end.
type follower struct {
	b       *Backend
	runID   string
	emit    func(agent.Event)
	text    strings.Builder
	lastID  string // the id of the last event read, to connect again after it
	session string // the session the run's status names, once read
	// pendingSteer is the text steered into the run that it did not read.
	pendingSteer string
}

// follow reads the run's events, connecting again after the last one read
// when a connection breaks, and polls the run's status when its events
// cannot be read (the server keeps none, or gives no ids to resume from).
// It returns the complete text: the run's output, once it ends.
func (f *follower) follow(ctx context.Context) (string, error) {
	for misses := 0; ; {
		text, done, progressed, err := f.events(ctx)
		switch {
		case done:
			return text, err
		case ctx.Err() != nil:
			return f.text.String(), f.cancelled(ctx)
		case errors.Is(err, errEventsGone) || f.lastID == "":
		case progressed:
			misses = 0
			f.b.log.Debug("the run's events broke off; connecting again", "run", f.runID, "after", f.lastID, "error", err)
			continue
		default:
			if misses++; misses < maxReconnects {
				continue
			}
		}
		f.b.log.Debug("following the run by its status", "run", f.runID, "error", err)
		return f.poll(ctx)
	}
}

// runEvent is the part of a run's event that the gateway uses.
type runEvent struct {
	Event   string          `json:"event"`
	Delta   string          `json:"delta"`
	Tool    string          `json:"tool"`
	Preview string          `json:"preview"`
	Output  *string         `json:"output"`
	Error   json.RawMessage `json:"error"` // a string for run.failed, a bool for tool.completed
	// PendingSteer is steered text the agent did not read before the run
	// ended, for the client to send again.
	PendingSteer string `json:"pending_steer"`
}

// events reads one connection of the run's events. done reports that the
// run ended (text and err are then its outcome); progressed, that an event
// came before the connection ended.
func (f *follower) events(parent context.Context) (text string, done, progressed bool, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	idle := time.AfterFunc(f.b.client.IdleTimeout, func() { cancel(agent.ErrIdleTimeout) })
	defer idle.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.b.runURL(f.runID)+"/events", nil)
	if err != nil {
		return "", false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if f.lastID != "" {
		req.Header.Set("Last-Event-ID", f.lastID)
	}
	resp, err := f.b.client.Send(req)
	if err != nil {
		return "", false, false, completions.TransportError(ctx, parent, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", false, false, errEventsGone
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", false, false, f.b.client.StatusError(resp, resp.Body)
	}
	events := sse.NewReaderLimit(completions.IdleReader(resp.Body, idle, f.b.client.IdleTimeout), f.b.limit())
	for {
		ev, err := events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", false, progressed, agent.ErrIncomplete
			}
			return "", false, progressed, completions.TransportError(ctx, parent, err)
		}
		if ev.ID != "" {
			f.lastID = ev.ID
		}
		progressed = true
		var e runEvent
		if json.Unmarshal(ev.Data, &e) != nil {
			f.b.log.Debug("skipping a run event that is not JSON", "run", f.runID, "bytes", len(ev.Data))
			continue
		}
		if text, done, err := f.handle(e); done {
			return text, true, true, err
		}
	}
}

// handle takes one event of the run; done reports that the run ended, with
// its complete text and how.
func (f *follower) handle(e runEvent) (text string, done bool, err error) {
	switch e.Event {
	case "message.delta":
		if limit := f.b.client.MaxAnswerBytes; limit > 0 && f.text.Len()+len(e.Delta) > limit {
			f.text.WriteString(completions.CutUTF8(e.Delta, limit-f.text.Len()))
			f.b.stopRun(f.runID)
			return f.text.String(), true, &agent.AnswerTooLongError{Limit: limit}
		}
		f.text.WriteString(e.Delta)
		f.emit(agent.Event{Kind: agent.EventDelta, Text: e.Delta})
	case "tool.started", "tool.completed":
		status := "running"
		if e.Event == "tool.completed" {
			status = "completed"
		}
		if e.Tool == "" || strings.HasPrefix(e.Tool, "_") {
			break // internal to the agent, as in chat completions' tool progress
		}
		f.emit(agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{
			Tool: completions.CutUTF8(e.Tool, completions.MaxToolField), Label: completions.CutUTF8(e.Preview, completions.MaxToolField), Status: status,
		}})
	case "run.completed":
		f.pendingSteer = e.PendingSteer
		return f.output(e.Output), true, nil
	case "run.failed":
		return f.text.String(), true, f.failure(e.Error)
	case "run.cancelled":
		return f.text.String(), true, errCancelledOnServer
	}
	return "", false, nil
}

// output is a finished run's complete text: its output, else the text its
// deltas made; cut at the answer limit.
func (f *follower) output(out *string) string {
	text := f.text.String()
	if out != nil && *out != "" {
		text = *out
	}
	if limit := f.b.client.MaxAnswerBytes; limit > 0 && len(text) > limit {
		text = completions.CutUTF8(text, limit)
	}
	return text
}

// failure is a failed run's error, with what the server said of it.
func (f *follower) failure(raw json.RawMessage) error {
	var msg string
	if json.Unmarshal(raw, &msg) != nil {
		var obj struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &obj) // another shape says nothing to show
		msg = obj.Message
	}
	if msg = agent.Summary(msg); msg != "" {
		return fmt.Errorf("%w: %s", agent.ErrAgentFailed, msg)
	}
	return agent.ErrAgentFailed
}

// runStatus is the part of GET /v1/runs/{id} that the gateway uses.
type runStatus struct {
	Status       string          `json:"status"`
	SessionID    string          `json:"session_id"`
	Output       *string         `json:"output"`
	Error        json.RawMessage `json:"error"`
	PendingSteer string          `json:"pending_steer"`
}

// errInterrupted is a run the server lost: its process ended before the run
// did ("interrupted"). Nothing more comes of it, as of a run it forgot.
var errInterrupted = fmt.Errorf("%w: it restarted before the run ended", agent.ErrRunUnknown)

// poll reads the run's status until it ends. A server that cannot be
// reached is asked again until the idle timeout has passed without an
// answer.
func (f *follower) poll(ctx context.Context) (string, error) {
	lastAnswer := time.Now()
	for {
		st, err := f.status(ctx)
		switch {
		case err == nil:
			lastAnswer = time.Now()
			switch st.Status {
			case "completed":
				f.pendingSteer = st.PendingSteer
				return f.output(st.Output), nil
			case "failed":
				return f.text.String(), f.failure(st.Error)
			case "cancelled":
				return f.text.String(), errCancelledOnServer
			case "interrupted":
				return f.text.String(), errInterrupted
			}
		case errors.Is(err, agent.ErrRunUnknown):
			return f.text.String(), err
		case ctx.Err() != nil:
		case time.Since(lastAnswer) > f.b.client.IdleTimeout:
			return f.text.String(), err
		}
		select {
		case <-ctx.Done():
			return f.text.String(), f.cancelled(ctx)
		case <-time.After(pollInterval):
		}
	}
}

// status reads the run's status once.
func (f *follower) status(ctx context.Context) (runStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.b.runURL(f.runID), nil)
	if err != nil {
		return runStatus{}, err
	}
	resp, err := f.b.client.Send(req)
	if err != nil {
		return runStatus{}, completions.TransportError(ctx, ctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return runStatus{}, agent.ErrRunUnknown
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return runStatus{}, f.b.client.StatusError(resp, resp.Body)
	}
	var st runStatus
	limit := int64(maxStatusBody) + int64(f.b.limit())
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(&st); err != nil {
		return runStatus{}, fmt.Errorf("the run's status is not JSON: %w", err)
	}
	f.session = st.SessionID
	return st, nil
}

// sessionID is the session the server ran the run in, which is another
// than the turn's after the server rotated it; read from the run's status
// once the run ended by its events. "" when the status cannot be read.
func (f *follower) sessionID(ctx context.Context) string {
	if f.session == "" {
		if _, err := f.status(ctx); err != nil {
			f.b.log.Debug("the run's status cannot be read for its session", "run", f.runID, "error", err)
		}
	}
	return f.session
}

// cancelled is how a run ends whose turn's context ended: let go of at
// shutdown (the run goes on, for the next start to follow), or stopped
// (/stop, a newer message), which stops it on the server too.
func (f *follower) cancelled(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, agent.ErrDetached) {
		return agent.ErrDetached
	}
	f.b.stopRun(f.runID)
	return ctx.Err()
}

// stopRun asks the server to stop a run, on a context of its own: the
// turn's has ended. A run that ended already is stopped.
func (b *Backend) stopRun(runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.runURL(runID)+"/stop", nil)
	if err != nil {
		return
	}
	resp, err := b.client.Send(req)
	if err != nil {
		b.log.Warn("stopping the run failed", "run", runID, "error", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxStatusBody))
	b.log.Debug("run stopped", "run", runID, "status", resp.StatusCode)
}

// runURL is the URL of a run.
func (b *Backend) runURL(runID string) string {
	return b.base + "/v1/runs/" + url.PathEscape(runID)
}

// limit is the bound on one event.
func (b *Backend) limit() int {
	if b.client.MaxEventBytes <= 0 {
		return sse.DefaultLimit
	}
	return b.client.MaxEventBytes
}
