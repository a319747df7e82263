package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var sessionIDShape = regexp.MustCompile(`^\d{8}_\d{6}_[0-9a-f]{6}$`)

// stream posts a streaming chat request and returns the response and its
// parsed events.
func stream(t *testing.T, ts *httptest.Server, userText string, headers ...string) (*http.Response, []sseEvent) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(chatBody(true, userText)))
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
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readAll(t, resp.Body))
	}
	return resp, parseSSE(t, readAll(t, resp.Body))
}

func TestStreamExactSequence(t *testing.T) {
	now := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	sim, ts := start(t, Options{Key: "k", AnswerTokens: 3, Now: func() time.Time { return now }})
	resp, events := stream(t, ts, "hello", "Authorization", "Bearer k", SessionHeader, "s-1")

	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		SessionHeader:       "s-1",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}

	wantTokens := []string{"[Hermes ", "simulator ", "· ", "turn ", "1] ", "You ", "said: ", `"hello". `, "This ", "is ", "simulated"}
	// role chunk, one chunk per token, finish chunk, [DONE].
	if len(events) != 1+len(wantTokens)+2 {
		t.Fatalf("got %d events, want %d: %+v", len(events), len(wantTokens)+3, events)
	}
	if last := events[len(events)-1]; last != (sseEvent{Data: "[DONE]"}) {
		t.Errorf("last event = %+v, want data: [DONE]", last)
	}
	var id string
	for i, ev := range events[:len(events)-1] {
		if ev.Event != "" || ev.Comment != "" {
			t.Fatalf("event %d = %+v, want a plain data event", i, ev)
		}
		var c wireChunk
		decodeStrict(t, ev.Data, &c)
		if i == 0 {
			id = c.ID
		}
		if !strings.HasPrefix(c.ID, "chatcmpl-") || c.ID != id || c.Object != "chat.completion.chunk" ||
			c.Created != now.Unix() || c.Model != "hermes-agent" || len(c.Choices) != 1 || c.Choices[0].Index != 0 {
			t.Fatalf("chunk %d has wrong envelope: %s", i, ev.Data)
		}
		ch := c.Choices[0]
		switch {
		case i == 0:
			if ch.Delta.Role == nil || *ch.Delta.Role != "assistant" || ch.Delta.Content != nil || ch.FinishReason != nil || c.Usage != nil {
				t.Errorf("first chunk = %s, want only the assistant role", ev.Data)
			}
		case i <= len(wantTokens):
			if ch.Delta.Content == nil || *ch.Delta.Content != wantTokens[i-1] || ch.Delta.Role != nil || ch.FinishReason != nil || c.Usage != nil {
				t.Errorf("chunk %d = %s, want content %q", i, ev.Data, wantTokens[i-1])
			}
			if !strings.Contains(ev.Data, `"finish_reason":null`) {
				t.Errorf("chunk %d = %s, want an explicit null finish_reason", i, ev.Data)
			}
		default:
			if !strings.Contains(ev.Data, `"delta":{}`) || ch.FinishReason == nil || *ch.FinishReason != "stop" {
				t.Errorf("finish chunk = %s, want an empty delta and finish_reason stop", ev.Data)
			}
			if c.Usage == nil || *c.Usage != (usage{PromptTokens: 1, CompletionTokens: len(wantTokens), TotalTokens: 1 + len(wantTokens)}) {
				t.Errorf("finish chunk usage = %+v", c.Usage)
			}
		}
	}
	waitStats(t, sim, func(st Stats) bool { return st.Completed == 1 })
	if st := sim.Stats(); st.Requests != 1 || st.ClientGone != 0 || st.Turns["s-1"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestStreamGeneratesSessionID(t *testing.T) {
	now := time.Date(2025, 12, 31, 23, 59, 58, 0, time.UTC)
	sim, ts := start(t, Options{AllowSessionWithoutKey: true, Now: func() time.Time { return now }})
	resp, events := stream(t, ts, "hi")
	id := resp.Header.Get(SessionHeader)
	if !sessionIDShape.MatchString(id) || !strings.HasPrefix(id, "20251231_235958_") {
		t.Fatalf("generated session id %q, want 20251231_235958_ and 6 hex digits", id)
	}
	if !strings.HasPrefix(streamText(t, events), "[Hermes simulator · turn 1]") {
		t.Errorf("text = %q, want turn 1", streamText(t, events))
	}
	resp, events = stream(t, ts, "again", SessionHeader, id)
	if got := resp.Header.Get(SessionHeader); got != id {
		t.Errorf("continued session header = %q, want %q", got, id)
	}
	if !strings.HasPrefix(streamText(t, events), "[Hermes simulator · turn 2]") {
		t.Errorf("text = %q, want turn 2 when continuing the generated id", streamText(t, events))
	}
	if st := sim.Stats(); st.Turns[id] != 2 || len(st.Turns) != 1 {
		t.Errorf("turns = %v, want {%s: 2}", st.Turns, id)
	}
}

func TestSessionContinuity(t *testing.T) {
	sim, ts := start(t, Options{Key: "k"})
	auth := []string{"Authorization", "Bearer k"}
	turnOf := func(text string) string {
		m := regexp.MustCompile(`^\[Hermes simulator · turn (\d+)\] `).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("answer %q does not start with the simulator's turn marker", text)
		}
		return m[1]
	}
	var got []string
	for _, session := range []string{"a", "a", "b", "a", "", ""} {
		headers := auth
		if session != "" {
			headers = append(slices.Clone(auth), SessionHeader, session)
		}
		msg := strings.TrimSpace("turn for " + session)
		_, events := stream(t, ts, msg, headers...)
		text := streamText(t, events)
		if !strings.Contains(text, `You said: "`+msg+`".`) {
			t.Errorf("answer %q does not echo the message", text)
		}
		got = append(got, turnOf(text))
	}
	if want := []string{"1", "2", "1", "3", "1", "1"}; !slices.Equal(got, want) {
		t.Errorf("turns = %v, want %v", got, want)
	}
	st := sim.Stats()
	if st.Turns["a"] != 3 || st.Turns["b"] != 1 || len(st.Turns) != 4 {
		t.Errorf("stats turns = %v, want a:3, b:1 and two fresh sessions", st.Turns)
	}
}

