package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFailStatus(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		for _, streaming := range []bool{false, true} {
			sim, ts := start(t, Options{FailStatus: status, AllowSessionWithoutKey: true})
			resp := post(t, ts, chatBody(streaming, "hi"), SessionHeader, "s")
			e := expectError(t, resp, status, "simulated_failure")
			if !strings.Contains(e.Error.Message, "simulator") {
				t.Errorf("message = %q, want it to say it is simulated", e.Error.Message)
			}
			if wantType := map[int]string{429: "invalid_request_error", 503: "server_error"}[status]; e.Error.Type != wantType {
				t.Errorf("type = %q, want %q", e.Error.Type, wantType)
			}
			if resp.Header.Get(SessionHeader) != "" {
				t.Errorf("failed answer carries session %q", resp.Header.Get(SessionHeader))
			}
			if st := sim.Stats(); st.Requests != 1 || st.Rejected != 1 || len(st.Turns) != 0 {
				t.Errorf("stats = %+v, want one rejected request and no turn", st)
			}
		}
	}
}

func TestFailStatusSparesHealthAndModels(t *testing.T) {
	_, ts := start(t, Options{FailStatus: 500})
	for _, path := range []string{"/health", "/v1/models"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status = %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestDisconnectAfterStreaming(t *testing.T) {
	sim, ts := start(t, Options{DisconnectAfter: 3})
	resp := post(t, ts, chatBody(true, "hello"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the cut stream: err = %v, want unexpected EOF", err)
	}
	events := parseSSE(t, string(body))
	if len(events) != 4 {
		t.Fatalf("events = %+v, want the role chunk and 3 content chunks", events)
	}
	if got := streamText(t, events); got != "[Hermes simulator · " {
		t.Errorf("text = %q, want the first 3 tokens", got)
	}
	if strings.Contains(string(body), "[DONE]") || strings.Contains(string(body), "finish_reason\":\"") {
		t.Errorf("cut stream has an ending: %q", body)
	}
	waitStats(t, sim, func(st Stats) bool { return st.Aborted == 1 })
	if st := sim.Stats(); st.Completed != 0 || st.ClientGone != 0 {
		t.Errorf("stats = %+v, a cut is neither completed nor the client's doing", st)
	}
}

func TestDisconnectAfterLongerThanAnswer(t *testing.T) {
	_, ts := start(t, Options{DisconnectAfter: 1000, AnswerTokens: 1})
	resp := post(t, ts, chatBody(true, "hello"))
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	events := parseSSE(t, string(body))
	if got := streamText(t, events); got != `[Hermes simulator · turn 1] You said: "hello". This` {
		t.Errorf("text = %q, want the whole answer before the cut", got)
	}
	if strings.Contains(string(body), "[DONE]") {
		t.Error("stream cut after the last token still sent [DONE]")
	}
}

func TestDisconnectAfterNonStreaming(t *testing.T) {
	sim, ts := start(t, Options{DisconnectAfter: 1})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody(false, "hi")))
	resp, err := ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want the connection dropped", resp.StatusCode)
	}
	waitStats(t, sim, func(st Stats) bool { return st.Aborted == 1 })
}

func TestMalformedLines(t *testing.T) {
	_, ts := start(t, Options{MalformedLines: true, AnswerTokens: 1, ToolProgress: true})
	_, events := stream(t, ts, "hello")
	// role, tool running, tool completed, malformed, content...
	bad := 0
	for i, ev := range events {
		if ev.Data == "[DONE]" || ev.Data == "" {
			continue
		}
		if !json.Valid([]byte(ev.Data)) {
			bad++
			if i != 3 || ev.Data != "{not json" {
				t.Errorf("malformed line %q at %d, want it at 3, right before the first content chunk", ev.Data, i)
			}
		}
	}
	if bad != 1 {
		t.Errorf("%d malformed data lines, want 1", bad)
	}
	if got := streamText(t, events); got != `[Hermes simulator · turn 1] You said: "hello". This` {
		t.Errorf("text = %q, want the answer intact around the bad line", got)
	}
	if events[len(events)-1].Data != "[DONE]" {
		t.Errorf("stream does not end with [DONE]")
	}
}

