package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// start runs a simulator for opts on a real HTTP server; both are closed at
// the end of the test. Its logs go to the test's output.
func start(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sim := New(opts)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	t.Cleanup(sim.Close)
	return sim, ts
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func nan() float64 { return math.NaN() }

// waitStats waits, with a generous deadline, until cond holds.
func waitStats(t *testing.T, sim *Server, cond func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sim.Wait(ctx, cond); err != nil {
		t.Fatal(err)
	}
}

// chatBody is a minimal chat request.
func chatBody(stream bool, userText string) string {
	b, err := json.Marshal(map[string]any{
		"model":    "hermes-agent",
		"stream":   stream,
		"messages": []map[string]any{{"role": "user", "content": userText}},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// post sends a chat request with the given headers (name, value pairs).
func post(t *testing.T, ts *httptest.Server, body string, headers ...string) *http.Response {
	t.Helper()
	return send(t, t.Context(), ts, http.MethodPost, "/v1/chat/completions", body, append([]string{"Content-Type", "application/json"}, headers...)...)
}

// send makes a request with the given headers (name, value pairs, the
// later ones winning), its body closed when the test ends.
func send(t *testing.T, ctx context.Context, ts *httptest.Server, method, path, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sseEvent is one parsed server-sent event; a comment-only block has only
// Comment set.
type sseEvent struct {
	Event   string
	Data    string
	Comment string
}

// parseSSE splits a complete event-stream body into its blocks, failing the
// test on a block not terminated by a blank line.
func parseSSE(t *testing.T, body string) []sseEvent {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("stream does not end with a blank line: %q", tail(body))
	}
	var events []sseEvent
	for block := range strings.SplitSeq(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		var ev sseEvent
		for line := range strings.SplitSeq(block, "\n") {
			switch {
			case strings.HasPrefix(line, ": "):
				ev.Comment = strings.TrimPrefix(line, ": ")
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			default:
				t.Fatalf("unexpected SSE line %q in block %q", line, block)
			}
		}
		events = append(events, ev)
	}
	return events
}

func tail(s string) string {
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

// wireChunk is a chat.completion.chunk as a client decodes it.
type wireChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func decodeStrict(t *testing.T, data string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
}

// streamText concatenates the content deltas of a parsed stream.
func streamText(t *testing.T, events []sseEvent) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range events {
		if ev.Event != "" || ev.Data == "" || ev.Data == "[DONE]" || !strings.HasPrefix(ev.Data, "{\"id\"") {
			continue
		}
		var c wireChunk
		decodeStrict(t, ev.Data, &c)
		if len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil {
			b.WriteString(*c.Choices[0].Delta.Content)
		}
	}
	return b.String()
}

// errorBody is the OpenAI error shape.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// expectError checks a JSON error response's status and code.
func expectError(t *testing.T, resp *http.Response, status int, code string) errorBody {
	t.Helper()
	body := readAll(t, resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e errorBody
	decodeStrict(t, body, &e)
	if e.Error.Code != code {
		t.Errorf("error code = %q, want %q (body %s)", e.Error.Code, code, body)
	}
	if e.Error.Message == "" || e.Error.Type == "" || e.Error.Param != nil {
		t.Errorf("error body incomplete: %s", body)
	}
	return e
}