func TestRotateSessionID(t *testing.T) {
	sim, ts := start(t, Options{AllowSessionWithoutKey: true, RotateSessionID: true})
	resp, events := stream(t, ts, "one", SessionHeader, "old")
	first := resp.Header.Get(SessionHeader)
	if first == "old" || !sessionIDShape.MatchString(first) {
		t.Fatalf("rotated session id = %q, want a new generated id", first)
	}
	if !strings.HasPrefix(streamText(t, events), "[Hermes simulator · turn 1]") {
		t.Errorf("text = %q, want turn 1", streamText(t, events))
	}

	resp, events = stream(t, ts, "two", SessionHeader, first)
	second := resp.Header.Get(SessionHeader)
	if second == first || !sessionIDShape.MatchString(second) {
		t.Errorf("second rotation gave %q after %q, want another new id", second, first)
	}
	if !strings.HasPrefix(streamText(t, events), "[Hermes simulator · turn 2]") {
		t.Errorf("text = %q, want the turn counter carried over (turn 2)", streamText(t, events))
	}

	_, events = stream(t, ts, "stale", SessionHeader, "old")
	if !strings.HasPrefix(streamText(t, events), "[Hermes simulator · turn 1]") {
		t.Errorf("text = %q, want the rotated-away id to start over", streamText(t, events))
	}
	if st := sim.Stats(); st.Turns[second] != 2 || st.Turns[first] != 0 {
		t.Errorf("turns = %v, want %s: 2 and %s gone", st.Turns, second, first)
	}
}

func TestToolProgressEvents(t *testing.T) {
	_, ts := start(t, Options{ToolProgress: true, AnswerTokens: 1})
	_, events := stream(t, ts, "search something")
	if len(events) < 4 {
		t.Fatalf("events = %+v", events)
	}
	type progress struct {
		Tool       string `json:"tool"`
		Emoji      string `json:"emoji"`
		Label      string `json:"label"`
		ToolCallID string `json:"toolCallId"`
		Status     string `json:"status"`
	}
	var running, completed progress
	if events[1].Event != ToolProgressEvent || events[2].Event != ToolProgressEvent {
		t.Fatalf("events 1 and 2 = %+v, %+v; want two %s events after the role chunk", events[1], events[2], ToolProgressEvent)
	}
	decodeStrict(t, events[1].Data, &running)
	decodeStrict(t, events[2].Data, &completed)
	if running.Tool != "web_search" || running.Emoji != "🔍" || running.Label == "" || running.Status != "running" || !strings.HasPrefix(running.ToolCallID, "call_") {
		t.Errorf("running event = %s", events[1].Data)
	}
	if completed.Tool != "web_search" || completed.Status != "completed" || completed.ToolCallID != running.ToolCallID {
		t.Errorf("completed event = %s, want the same call id as %s", events[2].Data, events[1].Data)
	}
	if strings.Contains(events[2].Data, "emoji") {
		t.Errorf("completed event = %s, want no emoji", events[2].Data)
	}
	var c wireChunk
	decodeStrict(t, events[3].Data, &c)
	if c.Choices[0].Delta.Content == nil {
		t.Errorf("event after the tool = %s, want the first content chunk", events[3].Data)
	}
	for i, ev := range events[4:] {
		if ev.Event != "" {
			t.Errorf("event %d = %+v, want no tool events after the answer starts", i+4, ev)
		}
	}
}

