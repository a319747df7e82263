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

func TestAnswerBytes(t *testing.T) {
	const n = 3*answerPiece + 100
	sim, ts := start(t, Options{AnswerBytes: n})
	_, events := stream(t, ts, "hi")
	text := streamText(t, events)
	if len(text) != n || !strings.HasPrefix(text, "This is simulated filler text") || strings.Count(text, "\n") != 3 {
		t.Errorf("streamed %d bytes (%d line breaks), want %d bytes of filler with one break per %d: %.80q", len(text), strings.Count(text, "\n"), n, answerPiece, text)
	}
	// role, 4 content chunks, finish, [DONE]
	if len(events) != 7 || events[len(events)-1].Data != "[DONE]" {
		t.Errorf("%d events, want 7 ending in [DONE]", len(events))
	}

	resp := post(t, ts, chatBody(false, "hi"))
	var c struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Content != text {
		t.Errorf("non-streaming answer differs from the streamed one")
	}
	waitStats(t, sim, func(st Stats) bool { return st.Completed == 2 })
}

func TestThink(t *testing.T) {
	_, ts := start(t, Options{Think: "The user greets me.", AnswerTokens: 1})
	_, events := stream(t, ts, "hello")
	want := "<think>\nThe user greets me.\n</think>\n\n[Hermes simulator · turn 1] You said: \"hello\". This"
	if got := streamText(t, events); got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	// The block is streamed word by word, like the answer.
	if n := strings.Count(streamText(t, events[:4]), "think>"); n != 1 {
		t.Errorf("the first chunks hold %d think tags, want only the opening one", n)
	}
}

func TestEndlessEventBytes(t *testing.T) {
	const n = 200<<10 + 7
	sim, ts := start(t, Options{EndlessEventBytes: n})
	resp := post(t, ts, chatBody(true, "hello"))
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the stream: err = %v, want the connection cut", err)
	}
	head, endless, ok := strings.Cut(string(body), "\n\ndata: xxx")
	if !ok {
		t.Fatalf("no endless event in %q", tail(string(body)))
	}
	if got := streamText(t, parseSSE(t, head+"\n\n")); got != "[Hermes " {
		t.Errorf("text before the endless event = %q, want the first token", got)
	}
	endless = "data: xxx" + endless
	if len(endless) != n || strings.Contains(endless, "\n\n") {
		t.Errorf("endless event of %d bytes (blank line: %v), want %d bytes of data lines without one",
			len(endless), strings.Contains(endless, "\n\n"), n)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(endless, "\n"), "\n") {
		if !strings.HasPrefix(line, "data: ") || len(line) > 1<<10 {
			t.Fatalf("line %.40q… (%d bytes), want data lines of 1 KiB at most", line, len(line))
		}
	}
	waitStats(t, sim, func(st Stats) bool { return st.Aborted == 1 })
}

func TestJSONAnswerBytes(t *testing.T) {
	const n = 2*answerPiece + 3
	sim, ts := start(t, Options{JSONAnswerBytes: n})
	for _, streaming := range []bool{true, false} {
		resp := post(t, ts, chatBody(streaming, "hi"))
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("stream %v: Content-Type = %q, want application/json", streaming, ct)
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Message      struct{ Role, Content string } `json:"message"`
				FinishReason string                         `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "chat.completion" || len(c.Choices) != 1 || len(c.Choices[0].Message.Content) != n || c.Choices[0].FinishReason != "stop" {
			t.Errorf("stream %v: object %q, %d choices, content of %d bytes; want a chat.completion of %d",
				streaming, c.Object, len(c.Choices), len(c.Choices[0].Message.Content), n)
		}
	}
	waitStats(t, sim, func(st Stats) bool { return st.Completed == 2 })
}

func TestHTMLAnswer(t *testing.T) {
	_, ts := start(t, Options{HTMLAnswer: true})
	resp := post(t, ts, chatBody(true, "hi"))
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Errorf("status %d, Content-Type %q, body %.40q; want a 200 web page", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// Every request is redirected with its path, before the key is checked.
func TestRedirectTo(t *testing.T) {
	sim, ts := start(t, Options{Key: "k", RedirectTo: "http://127.0.0.1:9/moved/"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/v1/chat/completions", "/health", "/v1/models"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(chatBody(true, "hi")))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || loc != "http://127.0.0.1:9/moved"+path {
			t.Errorf("%s: %d to %q, want 307 to the new base with the path", path, resp.StatusCode, loc)
		}
	}
	if st := sim.Stats(); st.Requests != 1 || st.Rejected != 0 || len(st.Turns) != 0 {
		t.Errorf("stats = %+v, want the chat request counted and nothing else", st)
	}
}
