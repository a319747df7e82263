package sim

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// TestNodeOpenAIClient checks the simulator against the official openai npm
// client. It needs node and `npm ci --prefix internal/sim/testdata`, and
// skips without them.
func TestNodeOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat("testdata/node_modules/openai/package.json"); err != nil {
		t.Skip("openai npm package missing; run: npm ci --prefix internal/sim/testdata")
	}
	sim, ts := start(t, Options{Key: "k", AnswerTokens: 2, ToolProgress: true})

	cmd := exec.CommandContext(t.Context(), node, "openai-check.mjs")
	cmd.Dir = "testdata"
	cmd.Env = append(os.Environ(), "SIM_URL="+ts.URL, "SIM_KEY=k")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			t.Fatalf("node: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got struct {
		Completion struct {
			Content string
			Usage   usage
			Session string
		}
		Stream struct {
			Text       string
			Finish     string
			Usage      usage
			ToolEvents int
		}
		WrongKey struct {
			Status int
			Code   string
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	wantUsage := usage{PromptTokens: 3, CompletionTokens: 12, TotalTokens: 15}
	c := got.Completion
	if c.Content != `[Hermes simulator · turn 1] You said: "hello from node". This is` || c.Usage != wantUsage || c.Session != "node-1" {
		t.Errorf("non-streaming answer as node saw it: %+v", c)
	}
	s := got.Stream
	if s.Text != `[Hermes simulator · turn 2] You said: "hello from node". This is` || s.Finish != "stop" || s.Usage != wantUsage || s.ToolEvents != 2 {
		t.Errorf("streamed answer as node saw it: %+v", s)
	}
	if got.WrongKey.Status != 401 || got.WrongKey.Code != "invalid_api_key" {
		t.Errorf("wrong key as node saw it: %+v", got.WrongKey)
	}
	if st := sim.Stats(); st.Completed != 2 || st.Turns["node-1"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}