func TestKeepaliveDuringSilence(t *testing.T) {
	_, ts := start(t, Options{FirstTokenDelay: 30 * time.Millisecond, KeepaliveInterval: 5 * time.Millisecond, AnswerTokens: 1, ToolProgress: true})
	_, events := stream(t, ts, "hi")
	firstContent := -1
	keepalives := 0
	for i, ev := range events {
		if ev.Comment == "keepalive" {
			keepalives++
			if ev.Data != "" || ev.Event != "" {
				t.Errorf("keepalive block %+v carries more than the comment", ev)
			}
			if firstContent >= 0 {
				t.Errorf("keepalive at %d after content started at %d despite no pause there", i, firstContent)
			}
		}
		if firstContent < 0 && strings.Contains(ev.Data, `"content"`) {
			firstContent = i
		}
	}
	if keepalives == 0 {
		t.Fatalf("no keepalive in %+v", events)
	}
	// The keepalives fall while the tool runs: between its two events.
	if events[1].Event != ToolProgressEvent || events[2].Comment != "keepalive" {
		t.Errorf("events = %+v, want a keepalive right after the running tool event", events[:3])
	}
	if got := streamText(t, events); !strings.HasSuffix(got, "This") {
		t.Errorf("text = %q, the answer must still arrive whole", got)
	}
}

func TestNoKeepaliveWhenBusy(t *testing.T) {
	// A fast answer within the default 30 s interval needs no keepalive.
	_, ts := start(t, Options{AnswerTokens: 50})
	_, events := stream(t, ts, "hi")
	for _, ev := range events {
		if ev.Comment != "" {
			t.Fatalf("unexpected comment %+v", ev)
		}
	}
}

func TestTokensArePaced(t *testing.T) {
	// At 200 tokens/s, tokens are at least 5 ms apart.
	_, ts := start(t, Options{TokensPerSecond: 200, AnswerTokens: 1})
	begin := time.Now()
	_, events := stream(t, ts, "")
	// "[Hermes simulator · turn 1] You said: "". This" is 9 tokens.
	if elapsed := time.Since(begin); elapsed < 8*5*time.Millisecond {
		t.Errorf("stream took %v, want at least 8 gaps of 5ms", elapsed)
	}
	if got := streamText(t, events); got != `[Hermes simulator · turn 1] You said: "". This` {
		t.Errorf("text = %q", got)
	}
}

func TestNonStreamingIsJSONNotSSE(t *testing.T) {
	_, ts := start(t, Options{})
	resp := post(t, ts, `{"messages":[{"role":"user","content":"x"}],"stream":false}`)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(readAll(t, resp.Body)), &v); err != nil || v["object"] != "chat.completion" {
		t.Errorf("body = %v (%v), want a chat.completion", v, err)
	}
}

func TestToolsInOrderWithoutInternalOnes(t *testing.T) {
	_, ts := start(t, Options{ToolProgress: true, Tools: []string{"terminal", "_memory", "my_tool"}, AnswerTokens: 1})
	_, events := stream(t, ts, "hi")
	type progress struct {
		Tool       string `json:"tool"`
		Emoji      string `json:"emoji"`
		Label      string `json:"label"`
		ToolCallID string `json:"toolCallId"`
		Status     string `json:"status"`
	}
	var got []progress
	for _, ev := range events {
		if ev.Event == ToolProgressEvent {
			var p progress
			decodeStrict(t, ev.Data, &p)
			got = append(got, p)
		}
		if strings.Contains(ev.Data, "_memory") {
			t.Errorf("internal tool sent: %s", ev.Data)
		}
	}
	if len(got) != 4 {
		t.Fatalf("tool events = %+v, want two pairs", got)
	}
	want := []struct{ tool, status, emoji, label string }{
		{"terminal", "running", "💻", "running a command"},
		{"terminal", "completed", "", ""},
		{"my_tool", "running", "🔧", "running my_tool"},
		{"my_tool", "completed", "", ""},
	}
	for i, w := range want {
		if g := got[i]; g.Tool != w.tool || g.Status != w.status || g.Emoji != w.emoji || g.Label != w.label {
			t.Errorf("tool event %d = %+v, want %+v", i, g, w)
		}
	}
	if got[0].ToolCallID != got[1].ToolCallID || got[2].ToolCallID != got[3].ToolCallID || got[0].ToolCallID == got[2].ToolCallID {
		t.Errorf("call ids %q %q %q %q, want one distinct id per tool", got[0].ToolCallID, got[1].ToolCallID, got[2].ToolCallID, got[3].ToolCallID)
	}
}

func TestEcho(t *testing.T) {
	long := strings.Repeat("x", maxEcho)
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"  a \n\t b  ", "a b"},
		{long, long},
		{long + "y", long + "…"},
		{long + " y", long + "…"},
		{long[:maxEcho-1] + " y", long[:maxEcho-1] + " …"},
		{strings.Repeat("ü", maxEcho+5), strings.Repeat("ü", maxEcho) + "…"},
	} {
		if got := echo(tc.in); got != tc.want {
			t.Errorf("echo(%.20q…) = %.20q… (%d runes), want %.20q…", tc.in, got, len([]rune(got)), tc.want)
		}
	}
}
