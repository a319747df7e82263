package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
)

// request is what the test server saw.
type request struct {
	Method string
	Path   string
	Header http.Header
	Raw    []byte
	Body   struct {
		Model    string         `json:"model"`
		Messages []chat.Message `json:"messages"`
		Stream   bool           `json:"stream"`
	}
}

// beforeRuns is a Hermes API server from before runs, or an
// OpenAI-compatible one: GET /v1/capabilities is 404, every other request
// goes to h.
func beforeRuns(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/capabilities" {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
}

// upstream is a Hermes API server stand-in that answers every request with
// the given status and body parts, flushing after each part.
func upstream(t *testing.T, status int, header http.Header, parts ...string) (*httptest.Server, <-chan request) {
	t.Helper()
	seen := make(chan request, 1)
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		var req request
		req.Method, req.Path, req.Header = r.Method, r.URL.Path, r.Header.Clone()
		req.Raw, _ = io.ReadAll(r.Body)
		if !json.Valid(req.Raw) {
			t.Errorf("request body is not JSON: %s", req.Raw)
		}
		_ = json.Unmarshal(req.Raw, &req.Body) // text-only bodies; image turns read Raw
		seen <- req
		for k, v := range header {
			w.Header()[k] = v
		}
		if status == http.StatusOK && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.WriteHeader(status)
		for _, p := range parts {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func source() chat.Source {
	return chat.Source{
		Platform: "matrix", ChatID: "!room:server.org", ChatName: "Test Room",
		ChatType: chat.Group, UserID: "@user:server.org", UserName: "testuser",
	}
}

func run(t *testing.T, b *Backend, turn agent.Turn) (agent.Result, []agent.Event) {
	t.Helper()
	var events []agent.Event
	res := b.Run(context.Background(), turn, func(e agent.Event) { events = append(events, e) })
	return res, events
}

func newBackend(url, key string) *Backend {
	return New(Config{URL: url, Key: key, ConnectTimeout: 5 * time.Second, IdleTimeout: time.Minute})
}

const okStream = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n"

// Seed: test_builds_correct_request.
func TestBuildsCorrectRequest(t *testing.T) {
	srv, seen := upstream(t, 200, nil,
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n"+
			"data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n"+
			"data: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, "test-key-123"), agent.Turn{
		SessionID: "session-abc",
		Message:   "How are you?",
		History: []chat.Message{
			{Role: chat.User, Content: "Hello"},
			{Role: chat.Assistant, Content: "Hi there!"},
		},
		Source: source(),
	})
	req := <-seen
	if req.Method != http.MethodPost || req.Path != "/v1/chat/completions" {
		t.Errorf("request = %s %s, want POST /v1/chat/completions", req.Method, req.Path)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer test-key-123" {
		t.Errorf("Authorization = %q", got)
	}
	if got := req.Header.Get("X-Hermes-Session-Id"); got != "session-abc" {
		t.Errorf("X-Hermes-Session-Id = %q", got)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	// Herald has no context prompt: who is speaking and where go in the
	// X-Hermes-* headers, so no system message is sent (the model server
	// backend sends its configured system prompt as one).
	want := []chat.Message{
		{Role: chat.User, Content: "Hello"},
		{Role: chat.Assistant, Content: "Hi there!"},
		{Role: chat.User, Content: "How are you?"},
	}
	if !reflect.DeepEqual(req.Body.Messages, want) {
		t.Errorf("messages = %+v, want %+v", req.Body.Messages, want)
	}
	if !req.Body.Stream || req.Body.Model != "hermes-agent" {
		t.Errorf("stream = %v, model = %q; want true, hermes-agent", req.Body.Stream, req.Body.Model)
	}
	if res.FinalResponse != "Hello world" || res.Err != nil {
		t.Errorf("final = %q, err = %v; want Hello world", res.FinalResponse, res.Err)
	}
}

func TestBodyHasExactlyModelMessagesStream(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	b := New(Config{URL: srv.URL + "/", Model: "my-agent", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	run(t, b, agent.Turn{SessionID: "s", Message: "hi", Source: source()})
	req := <-seen
	if req.Path != "/v1/chat/completions" {
		t.Errorf("path = %q: a trailing slash on the URL must not double", req.Path)
	}
	var body map[string]any
	if err := json.Unmarshal(req.Raw, &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 3 || body["model"] != "my-agent" || body["stream"] != true || body["messages"] == nil {
		t.Errorf("body = %s, want exactly model (my-agent), messages, stream", req.Raw)
	}
}

// Seed: test_handles_http_error.
func TestHandlesHTTPError(t *testing.T) {
	srv, _ := upstream(t, 401, nil, "Unauthorized: invalid API key")
	res, _ := run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "test", Message: "hi", Source: source()})
	if want := "⚠️ Proxy error (401): Unauthorized: invalid API key"; res.FinalResponse != want {
		t.Errorf("final = %q, want %q", res.FinalResponse, want)
	}
	if res.Err == nil {
		t.Errorf("err = %v; want an error", res.Err)
	}
}

// An error answer shows its status and a short summary: the JSON
// error.message, else a text body's first line, capped, never a web page.
// The whole (bounded) body goes to the debug log.
func TestHTTPErrorShowsJSONMessageAndIsCapped(t *testing.T) {
	srv, _ := upstream(t, 401, http.Header{"Content-Type": {"application/json"}},
		`{"error":{"message":"Invalid API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
	res, _ := run(t, newBackend(srv.URL, "wrong"), agent.Turn{SessionID: "s", Message: "hi", Source: source()})
	if want := "⚠️ Proxy error (401): Invalid API key"; res.FinalResponse != want {
		t.Errorf("final = %q, want %q", res.FinalResponse, want)
	}

	long := strings.Repeat("x", 1000)
	page := "<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1><pre>Traceback: secret=hunter2</pre></body></html>"
	for _, tc := range []struct {
		name, contentType, body, want string
	}{
		{"long", "text/plain", long, "⚠️ Proxy error (502): " + long[:159] + "…"},
		{"lines", "text/plain", "\nupstream timed out\n  at handler.go:12\n", "⚠️ Proxy error (502): upstream timed out"},
		{"controls", "text/plain", "bad\x1b[31m gateway\x00", "⚠️ Proxy error (502): bad[31m gateway"},
		{"web page", "text/html", page, "⚠️ Proxy error (502): Bad Gateway"},
		{"markup as text", "text/plain", page, "⚠️ Proxy error (502): Bad Gateway"},
		{"empty", "text/plain", "", "⚠️ Proxy error (502): Bad Gateway"},
	} {
		var logs bytes.Buffer
		srv, _ := upstream(t, 502, http.Header{"Content-Type": {tc.contentType}}, tc.body)
		b := New(Config{URL: srv.URL, ConnectTimeout: time.Second, IdleTimeout: time.Minute,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		res, _ := run(t, b, agent.Turn{SessionID: "s", Message: "hi", Source: source()})
		if res.FinalResponse != tc.want {
			t.Errorf("%s: final = %q, want %q", tc.name, res.FinalResponse, tc.want)
		}
		if logged := logs.String(); tc.body != "" && !strings.Contains(logged, "body="+tc.body) && !strings.Contains(logged, "body="+strconv.Quote(tc.body)) {
			t.Errorf("%s: the debug log lacks the body:\n%s", tc.name, logs.String())
		}
	}
}

// A server's error inside the stream is summarised like an error answer.
func TestStreamErrorIsSummarised(t *testing.T) {
	msg := "quota exceeded\n" + strings.Repeat("stack frame\n", 100_000) // over 1 MiB
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg}})
	srv, _ := upstream(t, 200, nil, okDelta("so far")+"data: "+string(body)+"\n\ndata: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if want := "so far\n\n⚠️ The answer was interrupted: server error in stream: quota exceeded"; res.FinalResponse != want {
		t.Errorf("final = %.200q, want %q", res.FinalResponse, want)
	}
}

func okDelta(text string) string {
	return "data: {\"choices\":[{\"delta\":{\"content\":\"" + text + "\"}}]}\n\n"
}

// Seed: test_handles_connection_error.
func TestHandlesConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	res, _ := run(t, newBackend("http://"+addr, ""), agent.Turn{SessionID: "test", Message: "hi", Source: source()})
	if !strings.HasPrefix(res.FinalResponse, "⚠️ Proxy connection error: ") {
		t.Errorf("final = %q, want a proxy connection error", res.FinalResponse)
	}
	if !strings.Contains(res.FinalResponse, "refused") || res.Err == nil {
		t.Errorf("final = %q, err = %v; want the reason and an error", res.FinalResponse, res.Err)
	}
}

// Seed: test_skips_tool_messages_in_history.
func TestSkipsToolMessagesInHistory(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	run(t, newBackend(srv.URL, ""), agent.Turn{
		SessionID: "test",
		Message:   "tell me more",
		History: []chat.Message{
			{Role: chat.User, Content: "search for X"},
			{Role: chat.Assistant, Content: ""}, // a tool-call turn without text
			{Role: chat.Tool, Content: "search results..."},
			{Role: chat.Assistant, Content: "Found results."},
		},
		Source: source(),
	})
	want := []chat.Message{
		{Role: chat.User, Content: "search for X"},
		{Role: chat.Assistant, Content: "Found results."},
		{Role: chat.User, Content: "tell me more"},
	}
	if got := (<-seen).Body.Messages; !reflect.DeepEqual(got, want) {
		t.Errorf("messages = %+v, want %+v", got, want)
	}
}

// Seed: test_result_shape_matches_run_agent. Both backends return the one
// agent.Result type, so its shape cannot differ between them; Hermes's
// messages, api_calls, tools and history_offset keys have no reader in
// Herald (the runner records the turn itself) and are not kept.
func TestResultShape(t *testing.T) {
	srv, _ := upstream(t, 200, nil, "data: {\"choices\":[{\"delta\":{\"content\":\"answer\"}}]}\n\ndata: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), agent.Turn{
		SessionID: "sess-123",
		Message:   "hi",
		History:   []chat.Message{{Role: chat.User, Content: "prev"}, {Role: chat.Assistant, Content: "ok"}},
		Source:    source(),
	})
	want := agent.Result{FinalResponse: "answer", Text: "answer", SessionID: "sess-123"}
	if res != want {
		t.Errorf("result = %+v, want %+v", res, want)
	}
}

// Seed: test_no_auth_header_without_key.
func TestNoAuthHeaderWithoutKey(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "test", Message: "hi", Source: source()})
	if h := (<-seen).Header; h.Values("Authorization") != nil {
		t.Errorf("Authorization = %q, want none", h.Values("Authorization"))
	}
}

// Seed: test_no_system_message_when_context_empty.
func TestNoSystemMessageWhenContextEmpty(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "test", Message: "hello", Source: source()})
	want := []chat.Message{{Role: chat.User, Content: "hello"}}
	if got := (<-seen).Body.Messages; !reflect.DeepEqual(got, want) {
		t.Errorf("messages = %+v, want %+v", got, want)
	}
}

func TestIdentityHeadersAreSentCleaned(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	src := source()
	src.UserName = "evil\r\nX-Injected: 1\x00"
	src.ChatType = chat.Thread
	src.ThreadID = "$thread:server.org"
	run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "s", Message: "hi", Source: src})
	h := (<-seen).Header
	want := map[string]string{
		"X-Hermes-User-Id":   "@user:server.org",
		"X-Hermes-User-Name": "evilX-Injected: 1",
		"X-Hermes-Chat-Id":   "!room:server.org",
		"X-Hermes-Chat-Name": "Test Room",
		"X-Hermes-Chat-Type": "thread",
		"X-Hermes-Thread-Id": "$thread:server.org",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if h.Get("X-Injected") != "" {
		t.Error("a header was smuggled through a user name")
	}
}

func TestNoThreadHeaderOutsideThreads(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "s", Message: "hi", Source: source()})
	if h := (<-seen).Header; h.Values("X-Hermes-Thread-Id") != nil {
		t.Errorf("X-Hermes-Thread-Id = %q, want absent", h.Values("X-Hermes-Thread-Id"))
	}
}

func TestRotatedSessionIDIsAdopted(t *testing.T) {
	srv, _ := upstream(t, 200, http.Header{"X-Hermes-Session-Id": {"20260623_195426_23257f"}}, okStream)
	res, _ := run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "20260101_000000_aaaaaa", Message: "hi", Source: source()})
	if res.SessionID != "20260623_195426_23257f" {
		t.Errorf("session = %q, want the rotated id", res.SessionID)
	}

	same, _ := upstream(t, 200, http.Header{"X-Hermes-Session-Id": {"20260101_000000_aaaaaa"}}, okStream)
	res, _ = run(t, newBackend(same.URL, ""), agent.Turn{SessionID: "20260101_000000_aaaaaa", Message: "hi", Source: source()})
	if res.SessionID != "20260101_000000_aaaaaa" {
		t.Errorf("session = %q, want it kept", res.SessionID)
	}

	// An id that could not be sent back as it is (too long for a header
	// value) would be another session: the current one is kept.
	huge, _ := upstream(t, 200, http.Header{"X-Hermes-Session-Id": {strings.Repeat("s", 2000)}}, okStream)
	res, _ = run(t, newBackend(huge.URL, ""), agent.Turn{SessionID: "20260101_000000_aaaaaa", Message: "hi", Source: source()})
	if res.SessionID != "20260101_000000_aaaaaa" {
		t.Errorf("session = %.40q…, want the current one kept", res.SessionID)
	}
}

func TestPingUsesHealthWithTheKey(t *testing.T) {
	var auth string
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		auth = r.Header.Get("Authorization")
		_, _ = io.WriteString(w, `{"status":"ok","platform":"hermes-agent"}`)
	}))
	defer srv.Close()
	if err := newBackend(srv.URL, "k").Ping(context.Background()); err != nil || auth != "Bearer k" {
		t.Errorf("ping = %v, auth = %q", err, auth)
	}
	down := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	if err := newBackend(down.URL, "").Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("ping of a failing server = %v, want the status", err)
	}
}

func TestImagesGoAsImageURLParts(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	turn := agent.Turn{SessionID: "s", Message: "what is this?", Source: source(),
		Images: []chat.Attachment{{Kind: "image", MIMEType: "image/png", Data: []byte{0x89, 'P', 'N', 'G'}}}}
	run(t, newBackend(srv.URL, ""), turn)
	var body struct {
		Messages []struct {
			Role    string `json:"role"`
			Content []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				ImageURL struct {
					URL string `json:"url"`
				} `json:"image_url"`
			} `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal((<-seen).Raw, &body); err != nil {
		t.Fatal(err)
	}
	parts := body.Messages[len(body.Messages)-1].Content
	if len(parts) != 2 || parts[0].Type != "text" || parts[0].Text != "what is this?" ||
		parts[1].Type != "image_url" || parts[1].ImageURL.URL != "data:image/png;base64,iVBORw==" {
		t.Errorf("content parts = %+v", parts)
	}
}
