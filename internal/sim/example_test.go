package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/herald-chat/herald/internal/sim"
)

// A simulator is an http.Handler: serve it with httptest in tests, or with
// http.Server{Addr: "127.0.0.1:8642", Handler: sim.New(opts)} for a demo.
func ExampleNew() {
	opts := sim.Options{Key: "k", AnswerTokens: 3}
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	ts := httptest.NewServer(sim.New(opts))
	defer ts.Close()

	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set(sim.SessionHeader, "demo")
	resp, err := ts.Client().Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		panic(err)
	}
	fmt.Println(resp.Header.Get(sim.SessionHeader))
	fmt.Println(answer.Choices[0].Message.Content)
	// Output:
	// demo
	// [Hermes simulator · turn 1] You said: "hi". This is simulated
}