func TestAgentErrorStreaming(t *testing.T) {
	sim, ts := start(t, Options{AgentError: true, AnswerTokens: 3})
	_, events := stream(t, ts, "hello")
	// 11 tokens in all; the agent fails after 5.
	if got := streamText(t, events); got != "[Hermes simulator · turn 1] " {
		t.Errorf("partial text = %q", got)
	}
	if len(events) < 3 || events[len(events)-1].Data != "[DONE]" {
		t.Fatalf("events = %+v, want [DONE] last", events)
	}
	var c wireChunk
	decodeStrict(t, events[len(events)-2].Data, &c)
	if fr := c.Choices[0].FinishReason; fr == nil || *fr != "error" {
		t.Errorf("finish chunk = %s, want finish_reason error", events[len(events)-2].Data)
	}
	if c.Usage != nil {
		t.Errorf("failed answer reports usage %+v", c.Usage)
	}
	waitStats(t, sim, func(st Stats) bool { return st.Completed == 1 })
}

func TestAgentErrorNonStreaming(t *testing.T) {
	_, ts := start(t, Options{AgentError: true})
	expectError(t, post(t, ts, chatBody(false, "hi")), http.StatusInternalServerError, "agent_error")
}

func TestClientLeavesMidStream(t *testing.T) {
	// 1000 tokens at 50/s would take 20 s; the client leaves after one.
	sim, ts := start(t, Options{TokensPerSecond: 50, AnswerTokens: 1000})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := streamUntil(t, ctx, ts, `"content"`, "any content")
	defer resp.Body.Close()
	select {
	case <-sim.ClientGone():
		t.Fatal("server saw the client leave before it did")
	default:
	}
	cancel()
	resp.Body.Close()

	select {
	case <-sim.ClientGone():
	case <-time.After(10 * time.Second): // a deadline, not a synchronisation sleep
		t.Fatal("server did not notice the client leaving")
	}
	if st := sim.Stats(); st.ClientGone != 1 || st.Completed != 0 || st.Requests != 1 {
		t.Errorf("stats = %+v, want one request, gone, not completed", st)
	}
}

func TestClientLeavesWhileAgentThinks(t *testing.T) {
	// Nothing is written during the hour-long first-token delay, so only the
	// request context can tell the server that the client left.
	sim, ts := start(t, Options{FirstTokenDelay: time.Hour, ToolProgress: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := streamUntil(t, ctx, ts, `"status":"running"`, "the tool started")
	defer resp.Body.Close()
	cancel()
	waitStats(t, sim, func(st Stats) bool { return st.ClientGone == 1 })
}

func TestClientLeavesBeforeNonStreamingAnswer(t *testing.T) {
	sim, ts := start(t, Options{FirstTokenDelay: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody(false, "hi")))
	done := make(chan error, 1)
	go func() {
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitStats(t, sim, func(st Stats) bool { return len(st.Turns) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	waitStats(t, sim, func(st Stats) bool { return st.ClientGone == 1 })
	if st := sim.Stats(); st.Completed != 0 {
		t.Errorf("stats = %+v, want nothing completed", st)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	sim := New(Options{Logger: discardLogger()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := sim.Wait(ctx, func(st Stats) bool { return st.Completed > 0 })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	if err := sim.Wait(ctx, func(st Stats) bool { return st.Completed == 0 }); err != nil {
		t.Errorf("Wait on a condition already true = %v", err)
	}
}

// streamUntil asks for a streamed answer and reads it up to the first line
// holding marker; the stream ending before is fatal (what names the line).
func streamUntil(t *testing.T, ctx context.Context, ts *httptest.Server, marker, what string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody(true, "hi")))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			resp.Body.Close()
			t.Fatalf("stream ended before %s: %v", what, err)
		}
		if strings.Contains(line, marker) {
			return resp
		}
	}
}
