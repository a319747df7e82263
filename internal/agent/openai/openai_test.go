package openai

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/sim"
)

type seen struct {
	path   string
	header http.Header
	body   struct {
		Model    string         `json:"model"`
		Messages []chat.Message `json:"messages"`
		Stream   bool           `json:"stream"`
	}
}

func server(t *testing.T, status int, body string) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.path, s.header = r.URL.Path, r.Header.Clone()
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &s.body); err != nil {
			t.Errorf("body: %v", err)
		}
		ch <- s
		if status == 200 {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestSendsSystemPromptAndFullHistoryWithoutHermesHeaders(t *testing.T) {
	srv, ch := server(t, 200, "data: {\"choices\":[{\"delta\":{\"content\":\"4\"}}]}\n\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	b := New(Config{BaseURL: srv.URL + "/v1/", APIKey: "sk-1", Model: "llama3", SystemPrompt: "Be brief.", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	res := b.Run(context.Background(), agent.Turn{
		SessionID: "20260101_000000_abcdef",
		Message:   "and 2+2?",
		History:   []chat.Message{{Role: chat.User, Content: "1+1?"}, {Role: chat.Assistant, Content: "2"}, {Role: chat.Tool, Content: "x"}},
		Source:    chat.Source{UserID: "u", ChatID: "c"},
	}, func(agent.Event) {})
	s := <-ch
	if s.path != "/v1/chat/completions" || s.body.Model != "llama3" || !s.body.Stream {
		t.Errorf("path %q, model %q, stream %v", s.path, s.body.Model, s.body.Stream)
	}
	want := []chat.Message{
		{Role: chat.System, Content: "Be brief."},
		{Role: chat.User, Content: "1+1?"},
		{Role: chat.Assistant, Content: "2"},
		{Role: chat.User, Content: "and 2+2?"},
	}
	if !reflect.DeepEqual(s.body.Messages, want) {
		t.Errorf("messages = %+v", s.body.Messages)
	}
	if s.header.Get("Authorization") != "Bearer sk-1" {
		t.Errorf("Authorization = %q", s.header.Get("Authorization"))
	}
	for k := range s.header {
		if strings.HasPrefix(k, "X-Hermes-") {
			t.Errorf("Hermes header %s sent to a model server", k)
		}
	}
	if res.FinalResponse != "4" || res.SessionID != "20260101_000000_abcdef" || res.Err != nil {
		t.Errorf("result = %+v", res)
	}
}

func TestErrorsNameTheModelServer(t *testing.T) {
	srv, _ := server(t, 404, `{"error":{"message":"model \"llama9\" not found"}}`)
	b := New(Config{BaseURL: srv.URL, Model: "llama9", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	res := b.Run(context.Background(), agent.Turn{Message: "hi"}, func(agent.Event) {})
	if want := `⚠️ Model server error (404): model "llama9" not found`; res.FinalResponse != want {
		t.Errorf("final = %q, want %q", res.FinalResponse, want)
	}
}

// Some servers ignore "stream": true and answer with one JSON object.
func TestNonStreamingAnswerIsAccepted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	}))
	defer srv.Close()
	b := New(Config{BaseURL: srv.URL, Model: "m", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	var got []string
	res := b.Run(context.Background(), agent.Turn{Message: "hi"}, func(e agent.Event) {
		if e.Kind == agent.EventDelta {
			got = append(got, e.Text)
		}
	})
	if res.FinalResponse != "whole answer" || res.Err != nil || !reflect.DeepEqual(got, []string{"whole answer"}) {
		t.Errorf("final %q, err %v, deltas %q", res.FinalResponse, res.Err, got)
	}
}

// The model server's redirect is not followed either: the API key stays
// with the configured server, for turns and for Ping.
func TestRedirectIsNotFollowed(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(sim.New(sim.Options{RedirectTo: elsewhere.URL, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()

	b := New(Config{BaseURL: srv.URL + "/v1", APIKey: "sk-1", Model: "m", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	res := b.Run(context.Background(), agent.Turn{Message: "hi"}, func(agent.Event) {})
	if !strings.HasPrefix(res.FinalResponse, "⚠️ Model server error (307): Temporary Redirect to "+elsewhere.URL) {
		t.Errorf("final = %q", res.FinalResponse)
	}
	if err := b.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "307") {
		t.Errorf("ping = %v, want the redirect status", err)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the other server got %d requests", n)
	}
}

// The backend hands on what the model wrote, <think> block and all: what a
// chat shows of it is the gateway's choice.
func TestThinkingIsPassedOn(t *testing.T) {
	srv := httptest.NewServer(sim.New(sim.Options{Think: "Two and two.", AnswerTokens: 1, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	b := New(Config{BaseURL: srv.URL + "/v1", Model: "m", ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	res := b.Run(context.Background(), agent.Turn{Message: "2+2?"}, func(agent.Event) {})
	if res.Err != nil || !strings.HasPrefix(res.Text, "<think>\nTwo and two.\n</think>\n\n[Hermes simulator") {
		t.Errorf("text = %q, err = %v", res.Text, res.Err)
	}
}
