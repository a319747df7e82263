package completions

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/sse"
	"github.com/herald-chat/herald/internal/texts"
)

func TestLimitDefaultsToTheReaders(t *testing.T) {
	if got := (&Client{}).limit(); got != sse.DefaultLimit {
		t.Errorf("limit of a Client without MaxEventBytes = %d, want sse.DefaultLimit", got)
	}
	if got := (&Client{Limits: Limits{MaxEventBytes: 5}}).limit(); got != 5 {
		t.Errorf("limit = %d, want MaxEventBytes", got)
	}
}

// A JSON answer of exactly the bound is read; one byte more is not.
func TestJSONAnswerBound(t *testing.T) {
	const answer = `{"choices":[{"message":{"content":"hello"},"finish_reason":"stop"}]}`
	for _, tc := range []struct {
		limit   int
		tooLong bool
	}{{len(answer), false}, {len(answer) - 1, true}} {
		st := &stream{emit: func(agent.Event) {}, log: slog.New(slog.DiscardHandler), limit: tc.limit}
		err := st.readCompletion(strings.NewReader(answer))
		if tc.tooLong != errors.Is(err, agent.ErrTooLarge) || (!tc.tooLong && (err != nil || st.text.String() != "hello")) {
			t.Errorf("limit %d: err = %v, text %q", tc.limit, err, st.text.String())
		}
	}
}

// The error, which the gateway logs as a warning, names what to raise.
func TestTooLargeNamesTheSetting(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Options{EndlessEventBytes: 300 << 10, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL + "/v1/chat/completions", Server: "Proxy", HTTP: NewHTTPClient(time.Second),
		IdleTimeout: time.Minute, Limits: Limits{MaxEventBytes: 100 << 10}}
	res, _ := c.Run(context.Background(), Call{}, func(agent.Event) {})
	if !errors.Is(res.Err, agent.ErrTooLarge) || !strings.Contains(res.Err.Error(), "gateway.max_event_bytes") {
		t.Errorf("err = %v, want it too large, naming gateway.max_event_bytes", res.Err)
	}
}

func TestErrorSummaryOfOddStatuses(t *testing.T) {
	for _, tc := range []struct {
		status int
		header http.Header
		want   string
	}{
		{599, nil, "unknown status"},
		{302, nil, "Found; redirects are not followed"},
		{301, http.Header{"Location": {"https://new.example/v1"}}, "Moved Permanently to https://new.example; redirects are not followed"},
		{307, http.Header{"Location": {"https://user:pass@new.example:8443/v1?sig=secret"}}, "Temporary Redirect to https://new.example:8443; redirects are not followed"},
		{308, http.Header{"Location": {"/v2/chat"}}, "Permanent Redirect; redirects are not followed"},
		{500, http.Header{"Content-Type": {"application/json"}}, "Internal Server Error"},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: tc.header}
		if got := errorSummary(resp, resp.Header.Get("Content-Type"), []byte(`{"error":{}}`)); got != tc.want {
			t.Errorf("%d: %q, want %q", tc.status, got, tc.want)
		}
	}
}

// Ollama's error body is {"error": "..."}; OpenAI's {"error": {"message": "..."}}.
func TestErrorSummaryOfJSONShapes(t *testing.T) {
	resp := &http.Response{StatusCode: 404}
	for body, want := range map[string]string{
		`{"error":"model 'llama9' not found"}`:      "model 'llama9' not found",
		`{"error":{"message":"model not found"}}`:   "model not found",
		`{"error":{"message":"<b>down</b>"}}`:       "Not Found",
		`{"detail":"Not Found"}`:                    "Not Found",
		`{"error":{"message":"a\nb","code":"x"}}`:   "a",
		`not json: {"error":{"message":"ignored"}}`: `not json: {"error":{"message":"ignored"}}`,
	} {
		if got := errorSummary(resp, "application/json", []byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

// An answer longer than MaxAnswerBytes is cut there with a note, and the
// rest is not read: the server sees Herald leave (32 MiB is more than
// loopback's socket buffers hold, so it cannot finish first).
func TestLongAnswerIsCutWithANote(t *testing.T) {
	simulator := sim.New(sim.Options{AnswerBytes: 32 << 20, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(simulator)
	defer srv.Close()
	const limit = 1 << 20
	c := &Client{Endpoint: srv.URL + "/v1/chat/completions", Server: "Proxy", HTTP: NewHTTPClient(time.Second),
		IdleTimeout: time.Minute, Limits: Limits{MaxAnswerBytes: limit}}
	streamed := 0
	res, _ := c.Run(context.Background(), Call{Turn: agent.Turn{Message: "hi"}}, func(ev agent.Event) { streamed += len(ev.Text) })
	var tooLong *agent.AnswerTooLongError
	if !errors.As(res.Err, &tooLong) || tooLong.Limit != limit {
		t.Fatalf("err = %v, want the answer cut at %d bytes", res.Err, limit)
	}
	if len(res.Text) != limit || streamed != limit {
		t.Errorf("kept %d bytes and streamed %d, want %d", len(res.Text), streamed, limit)
	}
	if !strings.HasSuffix(res.FinalResponse, texts.AnswerTruncated(limit)) || !strings.HasPrefix(res.FinalResponse, res.Text) {
		t.Errorf("final text ends %q, want the answer and the truncation note", res.FinalResponse[len(res.FinalResponse)-80:])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := simulator.Wait(ctx, func(s sim.Stats) bool { return s.ClientGone == 1 }); err != nil {
		t.Errorf("the server never saw Herald leave: %+v", simulator.Stats())
	}
}

// The cut never splits a character.
func TestAnswerCutKeepsCharactersWhole(t *testing.T) {
	st := &stream{emit: func(agent.Event) {}, log: slog.New(slog.DiscardHandler), limit: 1 << 10, maxText: 3}
	err := st.readEvents(strings.NewReader("data: {\"choices\":[{\"delta\":{\"content\":\"éé\"}}]}\n\n"), true)
	var tooLong *agent.AnswerTooLongError
	if !errors.As(err, &tooLong) || st.text.String() != "é" {
		t.Errorf("kept %q, err %v; want one whole é and the cut reported", st.text.String(), err)
	}
}

// A tool progress event's fields are cut to a few hundred bytes: the
// status line shows a few words, and a running tool is remembered.
func TestToolProgressFieldsAreBounded(t *testing.T) {
	var got *agent.ToolProgress
	st := &stream{emit: func(ev agent.Event) { got = ev.Tool }, log: slog.New(slog.DiscardHandler)}
	long := strings.Repeat("é", 100<<10)
	st.toolProgress([]byte(`{"tool":"web_search","label":"` + long + `","toolCallId":"` + long + `","status":"running"}`))
	if got == nil {
		t.Fatal("the event was not passed on")
	}
	if len(got.Label) > MaxToolField || len(got.ToolCallID) > MaxToolField || !strings.HasPrefix(long, got.Label) || got.Tool != "web_search" {
		t.Errorf("tool progress kept %d bytes of label and %d of id; want at most %d, whole characters", len(got.Label), len(got.ToolCallID), MaxToolField)
	}
}
