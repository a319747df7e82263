package sim

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// These tests check the simulator against the official OpenAI Go client, the
// same kind of client Herald's backend is.

func openaiClient(ts *httptest.Server, key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(ts.URL+"/v1/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(ts.Client()),
		option.WithMaxRetries(0),
	)
}

func openaiParams(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: "hermes-agent",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("be brief"),
			openai.UserMessage(text),
		},
	}
}

func TestOpenAIClient(t *testing.T) {
	sim, ts := start(t, Options{
		Key: "k", AnswerTokens: 4, ToolProgress: true,
		FirstTokenDelay: 20 * time.Millisecond, KeepaliveInterval: 5 * time.Millisecond,
	})
	client := openaiClient(ts, "k")

	// Turn 1, not streamed.
	var httpResp *http.Response
	c, err := client.Chat.Completions.New(t.Context(), openaiParams("hello there"),
		option.WithHeader(SessionHeader, "oa-1"), option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	want1 := `[Hermes simulator · turn 1] You said: "hello there". This is simulated filler`
	if len(c.Choices) != 1 || c.Choices[0].Message.Content != want1 || c.Choices[0].FinishReason != "stop" {
		t.Errorf("completion = %+v\nwant content %q", c.Choices, want1)
	}
	if c.Model != "hermes-agent" || c.Usage.PromptTokens != 4 || c.Usage.CompletionTokens != 13 || c.Usage.TotalTokens != 17 {
		t.Errorf("model %q, usage %+v", c.Model, c.Usage)
	}
	if got := httpResp.Header.Get(SessionHeader); got != "oa-1" {
		t.Errorf("session header = %q", got)
	}

	// Turn 2 of the same session, streamed through the accumulator. The
	// client hands the hermes.tool.progress events over as chunks without an
	// id, which the accumulator rightly refuses; keepalive comments never
	// reach it.
	stream := client.Chat.Completions.NewStreaming(t.Context(), openaiParams("and again"),
		option.WithHeader(SessionHeader, "oa-1"))
	defer stream.Close()
	acc := openai.ChatCompletionAccumulator{}
	var toolEvents, chunks int
	var finished string
	for stream.Next() {
		chunk := stream.Current()
		if chunk.ID == "" {
			toolEvents++
			continue
		}
		chunks++
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator refused chunk %s", chunk.RawJSON())
		}
		if content, ok := acc.JustFinishedContent(); ok {
			finished = content
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want2 := `[Hermes simulator · turn 2] You said: "and again". This is simulated filler`
	if got := acc.Choices[0].Message.Content; got != want2 {
		t.Errorf("accumulated text = %q\nwant               %q", got, want2)
	}
	if finished != want2 {
		t.Errorf("JustFinishedContent = %q, want %q", finished, want2)
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Model != "hermes-agent" {
		t.Errorf("finish reason %q, model %q", acc.Choices[0].FinishReason, acc.Model)
	}
	if u := acc.Usage; u.PromptTokens != 4 || u.CompletionTokens != 13 || u.TotalTokens != 17 {
		t.Errorf("usage = %+v, want 4 + 13 = 17", u)
	}
	if toolEvents != 2 || chunks != 1+13+1 {
		t.Errorf("got %d tool events and %d chunks, want 2 and 15", toolEvents, chunks)
	}
	if st := sim.Stats(); st.Turns["oa-1"] != 2 {
		t.Errorf("turns = %v, want oa-1 at 2", st.Turns)
	}
}

func TestOpenAIClientWrongKey(t *testing.T) {
	_, ts := start(t, Options{Key: "right"})
	client := openaiClient(ts, "wrong")

	_, err := client.Chat.Completions.New(t.Context(), openaiParams("hi"))
	checkInvalidKey(t, err)

	stream := client.Chat.Completions.NewStreaming(t.Context(), openaiParams("hi"))
	defer stream.Close()
	if stream.Next() {
		t.Fatal("stream with a wrong key produced a chunk")
	}
	checkInvalidKey(t, stream.Err())
}

func checkInvalidKey(t *testing.T, err error) {
	t.Helper()
	apiErr, ok := errors.AsType[*openai.Error](err)
	if !ok {
		t.Fatalf("err = %v, want an *openai.Error", err)
	}
	if apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "invalid_api_key" || apiErr.Message != "Invalid API key" {
		t.Errorf("error = status %d, code %q, message %q", apiErr.StatusCode, apiErr.Code, apiErr.Message)
	}
}

func TestOpenAIClientSeesAgentError(t *testing.T) {
	_, ts := start(t, Options{AgentError: true, AnswerTokens: 3})
	client := openaiClient(ts, "")
	stream := client.Chat.Completions.NewStreaming(t.Context(), openaiParams("hi"))
	defer stream.Close()
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].FinishReason != "error" || acc.Choices[0].Message.Content != "[Hermes simulator · turn 1] " {
		t.Errorf("finish %q, text %q; want error after partial text", acc.Choices[0].FinishReason, acc.Choices[0].Message.Content)
	}
}

func TestOpenAIClientStopsOnMalformedLine(t *testing.T) {
	_, ts := start(t, Options{MalformedLines: true})
	client := openaiClient(ts, "")
	stream := client.Chat.Completions.NewStreaming(t.Context(), openaiParams("hi"))
	defer stream.Close()
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil || n != 1 {
		t.Errorf("after %d chunks err = %v; want the role chunk, then a decoding error", n, stream.Err())
	}
}
