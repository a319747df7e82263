package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// simCLI runs `herald sim` with args until the test ends. It returns the
// simulator's URL and the log lines up to the one that says it listens.
func simCLI(t *testing.T, args ...string) (url string, logs []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	root := newRoot(pw, pw)
	root.SetArgs(append([]string{"sim"}, args...))
	done := make(chan error, 1)
	go func() {
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		logs = append(logs, lines.Text())
		if m := regexp.MustCompile(`listening.* url=(\S+)`).FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // later logs
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("herald sim: %v", err)
		}
	})
	if url == "" { // the command ended: the cleanup reports its error
		t.Fatalf("herald sim %s did not start:\n%s", strings.Join(args, " "), strings.Join(logs, "\n"))
	}
	return url, logs
}

func warnsOfNoKey(logs []string) bool {
	for _, l := range logs {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "without a key") {
			return true
		}
	}
	return false
}

// A simulator that other machines can reach, with no key, says so.
func TestSimWarnsWithoutKeyBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--addr", "0.0.0.0:0"}, true},
		{[]string{"--addr", ":0"}, true},
		{[]string{"--addr", "0.0.0.0:0", "--key", "k"}, false},
		{[]string{"--addr", "127.0.0.1:0"}, false},
		{[]string{"--addr", "localhost:0"}, false},
	} {
		_, logs := simCLI(t, tc.args...)
		if warnsOfNoKey(logs) != tc.warn {
			t.Errorf("herald sim %s: warned %v, want %v:\n%s", strings.Join(tc.args, " "), !tc.warn, tc.warn, strings.Join(logs, "\n"))
		}
	}
}

// The fault flags reach the simulator.
func TestSimFaultFlags(t *testing.T) {
	post := func(t *testing.T, url string) *http.Response {
		t.Helper()
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	url, _ := simCLI(t, "--addr", "127.0.0.1:0", "--html")
	if ct := post(t, url).Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("--html: Content-Type %q, want a web page", ct)
	}

	url, _ = simCLI(t, "--addr", "127.0.0.1:0", "--redirect-to", "http://127.0.0.1:9")
	if resp := post(t, url); resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "http://127.0.0.1:9/v1/chat/completions" {
		t.Errorf("--redirect-to: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	url, _ = simCLI(t, "--addr", "127.0.0.1:0", "--json-answer-bytes", "100")
	if ct := post(t, url).Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("--json-answer-bytes: Content-Type %q, want JSON", ct)
	}

	url, _ = simCLI(t, "--addr", "127.0.0.1:0", "--think", "hmm", "--answer-bytes", "600")
	body, _ := io.ReadAll(post(t, url).Body)
	if !strings.Contains(string(body), `"content":"\u003cthink\u003e`) && !strings.Contains(string(body), `"content":"<think>`) {
		t.Errorf("--think: no <think> block in %.200s", body)
	}
	if n := strings.Count(string(body), "filler"); n < 5 {
		t.Errorf("--answer-bytes 600: %d filler words, want the filler answer", n)
	}

	if _, err := herald(t, "sim", "--html", "--json-answer-bytes", "5"); err == nil || !strings.Contains(err.Error(), "HTMLAnswer") {
		t.Errorf("two answer faults: err = %v, want the options named", err)
	}
}
