package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHealthSaysSimulatorAndNeedsNoKey(t *testing.T) {
	_, ts := start(t, Options{Key: "secret"})
	resp, err := ts.Client().Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "ok", "platform": "hermes-agent", "simulator": true}
	if len(got) != len(want) {
		t.Errorf("health = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("health[%q] = %v, want %v", k, got[k], v)
		}
	}
}

func TestModels(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct{ model, want string }{
		{"", "hermes-agent"},
		{"my-hermes", "my-hermes"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, ts := start(t, Options{Key: "k", Model: tc.model, Now: func() time.Time { return now }})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer k")
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			var list struct {
				Object string `json:"object"`
				Data   []struct {
					ID      string `json:"id"`
					Object  string `json:"object"`
					Created int64  `json:"created"`
					OwnedBy string `json:"owned_by"`
				} `json:"data"`
			}
			decodeStrict(t, readAll(t, resp.Body), &list)
			if list.Object != "list" || len(list.Data) != 1 {
				t.Fatalf("models = %+v, want a list of one", list)
			}
			m := list.Data[0]
			if m.ID != tc.want || m.Object != "model" || m.Created != now.Unix() || m.OwnedBy != "hermes" {
				t.Errorf("model = %+v", m)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const want401 = `{"error":{"message":"Invalid API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	sim, ts := start(t, Options{Key: "s3cret"})

	do := func(t *testing.T, method, path, auth string) *http.Response {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(chatBody(false, "hi"))
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.URL+path, body)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "bearer s3cret", "s3cret", "Bearer  s3cret", "Basic czNjcmV0"} {
		for _, target := range []struct{ method, path string }{
			{http.MethodGet, "/v1/models"},
			{http.MethodPost, "/v1/chat/completions"},
		} {
			t.Run(target.path+" "+auth, func(t *testing.T) {
				resp := do(t, target.method, target.path, auth)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401", resp.StatusCode)
				}
				if got := readAll(t, resp.Body); got != want401 {
					t.Errorf("body = %s\nwant   %s", got, want401)
				}
			})
		}
	}
	t.Run("right key", func(t *testing.T) {
		for _, target := range []struct{ method, path string }{
			{http.MethodGet, "/v1/models"},
			{http.MethodPost, "/v1/chat/completions"},
		} {
			if resp := do(t, target.method, target.path, "Bearer s3cret"); resp.StatusCode != http.StatusOK {
				t.Errorf("%s: status = %d, want 200", target.path, resp.StatusCode)
			}
		}
	})
	st := sim.Stats()
	if st.Requests != 9 || st.Rejected != 8 || st.Completed != 1 {
		t.Errorf("stats = %+v, want 9 chat requests, 8 rejected, 1 completed", st)
	}
}

func TestSessionHeaderNeedsKey(t *testing.T) {
	t.Run("refused without key", func(t *testing.T) {
		sim, ts := start(t, Options{})
		resp := post(t, ts, chatBody(false, "hi"), SessionHeader, "abc")
		e := expectError(t, resp, http.StatusForbidden, "session_requires_auth")
		if !strings.Contains(e.Error.Message, "API key") {
			t.Errorf("message = %q, want it to mention the API key", e.Error.Message)
		}
		if st := sim.Stats(); len(st.Turns) != 0 || st.Rejected != 1 {
			t.Errorf("stats = %+v, want no session and one rejection", st)
		}
	})
	t.Run("allowed by option", func(t *testing.T) {
		_, ts := start(t, Options{AllowSessionWithoutKey: true})
		resp := post(t, ts, chatBody(false, "hi"), SessionHeader, "abc")
		if resp.StatusCode != http.StatusOK || resp.Header.Get(SessionHeader) != "abc" {
			t.Errorf("status = %d, session = %q; want 200 and abc", resp.StatusCode, resp.Header.Get(SessionHeader))
		}
	})
	t.Run("allowed with key", func(t *testing.T) {
		_, ts := start(t, Options{Key: "k"})
		resp := post(t, ts, chatBody(false, "hi"), SessionHeader, "abc", "Authorization", "Bearer k")
		if resp.StatusCode != http.StatusOK || resp.Header.Get(SessionHeader) != "abc" {
			t.Errorf("status = %d, session = %q; want 200 and abc", resp.StatusCode, resp.Header.Get(SessionHeader))
		}
	})
	t.Run("no header without key is fine", func(t *testing.T) {
		_, ts := start(t, Options{})
		if resp := post(t, ts, chatBody(false, "hi")); resp.StatusCode != http.StatusOK {
			t.Errorf("status = %d, want 200", resp.StatusCode)
		}
	})
}

// TestSessionHeaderControlCharacters calls the handler directly: Go's HTTP
// client and server both refuse such header values before they reach it, but
// other front ends might not.
func TestSessionHeaderControlCharacters(t *testing.T) {
	sim := New(Options{Key: "k", Logger: discardLogger()})
	for _, id := range []string{"a\rb", "a\nb", "a\x00b"} {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody(false, "hi")))
		req.Header.Set("Authorization", "Bearer k")
		req.Header[SessionHeader] = []string{id}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		expectError(t, rec.Result(), http.StatusBadRequest, "invalid_session_id")
	}
}

func TestBodyTooLarge(t *testing.T) {
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}`
	t.Run("with content length", func(t *testing.T) {
		_, ts := start(t, Options{})
		expectError(t, post(t, ts, big), http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("chunked", func(t *testing.T) {
		_, ts := start(t, Options{})
		// A reader of unknown length makes the client send a chunked body, so
		// only the server's byte limit can catch it.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+"/v1/chat/completions",
			io.MultiReader(strings.NewReader(big)))
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if req.ContentLength != 0 {
			t.Fatalf("request has a content length (%d); the test needs a chunked body", req.ContentLength)
		}
		expectError(t, resp, http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("just under the limit", func(t *testing.T) {
		_, ts := start(t, Options{})
		prefix, suffix := `{"messages":[{"role":"user","content":"`, `"}]}`
		body := prefix + strings.Repeat("a", MaxBodyBytes-len(prefix)-len(suffix)) + suffix
		if resp := post(t, ts, body); resp.StatusCode != http.StatusOK {
			t.Errorf("status = %d, want 200 for a body of exactly %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestBadRequests(t *testing.T) {
	_, ts := start(t, Options{})
	for _, tc := range []struct {
		name, body, code string
	}{
		{"invalid JSON", `{"messages":[`, "invalid_json"},
		{"no messages", `{"model":"hermes-agent"}`, "missing_messages"},
		{"empty messages", `{"messages":[]}`, "missing_messages"},
		{"null body", `null`, "missing_messages"},
		{"content is a number", `{"messages":[{"role":"user","content":42}]}`, "invalid_content"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}`, "unsupported_content_type"},
		{"file part after text", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"file","file":{}}]}]}`, "unsupported_content_type"},
		{"bad part in an earlier message", `{"messages":[{"role":"system","content":[{"type":"video"}]},{"role":"user","content":"hi"}]}`, "unsupported_content_type"},
		{"image without url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "invalid_content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, post(t, ts, tc.body), http.StatusBadRequest, tc.code)
		})
	}
}

func TestContentPartsAccepted(t *testing.T) {
	_, ts := start(t, Options{AnswerTokens: 1})
	body := `{"messages":[
		{"role":"system","content":"be brief"},
		{"role":"user","content":[
			{"type":"text","text":"what is"},
			{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
			{"type":"text","text":"this?"}
		]}]}`
	resp := post(t, ts, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readAll(t, resp.Body))
	}
	var c completion
	decodeStrict(t, readAll(t, resp.Body), &c)
	want := `[Hermes simulator · turn 1] You said: "what is this?" (+1 image). This`
	if got := c.Choices[0].Message.Content; got != want {
		t.Errorf("content = %q\nwant      %q", got, want)
	}
	// "be brief" + "what is this?" + one image.
	if c.Usage.PromptTokens != 6 {
		t.Errorf("prompt tokens = %d, want 6", c.Usage.PromptTokens)
	}
}

func TestNonStreamingAnswer(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	sim, ts := start(t, Options{Key: "k", AnswerTokens: 2, Now: func() time.Time { return now }})
	resp := post(t, ts, chatBody(false, "  hello\n  world "), "Authorization", "Bearer k", SessionHeader, "sess-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if got := resp.Header.Get(SessionHeader); got != "sess-1" {
		t.Errorf("session header = %q, want sess-1", got)
	}
	var c completion
	decodeStrict(t, readAll(t, resp.Body), &c)
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created != now.Unix() || c.Model != "hermes-agent" {
		t.Errorf("completion header fields = %+v", c)
	}
	if len(c.Choices) != 1 {
		t.Fatalf("choices = %+v, want one", c.Choices)
	}
	ch := c.Choices[0]
	want := `[Hermes simulator · turn 1] You said: "hello world". This is`
	if ch.Index != 0 || ch.Message.Role != "assistant" || ch.Message.Content != want || ch.FinishReason != "stop" {
		t.Errorf("choice = %+v\nwant content %q", ch, want)
	}
	// 9 echo-line words and 2 filler words; the prompt has 2 words.
	if u := *c.Usage; u != (usage{PromptTokens: 2, CompletionTokens: 11, TotalTokens: 13}) {
		t.Errorf("usage = %+v", u)
	}
	if st := sim.Stats(); st.Completed != 1 || st.Turns["sess-1"] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLongEchoIsTruncated(t *testing.T) {
	_, ts := start(t, Options{AnswerTokens: 1})
	resp := post(t, ts, chatBody(false, strings.Repeat("é", 300)))
	var c completion
	decodeStrict(t, readAll(t, resp.Body), &c)
	want := `You said: "` + strings.Repeat("é", maxEcho) + `…".`
	if !strings.Contains(c.Choices[0].Message.Content, want) {
		t.Errorf("content = %q, want the echo cut to %d runes", c.Choices[0].Message.Content, maxEcho)
	}
}

func TestUnknownRoutes(t *testing.T) {
	_, ts := start(t, Options{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/v1/chat/completions", http.StatusMethodNotAllowed},
		{http.MethodPost, "/health", http.StatusMethodNotAllowed},
		{http.MethodGet, "/v1/nope", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, ts.URL+tc.path, bytes.NewReader(nil))
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
	good := Options{Key: "k", FirstTokenDelay: time.Second, TokensPerSecond: 30, AnswerTokens: 5,
		KeepaliveInterval: time.Second, FailStatus: 503, DisconnectAfter: 3}
	if err := good.Validate(); err != nil {
		t.Errorf("good Options: %v", err)
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"FirstTokenDelay", Options{FirstTokenDelay: -1}},
		{"TokensPerSecond", Options{TokensPerSecond: -1}},
		{"TokensPerSecond", Options{TokensPerSecond: nan()}},
		{"AnswerTokens", Options{AnswerTokens: -1}},
		{"AnswerTokens", Options{AnswerTokens: maxAnswerTokens + 1}},
		{"KeepaliveInterval", Options{KeepaliveInterval: -time.Second}},
		{"FailStatus", Options{FailStatus: 200}},
		{"FailStatus", Options{FailStatus: 600}},
		{"DisconnectAfter", Options{DisconnectAfter: -2}},
		{"Model", Options{Model: "hermes agent"}},
		{"Tools[1]", Options{Tools: []string{"web_search", " "}}},
		{"AnswerBytes", Options{AnswerBytes: -1}},
		{"EndlessEventBytes", Options{EndlessEventBytes: maxFaultBytes + 1}},
		{"JSONAnswerBytes", Options{JSONAnswerBytes: -1}},
		{"RedirectTo", Options{RedirectTo: "127.0.0.1:8642"}},
		{"RedirectTo", Options{RedirectTo: "ftp://example.org"}},
		{"RedirectTo", Options{RedirectTo: "http://"}},
		{"HTMLAnswer, JSONAnswerBytes", Options{HTMLAnswer: true, JSONAnswerBytes: 10}},
		{"AnswerBytes, FailStatus, RedirectTo", Options{AnswerBytes: 1, FailStatus: 500, RedirectTo: "http://127.0.0.1:1"}},
		{"MaxSessions", Options{MaxSessions: -1}},
	} {
		err := tc.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.opts, err, tc.name)
		}
	}
	err := Options{FirstTokenDelay: -1, DisconnectAfter: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "FirstTokenDelay") || !strings.Contains(err.Error(), "DisconnectAfter") {
		t.Errorf("Validate with two bad options = %v, want both named", err)
	}
}

// The simulator remembers the sessions whose last turn is most recent, no
// more than MaxSessions of them; one it forgot starts over at turn 1.
func TestMaxSessions(t *testing.T) {
	sim, ts := start(t, Options{MaxSessions: 2, AllowSessionWithoutKey: true})
	turn := func(session string) {
		t.Helper()
		_, events := stream(t, ts, "hi", SessionHeader, session)
		if text := streamText(t, events); !strings.HasPrefix(text, "[Hermes simulator · turn ") {
			t.Fatalf("answer %q", text)
		}
	}
	turn("a")
	turn("b")
	turn("a") // a is now the most recent: b goes first
	turn("c")
	if st := sim.Stats(); len(st.Turns) != 2 || st.Turns["a"] != 2 || st.Turns["c"] != 1 {
		t.Fatalf("turns = %v, want a:2 and c:1 (b forgotten)", st.Turns)
	}
	_, events := stream(t, ts, "hi", SessionHeader, "b")
	if text := streamText(t, events); !strings.HasPrefix(text, "[Hermes simulator · turn 1]") {
		t.Errorf("a forgotten session answered %q, want it to start over", text)
	}
	if st := sim.Stats(); len(st.Turns) != 2 || st.Turns["b"] != 1 || st.Turns["c"] != 1 {
		t.Errorf("turns = %v, want b:1 and c:1 (a forgotten)", st.Turns)
	}

	// Many new sessions leave the default number at most.
	sim = New(Options{Logger: discardLogger()})
	for range DefaultMaxSessions + 5 {
		sim.startTurn("")
	}
	if n := len(sim.Stats().Turns); n != DefaultMaxSessions {
		t.Errorf("%d sessions kept, want %d", n, DefaultMaxSessions)
	}
}

func TestNewPanicsOnInvalidOptions(t *testing.T) {
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !strings.Contains(err.Error(), "AnswerTokens") {
			t.Errorf("recovered %v, want the Validate error", r)
		}
	}()
	New(Options{AnswerTokens: -5})
}

// A message that names a kind of formatting gets a sample of it, all of
// them for "markdown"; others get none. A multiple of SentenceWords of
// filler ends the answer with a whole sentence.
func TestAnswerShowsFormattingWhenAsked(t *testing.T) {
	const (
		list  = "- one item\n- another"
		code  = "```go\nfunc greet"
		table = "| platform | streams by |\n|---|---|"
		link  = "[the Hermes agent](https://github.com/NousResearch/hermes-agent)"
	)
	for _, c := range []struct {
		said string
		want []string
	}{
		{"show me some Markdown", []string{list, code, table, link}},
		{"a table please", []string{table}},
		{"a list and a link", []string{list, link}},
		{"hello", nil},
	} {
		got := Answer(1, c.said, 2*SentenceWords)
		for _, sample := range []string{list, code, table, link} {
			if want := slices.Contains(c.want, sample); strings.Contains(got, sample) != want {
				t.Errorf("%q: sample %q shown: %v, want %v:\n%s", c.said, sample, !want, want, got)
			}
		}
		if !strings.HasSuffix(got, "not a real agent.") {
			t.Errorf("%q: the answer does not end with a whole sentence: %q", c.said, got)
		}
	}
}
