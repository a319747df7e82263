package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var runIDShape = regexp.MustCompile(`^run_[0-9a-f]{32}$`)

// call sends a request to the runs API with the bearer key "k" and the given
// headers (name, value pairs).
func call(t *testing.T, ts *httptest.Server, method, path, body string, headers ...string) *http.Response {
	t.Helper()
	return callContext(t, t.Context(), ts, method, path, body, headers...)
}

func callContext(t *testing.T, ctx context.Context, ts *httptest.Server, method, path, body string, headers ...string) *http.Response {
	t.Helper()
	return send(t, ctx, ts, method, path, body, append([]string{"Authorization", "Bearer k"}, headers...)...)
}

// runStarted is the answer to POST /v1/runs.
type runStarted struct {
	RunID    string `json:"run_id"`
	Status   string `json:"status"`
	Replayed bool   `json:"replayed"`
}

// startRun posts body to /v1/runs and returns the 202 answer.
func startRun(t *testing.T, ts *httptest.Server, body string, headers ...string) (runStarted, *http.Response) {
	t.Helper()
	resp := call(t, ts, http.MethodPost, "/v1/runs", body, headers...)
	text := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/runs: status %d: %s", resp.StatusCode, text)
	}
	var started runStarted
	decodeStrict(t, text, &started)
	if !runIDShape.MatchString(started.RunID) || started.Status != "started" {
		t.Fatalf("POST /v1/runs = %s, want a run id and status started", text)
	}
	return started, resp
}

// wireRunStatus is GET /v1/runs/{id} as a client decodes it.
type wireRunStatus struct {
	Object       string    `json:"object"`
	RunID        string    `json:"run_id"`
	Status       string    `json:"status"`
	SessionID    string    `json:"session_id"`
	Model        string    `json:"model"`
	CreatedAt    float64   `json:"created_at"`
	UpdatedAt    float64   `json:"updated_at"`
	LastEvent    *string   `json:"last_event"`
	Output       *string   `json:"output"`
	Usage        *runUsage `json:"usage"`
	PendingSteer *string   `json:"pending_steer"`
	Error        *string   `json:"error"`
}

func runStatus(t *testing.T, ts *httptest.Server, id string) wireRunStatus {
	t.Helper()
	resp := call(t, ts, http.MethodGet, "/v1/runs/"+id, "")
	text := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET run: status %d: %s", resp.StatusCode, text)
	}
	var st wireRunStatus
	decodeStrict(t, text, &st)
	if st.Object != "hermes.run" || st.RunID != id {
		t.Errorf("status = %s, want a hermes.run for %s", text, id)
	}
	return st
}

// wireRunEvent is a run event as a client decodes it.
type wireRunEvent struct {
	Event        string    `json:"event"`
	RunID        string    `json:"run_id"`
	Timestamp    float64   `json:"timestamp"`
	Delta        *string   `json:"delta"`
	Tool         string    `json:"tool"`
	Preview      string    `json:"preview"`
	Duration     *float64  `json:"duration"`
	Error        any       `json:"error"`
	Output       *string   `json:"output"`
	Usage        *runUsage `json:"usage"`
	PendingSteer *string   `json:"pending_steer"`
	Accepted     *bool     `json:"accepted"`
}

// frame is one block of an event stream: an event (id, data) or a comment.
type frame struct {
	id, data, comment string
	ev                wireRunEvent
}

// eventReader reads a run's event stream frame by frame.
type eventReader struct {
	t      *testing.T
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
	torn   string // the bytes of a frame cut short, after next failed
}

// events opens a run's event stream, after lastID when it is not "".
func events(t *testing.T, ts *httptest.Server, id, lastID string) *eventReader {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var headers []string
	if lastID != "" {
		headers = []string{"Last-Event-ID", lastID}
	}
	resp := callContext(t, ctx, ts, http.MethodGet, "/v1/runs/"+id+"/events", "", headers...)
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET events: status %d: %s", resp.StatusCode, readAll(t, resp.Body))
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/event-stream" || cc != "no-cache" {
		t.Errorf("events headers: Content-Type %q, Cache-Control %q", ct, cc)
	}
	return &eventReader{t: t, resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}
}

