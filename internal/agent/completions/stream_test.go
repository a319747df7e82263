package completions

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/sse"
)

// simulatorAnswer is a streamed answer of the simulator: a role chunk, tool
// progress events, tokens content chunks, the finish chunk with usage and
// [DONE].
func simulatorAnswer(tb testing.TB, tokens int) []byte {
	tb.Helper()
	s := sim.New(sim.Options{AnswerTokens: tokens, ToolProgress: true})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"hermes-agent","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("simulator answered %d", rec.Code)
	}
	return rec.Body.Bytes()
}

// One chunk value serves every event of a stream: nothing of an earlier
// chunk (a choice's finish reason or text) may show through a later one, and [DONE], spaces around it or not, ends the
// stream even with more after it.
func TestReadEventsReusesNothingOfEarlierChunks(t *testing.T) {
	const input = `data: {"choices":[{"delta":{"content":"a"},"finish_reason":"length"},{"delta":{"content":"b"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":"c"}}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}` + "\n\n" +
		`data: {"choices":[{"delta":{}}]}` + "\n\n" +
		`data: {"choices":[{"delta":{"content":` + "\n\n" + // malformed: skipped
		`data: {"choices":[{"delta":{"content":"d"}}]}` + "\n\n" +
		"data:  [DONE] \n\n" +
		`data: {"choices":[{"delta":{"content":"after the end"}}]}` + "\n\n"
	var got []agent.Event
	st := &stream{emit: func(e agent.Event) { got = append(got, e) }, log: slog.New(slog.DiscardHandler), limit: sse.DefaultLimit}
	if err := st.readEvents(strings.NewReader(input), true); err != nil {
		t.Fatalf("err = %v", err)
	}
	want := []agent.Event{
		{Kind: agent.EventDelta, Text: "a"},
		{Kind: agent.EventDelta, Text: "b"},
		{Kind: agent.EventDelta, Text: "c"},
		{Kind: agent.EventDelta, Text: "d"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %+v\nwant %+v", got, want)
	}
	if st.text.String() != "abcd" || st.finish != "length" {
		t.Errorf("text %q, finish %q", st.text.String(), st.finish)
	}
}

// BenchmarkReadEvents measures what the gateway spends per streamed answer
// on reading the agent's events: SSE parsing, JSON decoding, and the text.
func BenchmarkReadEvents(b *testing.B) {
	input := simulatorAnswer(b, 1000)
	log := slog.New(slog.DiscardHandler)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		st := &stream{emit: func(agent.Event) {}, log: log, limit: sse.DefaultLimit}
		if err := st.readEvents(bytes.NewReader(input), true); err != nil {
			b.Fatal(err)
		}
		if st.finish != "stop" {
			b.Fatalf("finish = %q", st.finish)
		}
	}
}
