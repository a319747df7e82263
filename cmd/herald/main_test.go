package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/sim"
)

// herald runs the CLI with args and returns its output and error.
func herald(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out, &out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// isolate gives the test an empty HERALD_HOME and no agent settings.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("HERALD_HOME", t.TempDir())
	for _, v := range config.Registry() {
		if v.Name != "HERALD_HOME" {
			t.Setenv(v.Name, "")
		}
	}
}

func TestEnvJSONListsTheRegistry(t *testing.T) {
	out, err := herald(t, "env", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var vars []map[string]any
	if err := json.Unmarshal([]byte(out), &vars); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(vars) != len(config.Registry()) {
		t.Errorf("%d entries, want %d", len(vars), len(config.Registry()))
	}
	byName := map[string]map[string]any{}
	for _, v := range vars {
		for _, field := range []string{"name", "description", "category", "secret", "advanced"} {
			if _, ok := v[field]; !ok {
				t.Errorf("entry %v lacks %q", v["name"], field)
			}
		}
		byName[v["name"].(string)] = v
	}
	if u := byName["GATEWAY_PROXY_URL"]; u["category"] != "messaging" || u["secret"] != false {
		t.Errorf("GATEWAY_PROXY_URL = %v", u)
	}
	if k := byName["GATEWAY_PROXY_KEY"]; k["category"] != "messaging" || k["secret"] != true {
		t.Errorf("GATEWAY_PROXY_KEY = %v", k)
	}
}

func TestEnvTable(t *testing.T) {
	out, err := herald(t, "env")
	if err != nil || !strings.Contains(out, "GATEWAY_PROXY_KEY") || !strings.HasPrefix(out, "NAME") {
		t.Errorf("err = %v, out = %q", err, out)
	}
}

func TestCheckMasksSecrets(t *testing.T) {
	isolate(t)
	t.Setenv("GATEWAY_PROXY_URL", "http://127.0.0.1:8642/")
	t.Setenv("GATEWAY_PROXY_KEY", "sk-very-secret-value")
	out, err := herald(t, "check")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "sk-very-secret-value") {
		t.Errorf("check printed the key:\n%s", out)
	}
	if !strings.Contains(out, "******** (set)") || !strings.Contains(out, "backend: hermes") || !strings.Contains(out, "env GATEWAY_PROXY_URL") {
		t.Errorf("check output lacks the masked key, backend or origin:\n%s", out)
	}
}