// next reads a frame; at the end of the stream, or where it is cut, it
// returns the read error and keeps what it read of the frame in torn.
func (r *eventReader) next() (frame, error) {
	r.t.Helper()
	var f frame
	var raw strings.Builder
	for {
		line, err := r.br.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			r.torn = raw.String()
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f.data != "" {
				decodeStrict(r.t, f.data, &f.ev)
			}
			return f, nil
		case strings.HasPrefix(line, "id: "):
			f.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			f.data = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, ": "):
			f.comment = strings.TrimPrefix(line, ": ")
		default:
			r.t.Fatalf("unexpected line %q", line)
		}
	}
}

// must reads a frame, failing the test if the stream ends.
func (r *eventReader) must() frame {
	r.t.Helper()
	f, err := r.next()
	if err != nil {
		r.t.Fatalf("reading events: %v", err)
	}
	return f
}

// rest reads the frames up to the end of the stream, which must follow the
// ": stream closed" comment.
func (r *eventReader) rest() []frame {
	r.t.Helper()
	var frames []frame
	for {
		f := r.must()
		if f.comment == "stream closed" {
			break
		}
		frames = append(frames, f)
	}
	if f, err := r.next(); err != io.EOF {
		r.t.Errorf("after stream closed: %+v, %v; want the end", f, err)
	}
	return frames
}

// close disconnects.
func (r *eventReader) close() {
	r.cancel()
	r.resp.Body.Close()
}

// deltas joins the message deltas of frames.
func deltas(frames []frame) string {
	var b strings.Builder
	for _, f := range frames {
		if f.ev.Delta != nil {
			b.WriteString(*f.ev.Delta)
		}
	}
	return b.String()
}