// check shows each setting as Herald uses it: normalised, defaults
// applied, the web chat open to all when no allowlist names anyone.
func TestCheckShowsEffectiveValues(t *testing.T) {
	isolate(t)
	t.Setenv("GATEWAY_PROXY_URL", " http://127.0.0.1:8642/ ")
	t.Setenv("TELEGRAM_REQUIRE_MENTION", "Yes")
	t.Setenv("HERALD_LEASE_TTL", "1.5")
	out, err := herald(t, "check")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`gateway.proxy_url  "http://127.0.0.1:8642"  env GATEWAY_PROXY_URL`,
		`platforms.telegram.require_mention  "true"  env TELEGRAM_REQUIRE_MENTION`,
		`database.lease_ttl  "1.5s"  env HERALD_LEASE_TTL`,
		`matrix.e2ee_mode  "optional"  default`,
		`platforms.webchat.allow_all_users  "true" (no allowlist: anyone who reaches it)  default`,
	} {
		if !strings.Contains(squeeze(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	t.Setenv("MATRIX_ENCRYPTION", "true")
	if out, _ := herald(t, "check"); !strings.Contains(squeeze(out), `matrix.e2ee_mode  "required"  default`) {
		t.Errorf("with MATRIX_ENCRYPTION=true:\n%s", out)
	}
}

// With problems, check prints the settings it could read, then every
// problem, and fails.
func TestCheckShowsTheSettingsBesideProblems(t *testing.T) {
	isolate(t)
	t.Setenv("GATEWAY_PROXY_URL", "http://127.0.0.1:8642")
	t.Setenv("HERALD_LEASE_TTL", "soon")
	out, err := herald(t, "check")
	if err == nil || !strings.Contains(err.Error(), `env HERALD_LEASE_TTL: expected a duration such as 10s or a number of seconds, got "soon"`) {
		t.Errorf("herald check: %v", err)
	}
	if !strings.Contains(squeeze(out), `gateway.proxy_url  "http://127.0.0.1:8642"  env GATEWAY_PROXY_URL`) {
		t.Errorf("no settings beside the problem:\n%s", out)
	}
}

// squeeze makes every run of spaces two, so that tabwriter's columns
// compare as text.
func squeeze(s string) string {
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, "  ")
}

// check says where the configuration behaves otherwise than Hermes would
// and warns of keys it does not use, one line each.
func TestCheckSaysWhereHeraldDiffersAndWarns(t *testing.T) {
	isolate(t)
	t.Setenv("GATEWAY_PROXY_URL", "http://127.0.0.1:8642")
	home := os.Getenv("HERALD_HOME")
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("streaming:\n  trasnport: edit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := herald(t, "check")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`differs from Hermes: streaming.enabled is "true" here, "false" in Hermes: answers stream`,
		"warning: " + filepath.Join(home, "config.yaml") + ": streaming.trasnport is not a setting of Herald or Hermes and is ignored; did you mean streaming.transport?",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// check says how turns reach the agent server: runs where it serves
// them, chat completions where not, and that it does not know while the
// server does not answer.
func TestCheckNamesTheAgentMode(t *testing.T) {
	serve := func(runs bool) string {
		s := sim.New(sim.Options{Runs: runs, Logger: slog.New(slog.DiscardHandler)})
		srv := httptest.NewServer(s)
		t.Cleanup(func() { srv.Close(); s.Close() })
		return srv.URL
	}
	down := httptest.NewServer(nil)
	down.Close()
	for _, c := range []struct {
		url, want string
	}{
		{serve(true), "agent:   runs (/v1/runs)"},
		{serve(false), "agent:   chat completions (/v1/chat/completions)"},
		{down.URL, "agent:   not known: the agent server does not answer"},
	} {
		isolate(t)
		t.Setenv("GATEWAY_PROXY_URL", c.url)
		out, err := herald(t, "check")
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: err %v, output lacks %q:\n%s", c.url, err, c.want, out)
		}
	}
}

func TestCheckAndRunRefuseWithoutAnAgentServer(t *testing.T) {
	isolate(t)
	for _, cmd := range []string{"check", "run"} {
		_, err := herald(t, cmd)
		if err == nil || !strings.Contains(err.Error(), "GATEWAY_PROXY_URL") || !strings.Contains(err.Error(), "agent.base_url") || !strings.Contains(err.Error(), "run herald demo") {
			t.Errorf("%s: err = %v, want advice naming GATEWAY_PROXY_URL, agent.base_url and herald demo", cmd, err)
		}
	}
}

// herald run --help lists the settings a first run needs, each with its
// description from the registry, and where to find the others.
func TestRunHelpListsTheMainSettings(t *testing.T) {
	out, err := herald(t, "run", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range mainSettings {
		v, _ := config.Lookup(name)
		if !strings.Contains(out, name+"  ") || !strings.Contains(out, firstClause(v.Description)) {
			t.Errorf("run --help lacks %s and its description:\n%s", name, out)
		}
	}
	for _, want := range []string{"herald env", "herald check", "herald doctor", "herald demo"} {
		if !strings.Contains(out, want) {
			t.Errorf("run --help does not point to %s:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := herald(t, args...)
		if err != nil || !strings.HasPrefix(out, "herald dev (go") {
			t.Errorf("herald %s: out = %q, err = %v", args[0], out, err)
		}
	}
}

// counting is an OpenAI-compatible server that counts chat requests and
// answers "ok"; it has nothing else (no runs: /v1/capabilities is 404).
func counting(t *testing.T, hits *atomic.Int32, sessionHeader *atomic.Value) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		if sessionHeader != nil {
			sessionHeader.Store(r.Header.Get("X-Hermes-Session-Id"))
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Seed: test_run_agent_delegates_to_proxy and
// test_run_agent_skips_proxy_when_not_configured.
func TestDispatch(t *testing.T) {
	var proxyHits, modelHits atomic.Int32
	var session atomic.Value
	proxy := counting(t, &proxyHits, &session)
	model := counting(t, &modelHits, nil)

	isolate(t)
	t.Setenv("GATEWAY_PROXY_URL", proxy.URL)
	t.Setenv("HERALD_AGENT_BASE_URL", model.URL+"/v1")
	t.Setenv("HERALD_AGENT_MODEL", "llama3")
	cfg, err := config.Load(config.Options{RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	b := app.NewBackend(cfg, nil)
	res := b.Run(context.Background(), agent.Turn{SessionID: "test-session-123", Message: "hi"}, func(agent.Event) {})
	if b.Name() != "hermes" || res.FinalResponse != "ok" || proxyHits.Load() != 1 || modelHits.Load() != 0 {
		t.Errorf("with a proxy URL: backend %s, final %q, proxy hits %d, model hits %d", b.Name(), res.FinalResponse, proxyHits.Load(), modelHits.Load())
	}
	if session.Load() != "test-session-123" {
		t.Errorf("session header = %v", session.Load())
	}

	t.Setenv("GATEWAY_PROXY_URL", "")
	cfg, err = config.Load(config.Options{RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	b = app.NewBackend(cfg, nil)
	res = b.Run(context.Background(), agent.Turn{SessionID: "test-session", Message: "hi"}, func(agent.Event) {})
	if b.Name() != "openai" || res.FinalResponse != "ok" || proxyHits.Load() != 1 || modelHits.Load() != 1 {
		t.Errorf("without a proxy URL: backend %s, final %q, proxy hits %d, model hits %d", b.Name(), res.FinalResponse, proxyHits.Load(), modelHits.Load())
	}
}

// A start-up failure ends `herald run` with the reason; it must not hang.
func TestRunFailsFastWhenTheAddressIsTaken(t *testing.T) {
	isolate(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("GATEWAY_PROXY_URL", "http://127.0.0.1:1")
	t.Setenv("HERALD_HTTP_ADDR", taken.Addr().String())
	done := make(chan error, 1)
	go func() { _, err := herald(t, "run"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "HERALD_HTTP_ADDR") {
			t.Errorf("err = %v, want one naming HERALD_HTTP_ADDR", err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("herald run did not return after failing to start")
	}
}

var update = flag.Bool("update", false, "rewrite the README's generated tables")

// The README's tables of variables and config.yaml keys are what
// `herald env --markdown` prints, so they list every setting there is;
// `make readme` rewrites them.
func TestReadmeTablesAreGenerated(t *testing.T) {
	const (
		begin = "<!-- generated by `herald env --markdown`: `make readme` rewrites it -->\n"
		end   = "<!-- end of generated tables -->\n"
	)
	path := filepath.Join("..", "..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers of the generated tables:\n%s%s", begin, end)
	}
	var tables strings.Builder
	if err := writeMarkdown(&tables); err != nil {
		t.Fatal(err)
	}
	want := readme[:i+len(begin)] + "\n" + tables.String() + "\n" + readme[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if readme != want {
		t.Error("README.md's tables differ from `herald env --markdown`: run `make readme`")
	}
}