func TestCapabilities(t *testing.T) {
	_, ts := start(t, Options{Key: "k", Runs: true})
	resp := call(t, ts, http.MethodGet, "/v1/capabilities", "")
	var caps struct {
		Object    string                                   `json:"object"`
		Features  map[string]any                           `json:"features"`
		Auth      struct{ Required bool }                  `json:"auth"`
		Endpoints map[string]struct{ Method, Path string } `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(readAll(t, resp.Body)), &caps); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities: %d (%v)", resp.StatusCode, err)
	}
	if caps.Object != "hermes.api_server.capabilities" || !caps.Auth.Required {
		t.Errorf("capabilities: object %q, auth required %v", caps.Object, caps.Auth.Required)
	}
	for _, f := range []string{"run_submission", "run_status", "run_events_sse", "run_steer", "run_stop"} {
		if caps.Features[f] != true {
			t.Errorf("feature %s = %v, want true", f, caps.Features[f])
		}
	}
	if e := caps.Endpoints["runs"]; e.Method != http.MethodPost || e.Path != "/v1/runs" {
		t.Errorf("endpoint runs = %+v", e)
	}
	if e := caps.Endpoints["run_steer"]; e.Method != http.MethodPost || e.Path != "/v1/runs/{run_id}/steer" {
		t.Errorf("endpoint run_steer = %+v", e)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	resp = call(t, ts, http.MethodGet, "/v1/capabilities", "", "Authorization", "Bearer wrong")
	expectError(t, resp, http.StatusUnauthorized, "invalid_api_key")
}

// Without Runs, the runs API is not there, as on an older server.
func TestRunsOffAnswer404(t *testing.T) {
	sim, ts := start(t, Options{Key: "k"})
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/capabilities"},
		{http.MethodPost, "/v1/runs"},
		{http.MethodGet, "/v1/runs/run_1"},
		{http.MethodGet, "/v1/runs/run_1/events"},
		{http.MethodPost, "/v1/runs/run_1/steer"},
		{http.MethodPost, "/v1/runs/run_1/stop"},
	} {
		expectError(t, call(t, ts, tc.method, tc.path, `{"input":"hi"}`), http.StatusNotFound, "not_found")
	}
	if st := sim.Stats(); st.Runs != 0 {
		t.Errorf("stats = %+v, want no run", st)
	}
}

func TestRunCompletes(t *testing.T) {
	now := time.Date(2025, 6, 7, 8, 9, 10, 250_000_000, time.UTC)
	sim, ts := start(t, Options{Key: "k", Runs: true, AnswerTokens: 3, Now: func() time.Time { return now }})
	started, resp := startRun(t, ts, `{"input":"hello","session_id":"s-1"}`)
	if started.Replayed || resp.Header.Get("Idempotency-Replayed") != "" || resp.Header.Get(SessionHeader) != "" {
		t.Errorf("a new run: replayed %v, headers %v", started.Replayed, resp.Header)
	}

	r := events(t, ts, started.RunID, "")
	first := r.must()
	wantFirst := "id: 1\ndata: " + `{"event":"message.delta","run_id":"` + started.RunID + `","timestamp":1749283750.25,"delta":"[Hermes "}` + "\n\n"
	if got := "id: " + first.id + "\ndata: " + first.data + "\n\n"; got != wantFirst {
		t.Errorf("first frame = %q, want %q", got, wantFirst)
	}
	frames := append([]frame{first}, r.rest()...)
	for i, f := range frames {
		if f.id != strconv.Itoa(i+1) || f.ev.RunID != started.RunID || f.ev.Timestamp != 1749283750.25 {
			t.Errorf("frame %d = %+v, want id %d of run %s at the clock's time", i, f, i+1, started.RunID)
		}
	}
	end := frames[len(frames)-1].ev
	const answer = `[Hermes simulator · turn 1] You said: "hello". This is simulated`
	if end.Event != "run.completed" || end.Output == nil || *end.Output != answer || deltas(frames) != answer {
		t.Fatalf("run ended with %+v after deltas %q, want run.completed with output %q", end, deltas(frames), answer)
	}
	if want := (runUsage{InputTokens: 1, OutputTokens: len(frames) - 1, TotalTokens: len(frames)}); end.Usage == nil || *end.Usage != want {
		t.Errorf("usage = %+v, want %+v", end.Usage, want)
	}

	st := runStatus(t, ts, started.RunID)
	if st.Status != "completed" || st.SessionID != "s-1" || st.Model != DefaultModel || st.CreatedAt != 1749283750.25 ||
		st.UpdatedAt != 1749283750.25 || st.LastEvent == nil || *st.LastEvent != "run.completed" ||
		st.Output == nil || *st.Output != answer || st.Usage == nil || *st.Usage != *end.Usage || st.Error != nil {
		t.Errorf("status = %+v", st)
	}
	if st := sim.Stats(); st.Runs != 1 || st.RunsCompleted != 1 || st.Turns["s-1"] != 1 || st.Requests != 0 {
		t.Errorf("stats = %+v, want one run completed, turn 1 of s-1, no chat request", st)
	}
}

// The body's session id is the run's (the session header is not read, as
// in the real server); history and instructions count as input.
func TestRunRequestFields(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, AnswerTokens: 1})
	started, _ := startRun(t, ts, `{"input":"hi there","session_id":"from-body","instructions":"be brief",`+
		`"conversation_history":[{"role":"user","content":"one two"},{"role":"assistant","content":"three"}],"model":"any"}`,
		SessionHeader, "from-header")
	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
	st := runStatus(t, ts, started.RunID)
	if st.SessionID != "from-body" || st.Usage == nil || st.Usage.InputTokens != 7 || st.Model != DefaultModel {
		t.Errorf("status = %+v, want session from-body, 7 input tokens, the server's model", st)
	}
	if got := sim.Stats().Turns; got["from-body"] != 1 || got["from-header"] != 0 {
		t.Errorf("turns = %v", got)
	}

	// Without any session, the run is its own session.
	started, _ = startRun(t, ts, `{"input":"hi"}`)
	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 2 })
	if st := runStatus(t, ts, started.RunID); st.SessionID != started.RunID {
		t.Errorf("session = %q, want the run's id %q", st.SessionID, started.RunID)
	}
}

func TestRunBadRequests(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true})
	for _, tc := range []struct {
		name, body, key string
		status          int
		code            string
	}{
		{"no input", `{"session_id":"s"}`, "", 400, "invalid_request"},
		{"empty input", `{"input":""}`, "", 400, "invalid_request"},
		{"not JSON", `{"input":`, "", 400, "invalid_json"},
		{"input not a string", `{"input":["hi"]}`, "", 400, "invalid_json"},
		{"bad history", `{"input":"hi","conversation_history":[{"role":"user","content":7}]}`, "", 400, "invalid_content"},
		{"empty key", `{"input":"hi"}`, "", 400, "invalid_idempotency_key"},
		{"long key", `{"input":"hi"}`, strings.Repeat("k", 256), 400, "invalid_idempotency_key"},
		{"key with a space", `{"input":"hi"}`, "a b", 400, "invalid_idempotency_key"},
		{"key not ASCII", `{"input":"hi"}`, "clé", 400, "invalid_idempotency_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.code == "invalid_idempotency_key" {
				headers = []string{IdempotencyKeyHeader, tc.key}
			}
			expectError(t, call(t, ts, http.MethodPost, "/v1/runs", tc.body, headers...), tc.status, tc.code)
		})
	}
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs", strings.Repeat(" ", MaxBodyBytes+1)), http.StatusRequestEntityTooLarge, "request_too_large")
	startRun(t, ts, `{"input":"hi"}`, IdempotencyKeyHeader, strings.Repeat("~", 255))
	if st := sim.Stats(); st.Runs != 1 {
		t.Errorf("stats = %+v, want only the good run", st)
	}

	_, ts = start(t, Options{Runs: true, FailStatus: 503})
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs", `{"input":"hi"}`), http.StatusServiceUnavailable, "simulated_failure")
	_, ts = start(t, Options{Runs: true})
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs", `{"input":"hi","session_id":"s"}`), http.StatusForbidden, "session_requires_auth")
}

func TestRunToolEvents(t *testing.T) {
	_, ts := start(t, Options{Key: "k", Runs: true, ToolProgress: true, Tools: []string{"web_search", "_memory", "terminal"},
		FirstTokenDelay: 30 * time.Millisecond, AnswerTokens: 1})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	frames := events(t, ts, started.RunID, "").rest()
	if len(frames) < 5 {
		t.Fatalf("frames = %+v, want four tool events and more", frames)
	}
	for i, want := range []struct{ event, tool, preview string }{
		{"tool.started", "web_search", "searching the web"},
		{"tool.completed", "web_search", ""},
		{"tool.started", "terminal", "running a command"},
		{"tool.completed", "terminal", ""},
	} {
		ev := frames[i].ev
		if ev.Event != want.event || ev.Tool != want.tool || ev.Preview != want.preview {
			t.Errorf("event %d = %s, want %s of %s", i, frames[i].data, want.event, want.tool)
		}
		if completed := want.event == "tool.completed"; completed != (ev.Duration != nil && *ev.Duration >= 0 && ev.Error == false) ||
			completed != strings.Contains(frames[i].data, `"error":false`) {
			t.Errorf("event %d = %s: a completed tool has a duration and error false, a started one neither", i, frames[i].data)
		}
	}
	for _, f := range frames[4:] {
		if f.ev.Event != "message.delta" && f.ev.Event != "run.completed" {
			t.Errorf("after the tools: %s", f.data)
		}
	}
	for _, f := range frames {
		if strings.Contains(f.data, "_memory") {
			t.Errorf("an internal tool was sent: %s", f.data)
		}
	}
}

func TestRunIdempotency(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, AnswerTokens: 1})
	first, _ := startRun(t, ts, `{"input":"hi","session_id":"s"}`, IdempotencyKeyHeader, "key-1")
	// The same request, spelled differently.
	again, resp := startRun(t, ts, "{ \"session_id\": \"s\",\n \"input\": \"hi\" }", IdempotencyKeyHeader, "key-1")
	if again.RunID != first.RunID || !again.Replayed || resp.Header.Get("Idempotency-Replayed") != "true" {
		t.Errorf("replay = %+v with header %q, want run %s replayed", again, resp.Header.Get("Idempotency-Replayed"), first.RunID)
	}
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs", `{"input":"bye","session_id":"s"}`, IdempotencyKeyHeader, "key-1"),
		http.StatusConflict, "idempotency_key_conflict")
	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
	if st := sim.Stats(); st.Runs != 1 || st.RunsReplayed != 1 || st.Turns["s"] != 1 {
		t.Errorf("stats = %+v, want one run, one replay, one turn of s", st)
	}

	other, _ := startRun(t, ts, `{"input":"hi","session_id":"s"}`, IdempotencyKeyHeader, "key-2")
	if other.RunID == first.RunID || other.Replayed {
		t.Errorf("another key = %+v, want a new run", other)
	}
}

// Without RunEventsOnce, a client that reconnects with the last id it read
// misses nothing and gets nothing twice, and any number of clients read.
func TestRunLastEventID(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, TokensPerSecond: 200, AnswerTokens: 20})
	started, _ := startRun(t, ts, `{"input":"hi"}`)

	watcher := events(t, ts, started.RunID, "")
	r := events(t, ts, started.RunID, "")
	read := []frame{r.must(), r.must(), r.must()}
	r.close()
	r = events(t, ts, started.RunID, read[2].id)
	read = append(read, r.rest()...)
	watched := watcher.rest()

	for i, f := range read {
		if f.id != strconv.Itoa(i+1) {
			t.Fatalf("frame %d has id %q, want %d: events lost or repeated", i, f.id, i+1)
		}
	}
	end := read[len(read)-1].ev
	if end.Event != "run.completed" || deltas(read) != *end.Output || len(watched) != len(read) || deltas(watched) != *end.Output {
		t.Errorf("reconnected deltas %q, watched %q, want %+v's output", deltas(read), deltas(watched), end)
	}

	// After the end, the events replay from where asked, then stop.
	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
	if frames := events(t, ts, started.RunID, strconv.Itoa(len(read)-1)).rest(); len(frames) != 1 || frames[0].ev.Event != "run.completed" {
		t.Errorf("replay of the last event = %+v", frames)
	}
	for _, id := range []string{"x", "-1", strconv.Itoa(len(read) + 1)} {
		expectError(t, call(t, ts, http.MethodGet, "/v1/runs/"+started.RunID+"/events", "", "Last-Event-ID", id),
			http.StatusBadRequest, "invalid_last_event_id")
	}
}

// With RunEventsOnce, as on the real server, a run's events have one reader.
func TestRunEventsOnce(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, RunEventsOnce: true, TokensPerSecond: 100, AnswerTokens: 20})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	r := events(t, ts, started.RunID, "")
	if f := r.must(); f.id != "" || f.ev.Event != "message.delta" {
		t.Errorf("first frame = %+v, want a delta without an id", f)
	}
	eventsPath := "/v1/runs/" + started.RunID + "/events"
	expectError(t, call(t, ts, http.MethodGet, eventsPath, ""), http.StatusNotFound, "run_not_found")
	r.close()
	expectError(t, call(t, ts, http.MethodGet, eventsPath, "", "Last-Event-ID", "1"), http.StatusNotFound, "run_not_found")

	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
	st := runStatus(t, ts, started.RunID)
	if st.Status != "completed" || st.Output == nil || !strings.HasPrefix(*st.Output, "[Hermes simulator · turn 1]") {
		t.Errorf("status = %+v, want the run completed with its output", st)
	}
}

// A connection cut anywhere, even inside a character, loses nothing to a
// client that reconnects after the last whole event.
func TestRunEventsCutAfter(t *testing.T) {
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	midCharacter := 0
	for cut := 340; cut < 380; cut++ {
		_, ts := start(t, Options{Key: "k", Runs: true, RunEventsCutAfter: cut, AnswerTokens: 10,
			Now: func() time.Time { return now }, Logger: discardLogger()})
		started, _ := startRun(t, ts, `{"input":"un café à 日本 s'il vous plaît"}`)
		var read []frame
		last, cuts := "", 0
		for len(read) == 0 || read[len(read)-1].ev.Event != "run.completed" {
			if cuts > 100 {
				t.Fatalf("cut %d: %d connections and still no end", cut, cuts)
			}
			r := events(t, ts, started.RunID, last)
			for {
				f, err := r.next()
				if err != nil {
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("cut %d: read error %v, want an unexpected EOF", cut, err)
					}
					if !utf8.ValidString(r.torn) {
						midCharacter++
					}
					cuts++
					break
				}
				if f.comment != "" {
					continue
				}
				read, last = append(read, f), f.id
				if f.ev.Event == "run.completed" {
					break
				}
			}
			r.close()
		}
		output := *read[len(read)-1].ev.Output
		if cuts == 0 || deltas(read) != output || !strings.Contains(output, "café à 日本") {
			t.Fatalf("cut %d: %d cuts, deltas %q, output %q", cut, cuts, deltas(read), output)
		}
	}
	if midCharacter == 0 {
		t.Errorf("no cut fell inside a character: the test does not cover that")
	}
}

func TestRunStop(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, FirstTokenDelay: time.Hour})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	if st := runStatus(t, ts, started.RunID); (st.Status != "queued" && st.Status != "running") || st.LastEvent != nil || st.Output != nil {
		t.Errorf("status of a thinking run = %+v", st)
	}
	stopPath := "/v1/runs/" + started.RunID + "/stop"
	resp := call(t, ts, http.MethodPost, stopPath, "")
	if body := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || body != `{"run_id":"`+started.RunID+`","status":"stopping"}` {
		t.Errorf("stop: %d %s", resp.StatusCode, body)
	}
	waitStats(t, sim, func(st Stats) bool { return st.RunsCancelled == 1 })
	if st := runStatus(t, ts, started.RunID); st.Status != "cancelled" || st.LastEvent == nil || *st.LastEvent != "run.cancelled" || st.Output != nil {
		t.Errorf("status of a stopped run = %+v", st)
	}
	if frames := events(t, ts, started.RunID, "").rest(); len(frames) != 1 || frames[0].ev.Event != "run.cancelled" {
		t.Errorf("events of a stopped run = %+v", frames)
	}
	expectError(t, call(t, ts, http.MethodPost, stopPath, ""), http.StatusConflict, "run_not_active")
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs/run_nope/stop", ""), http.StatusNotFound, "run_not_found")
	expectError(t, call(t, ts, http.MethodGet, "/v1/runs/run_nope", ""), http.StatusNotFound, "run_not_found")
	expectError(t, call(t, ts, http.MethodGet, "/v1/runs/run_nope/events", ""), http.StatusNotFound, "run_not_found")
}

// steerableRun starts a run of a server with ToolProgress and opens its
// events; it returns once the run is running, as its first event says.
func steerableRun(t *testing.T, ts *httptest.Server) (runStarted, *eventReader) {
	t.Helper()
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	r := events(t, ts, started.RunID, "")
	if f := r.must(); f.ev.Event != "tool.started" {
		t.Fatalf("first event = %+v, want tool.started", f)
	}
	return started, r
}

// A run steered while it runs ends its answer with the steer texts, a
// delta each; with SteerPending its agent leaves them pending instead.
func TestRunSteer(t *testing.T) {
	now := time.Date(2025, 6, 7, 8, 9, 10, 250_000_000, time.UTC)
	for _, tc := range []struct {
		name    string
		pending bool
	}{{"delivered", false}, {"SteerPending", true}} {
		t.Run(tc.name, func(t *testing.T) {
			sim, ts := start(t, Options{Key: "k", Runs: true, ToolProgress: true, FirstTokenDelay: 2 * time.Second,
				AnswerTokens: 1, SteerPending: tc.pending, Now: func() time.Time { return now }})
			started, r := steerableRun(t, ts)
			steerPath := "/v1/runs/" + started.RunID + "/steer"
			// The text is the first field not empty, trimmed.
			for _, body := range []string{`{"input":"  be brief\n"}`, `{"input":"","message":"in French","text":"not this"}`} {
				resp := call(t, ts, http.MethodPost, steerPath, body)
				want := `{"object":"hermes.run.steer","run_id":"` + started.RunID + `","accepted":true}`
				if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || got != want {
					t.Fatalf("steer %s: %d %s, want 200 %s", body, resp.StatusCode, got, want)
				}
			}

			frames := r.rest()
			var steered []string
			var deltaFrames []frame
			for _, f := range frames {
				switch f.ev.Event {
				case "run.steered":
					steered = append(steered, f.data)
				case "message.delta":
					deltaFrames = append(deltaFrames, f)
				}
			}
			wantSteered := `{"event":"run.steered","run_id":"` + started.RunID + `","timestamp":1749283750.25,"accepted":true}`
			if len(steered) != 2 || steered[0] != wantSteered || steered[1] != wantSteered {
				t.Errorf("run.steered events = %q, want two %s", steered, wantSteered)
			}
			end := frames[len(frames)-1].ev
			if end.Event != "run.completed" || end.Output == nil || deltas(frames) != *end.Output ||
				end.Usage == nil || end.Usage.OutputTokens != len(deltaFrames) {
				t.Fatalf("run ended with %+v after deltas %q", end, deltas(frames))
			}
			last := *deltaFrames[len(deltaFrames)-1].ev.Delta
			before := *deltaFrames[len(deltaFrames)-2].ev.Delta
			if tc.pending {
				if strings.Contains(*end.Output, "steered") || end.PendingSteer == nil || *end.PendingSteer != "be brief\nin French" {
					t.Errorf("output %q, pending steer %v: want the steer text pending, not in the output", *end.Output, end.PendingSteer)
				}
			} else if before != " [steered: be brief]" || last != " [steered: in French]" || end.PendingSteer != nil {
				t.Errorf("last deltas %q, %q, pending steer %v: want the steer text, a delta each", before, last, end.PendingSteer)
			}

			waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
			st := runStatus(t, ts, started.RunID)
			if st.Output == nil || *st.Output != *end.Output || (st.PendingSteer == nil) != (end.PendingSteer == nil) ||
				(st.PendingSteer != nil && *st.PendingSteer != *end.PendingSteer) {
				t.Errorf("status = %+v, want the output and pending steer of %+v", st, end)
			}
			if got := sim.Stats().RunsSteered; got != 2 {
				t.Errorf("RunsSteered = %d, want 2", got)
			}
			// A finished run takes no more.
			e := expectError(t, call(t, ts, http.MethodPost, steerPath, `{"input":"too late"}`), http.StatusConflict, "run_not_accepting_steer")
			if want := "Run is not currently accepting steer input: " + started.RunID; e.Error.Message != want {
				t.Errorf("message %q, want %q", e.Error.Message, want)
			}
		})
	}
}

func TestRunSteerRefused(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, ToolProgress: true, FirstTokenDelay: time.Hour})
	started, r := steerableRun(t, ts)
	steerPath := "/v1/runs/" + started.RunID + "/steer"
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs/run_nope/steer", `{"input":"hi"}`), http.StatusNotFound, "run_not_found")
	expectError(t, call(t, ts, http.MethodPost, steerPath, `{"input":`), http.StatusBadRequest, "invalid_json")
	for _, body := range []string{`{}`, `{"input":" \n\t"}`, `{"input":"","message":"","text":""}`} {
		e := expectError(t, call(t, ts, http.MethodPost, steerPath, body), http.StatusBadRequest, "invalid_steer_input")
		if want := "Missing non-empty steer text; expected 'input', 'message', or 'text'."; e.Error.Message != want {
			t.Errorf("steer %s: message %q, want %q", body, e.Error.Message, want)
		}
	}

	call(t, ts, http.MethodPost, "/v1/runs/"+started.RunID+"/stop", "")
	waitStats(t, sim, func(st Stats) bool { return st.RunsCancelled == 1 })
	// As on the real server, the run is checked before the body.
	for _, body := range []string{`{"input":"hi"}`, `{"input":`} {
		expectError(t, call(t, ts, http.MethodPost, steerPath, body), http.StatusConflict, "run_not_accepting_steer")
	}
	if frames := r.rest(); len(frames) != 1 || frames[0].ev.Event != "run.cancelled" {
		t.Errorf("events = %+v, want only run.cancelled", frames)
	}
	if got := sim.Stats().RunsSteered; got != 0 {
		t.Errorf("RunsSteered = %d, want 0", got)
	}
}

func TestRunAgentError(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, AgentError: true, AnswerTokens: 10})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	frames := events(t, ts, started.RunID, "").rest()
	end := frames[len(frames)-1].ev
	if end.Event != "run.failed" || end.Error == nil || end.Error == "" || len(frames) < 2 || end.Output != nil {
		t.Errorf("frames = %+v, want some deltas, then run.failed with an error", frames)
	}
	waitStats(t, sim, func(st Stats) bool { return st.RunsFailed == 1 })
	if st := runStatus(t, ts, started.RunID); st.Status != "failed" || st.Error == nil || *st.Error != end.Error || st.Output != nil {
		t.Errorf("status = %+v, want failed with %v", st, end.Error)
	}
}

func TestRunKeepalive(t *testing.T) {
	_, ts := start(t, Options{Key: "k", Runs: true, FirstTokenDelay: time.Hour, KeepaliveInterval: 5 * time.Millisecond})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	r := events(t, ts, started.RunID, "")
	if f := r.must(); f.comment != "keepalive" || f.data != "" {
		t.Errorf("frame during the silence = %+v, want a keepalive", f)
	}
	call(t, ts, http.MethodPost, "/v1/runs/"+started.RunID+"/stop", "")
	var last frame
	for _, f := range r.rest() {
		if f.comment == "" {
			last = f
		}
	}
	if last.ev.Event != "run.cancelled" {
		t.Errorf("last event = %+v, want run.cancelled", last)
	}
}

// A restarted server forgets runs started without a key and answers those
// started with one from their record: as they ended, or interrupted, with
// no events; their keys replay them.
func TestRestartRuns(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true})
	done, _ := startRun(t, ts, `{"input":"done"}`, IdempotencyKeyHeader, "key-done")
	waitStats(t, sim, func(st Stats) bool { return st.RunsCompleted == 1 })
	sim.opts.FirstTokenDelay = time.Hour
	going, _ := startRun(t, ts, `{"input":"going"}`, IdempotencyKeyHeader, "key-going")
	unkeyed, _ := startRun(t, ts, `{"input":"unkeyed"}`)
	completed := runStatus(t, ts, done.RunID)
	reading := events(t, ts, going.RunID, "")

	sim.RestartRuns()
	if f, err := reading.next(); err != io.EOF {
		t.Errorf("the events read across the restart: %+v, %v; want the stream ended, as the process did", f, err)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/runs/" + unkeyed.RunID},
		{http.MethodGet, "/v1/runs/" + done.RunID + "/events"},
		{http.MethodGet, "/v1/runs/" + going.RunID + "/events"},
	} {
		expectError(t, call(t, ts, tc.method, tc.path, ""), http.StatusNotFound, "run_not_found")
	}
	if st := runStatus(t, ts, done.RunID); st.Status != "completed" || st.Output == nil || *st.Output != *completed.Output {
		t.Errorf("the finished run after the restart: %+v, want it completed with %q", st, *completed.Output)
	}
	st := runStatus(t, ts, going.RunID)
	if st.Status != "interrupted" || st.Error == nil || *st.Error != interruptedError || st.LastEvent == nil || *st.LastEvent != "run.interrupted" {
		t.Errorf("the run cut by the restart: %+v, want it interrupted", st)
	}
	if again, _ := startRun(t, ts, `{"input":"going"}`, IdempotencyKeyHeader, "key-going"); again.RunID != going.RunID || !again.Replayed {
		t.Errorf("its key started %+v, want the interrupted run replayed", again)
	}
	if s := sim.Stats(); s.Runs != 3 || s.RunsCancelled != 0 {
		t.Errorf("stats %+v: want 3 runs, none counted cancelled by the restart", s)
	}
}

// Past MaxSessions runs, the oldest finished run goes first, then the
// oldest run, stopped; their idempotency keys go with them.
func TestRunsMaxSessions(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, MaxSessions: 2, FirstTokenDelay: time.Hour})
	a, _ := startRun(t, ts, `{"input":"a"}`)
	b, _ := startRun(t, ts, `{"input":"b"}`, IdempotencyKeyHeader, "key-b")
	call(t, ts, http.MethodPost, "/v1/runs/"+b.RunID+"/stop", "")
	waitStats(t, sim, func(st Stats) bool { return st.RunsCancelled == 1 })

	c, _ := startRun(t, ts, `{"input":"c"}`) // b, finished, goes
	expectError(t, call(t, ts, http.MethodGet, "/v1/runs/"+b.RunID, ""), http.StatusNotFound, "run_not_found")
	runStatus(t, ts, a.RunID)
	if other, _ := startRun(t, ts, `{"input":"other"}`, IdempotencyKeyHeader, "key-b"); other.Replayed { // a, the oldest, goes
		t.Errorf("b's key replayed %+v after b was forgotten", other)
	}
	expectError(t, call(t, ts, http.MethodGet, "/v1/runs/"+a.RunID, ""), http.StatusNotFound, "run_not_found")
	runStatus(t, ts, c.RunID)
	waitStats(t, sim, func(st Stats) bool { return st.RunsCancelled == 2 })
}

// Close stops the runs going, ends their event streams, and refuses new
// runs.
func TestRunsClose(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", Runs: true, FirstTokenDelay: time.Hour})
	started, _ := startRun(t, ts, `{"input":"hi"}`)
	r := events(t, ts, started.RunID, "")
	sim.Close()
	if st := sim.Stats(); st.RunsCancelled != 1 {
		t.Errorf("stats after Close = %+v, want the run cancelled", st)
	}
	if frames := r.rest(); len(frames) != 1 || frames[0].ev.Event != "run.cancelled" {
		t.Errorf("events = %+v, want run.cancelled", frames)
	}
	expectError(t, call(t, ts, http.MethodPost, "/v1/runs", `{"input":"hi"}`), http.StatusServiceUnavailable, "server_shutting_down")
}

func TestRunsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"RunEventsCutAfter", Options{Runs: true, RunEventsCutAfter: -1}},
		{"RunEventsOnce", Options{RunEventsOnce: true}},
		{"RunEventsCutAfter", Options{RunEventsCutAfter: 10}},
		{"SteerPending", Options{SteerPending: true}},
	} {
		if err := tc.opts.Validate(); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.opts, err, tc.name)
		}
	}
	if err := (Options{Runs: true, RunEventsOnce: true, RunEventsCutAfter: 100}).Validate(); err != nil {
		t.Errorf("good runs options: %v", err)
	}
}
