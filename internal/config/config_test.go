package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// mapEnv reads variables from m instead of the process environment.
func mapEnv(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// load reads a configuration from a temporary HERALD_HOME holding the given
// config.yaml (none when empty) and the given environment.
func load(t *testing.T, yamlText string, env map[string]string) (*Config, error) {
	t.Helper()
	home := t.TempDir()
	if yamlText != "" {
		if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e := map[string]string{"HERALD_HOME": home}
	for k, v := range env {
		e[k] = v
	}
	return Load(Options{Env: mapEnv(e)})
}

func mustLoad(t *testing.T, yamlText string, env map[string]string) *Config {
	t.Helper()
	c, err := load(t, yamlText, env)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Seed: test_returns_none_when_not_configured.
func TestProxyURLUnsetByDefault(t *testing.T) {
	c := mustLoad(t, "", nil)
	if c.Proxy.URL != "" || c.Backend() != "" {
		t.Errorf("proxy url = %q, backend = %q; want both empty", c.Proxy.URL, c.Backend())
	}
}

// Seed: test_reads_from_env_var.
func TestProxyURLFromEnv(t *testing.T) {
	c := mustLoad(t, "", map[string]string{"GATEWAY_PROXY_URL": "http://192.168.1.100:8642"})
	if c.Proxy.URL != "http://192.168.1.100:8642" || c.Backend() != "hermes" {
		t.Errorf("proxy url = %q, backend = %q", c.Proxy.URL, c.Backend())
	}
}

// Seed: test_strips_trailing_slash.
func TestProxyURLTrailingSlashRemoved(t *testing.T) {
	c := mustLoad(t, "", map[string]string{"GATEWAY_PROXY_URL": "http://host:8642/"})
	if c.Proxy.URL != "http://host:8642" {
		t.Errorf("proxy url = %q", c.Proxy.URL)
	}
}

// Seed: test_reads_from_config_yaml.
func TestProxyURLFromConfigYAML(t *testing.T) {
	c := mustLoad(t, "gateway:\n  proxy_url: http://10.0.0.1:8642\n", nil)
	if c.Proxy.URL != "http://10.0.0.1:8642" {
		t.Errorf("proxy url = %q", c.Proxy.URL)
	}
}

// Seed: test_env_var_overrides_config.
func TestProxyURLEnvOverridesConfig(t *testing.T) {
	c := mustLoad(t, "gateway:\n  proxy_url: http://config-host:8642\n",
		map[string]string{"GATEWAY_PROXY_URL": "http://env-host:8642"})
	if c.Proxy.URL != "http://env-host:8642" {
		t.Errorf("proxy url = %q", c.Proxy.URL)
	}
}

// Seed: test_empty_string_treated_as_unset.
func TestProxyURLWhitespaceIsUnset(t *testing.T) {
	c := mustLoad(t, "", map[string]string{"GATEWAY_PROXY_URL": "   "})
	if c.Proxy.URL != "" {
		t.Errorf("proxy url = %q, want unset", c.Proxy.URL)
	}
	// Whitespace in the environment falls through to config.yaml.
	c = mustLoad(t, "gateway:\n  proxy_url: http://config-host:8642\n", map[string]string{"GATEWAY_PROXY_URL": " \t"})
	if c.Proxy.URL != "http://config-host:8642" {
		t.Errorf("proxy url = %q, want the config.yaml value", c.Proxy.URL)
	}
}

func TestProxyKeyIsTrimmed(t *testing.T) {
	c := mustLoad(t, "", map[string]string{"GATEWAY_PROXY_KEY": "  k3y \n"})
	if c.Proxy.Key != "k3y" {
		t.Errorf("key = %q", c.Proxy.Key)
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, "", nil)
	checks := []struct {
		name string
		ok   bool
	}{
		{"http addr", c.HTTPAddr == "127.0.0.1:8643"},
		{"model", c.Proxy.Model == "hermes-agent"},
		{"connect timeout", c.ConnectTimeout == 10*time.Second},
		{"idle timeout", c.IdleTimeout == 30*time.Minute},
		{"streaming", c.Streaming == Streaming{Enabled: true, Transport: "auto", EditInterval: 800 * time.Millisecond, BufferThreshold: 24, Cursor: " ▉"}},
		{"group sessions", c.GroupSessionsPerUser},
		{"thread sessions", !c.ThreadSessionsPerUser},
		{"busy mode", c.BusyInputMode == "interrupt"},
		{"log level", c.LogLevel == slog.LevelInfo},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("default %s is wrong: %+v", ch.name, c)
		}
	}
}

func TestHermesConfigKeysAreRead(t *testing.T) {
	c := mustLoad(t, `
model: anthropic/claude   # a Hermes key Herald does not use
gateway:
  proxy_url: http://h:8642
streaming:
  enabled: false
  transport: edit
  edit_interval: 1.5
  buffer_threshold: 40
  cursor: " ▌"
group_sessions_per_user: false
thread_sessions_per_user: true
display:
  busy_input_mode: queue
  platforms:
    telegram:
      streaming: false
`, nil)
	if c.Streaming != (Streaming{Enabled: false, Transport: "edit", EditInterval: 1500 * time.Millisecond, BufferThreshold: 40, Cursor: " ▌"}) {
		t.Errorf("streaming = %+v", c.Streaming)
	}
	if c.GroupSessionsPerUser || !c.ThreadSessionsPerUser || c.BusyInputMode != "queue" {
		t.Errorf("sessions/busy = %v %v %q", c.GroupSessionsPerUser, c.ThreadSessionsPerUser, c.BusyInputMode)
	}
	if on, ok := c.PlatformStreaming["telegram"]; !ok || on {
		t.Errorf("display.platforms.telegram.streaming = %v (set %v), want false", on, ok)
	}
	_, err := load(t, "display:\n  platforms:\n    matrix:\n      streaming: sometimes\n", nil)
	if err == nil || !strings.Contains(err.Error(), "display.platforms.matrix.streaming: expected true or false") {
		t.Errorf("err = %v", err)
	}
}

// A key neither Herald nor Hermes knows is a warning naming the closest
// key Herald knows; Hermes's own keys for the agent pass without a word.
func TestUnknownKeysAreWarnings(t *testing.T) {
	c := mustLoad(t, "model: x\ngateway:\n  proxy_url: http://h:1\n  other: 1\nterminal:\n  backend: docker\nstreaming:\n  trasnport: edit\nhttp:\n  adr: 1\n"+
		"agent:\n  max_turns: 60\n  base_ulr: http://m:1\ndisplay:\n  show_reasoning: true\n", nil)
	file := filepath.Join(filepath.Dir(c.File), "config.yaml")
	want := []string{
		file + ": agent.base_ulr is not a setting of Herald or Hermes and is ignored; did you mean agent.base_url?",
		file + ": display.show_reasoning is a Hermes setting Herald does not honour yet (reasoning is never shown in chats); it is ignored",
		file + ": gateway.other is not a setting of Herald or Hermes and is ignored; did you mean gateway.model?",
		file + ": http.adr is not a setting of Herald or Hermes and is ignored; did you mean http.addr?",
		file + ": streaming.trasnport is not a setting of Herald or Hermes and is ignored; did you mean streaming.transport?",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadValuesNameTheirSource(t *testing.T) {
	_, err := load(t, `
gateway:
  proxy_url: ftp://files.example
streaming:
  enabled: maybe
  buffer_threshold: {a: 1}
  edit_interval: soon
display:
  busy_input_mode: shout
`, map[string]string{"HERALD_IDLE_TIMEOUT": "0", "HERALD_HTTP_ADDR": "nonsense"})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %v, want *Error", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`config.yaml: gateway.proxy_url: expected an http:// or https:// URL with a host, got "ftp://files.example"`,
		`config.yaml: streaming.enabled: expected true or false, got "maybe"`,
		`config.yaml: streaming.buffer_threshold: line 6: expected a single value, got a mapping`,
		`config.yaml: streaming.edit_interval: expected a duration`,
		`config.yaml: display.busy_input_mode: expected one of interrupt, queue, steer, got "shout"`,
		`env HERALD_IDLE_TIMEOUT: expected a duration above zero, got "0"`,
		`env HERALD_HTTP_ADDR: expected host:port`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if len(cerr.Problems) != 7 {
		t.Errorf("%d problems reported, want all 7 at once:\n%s", len(cerr.Problems), msg)
	}
}

func TestEnvProxyURLMustBeHTTP(t *testing.T) {
	_, err := load(t, "", map[string]string{"GATEWAY_PROXY_URL": "192.168.1.100:8642"})
	if err == nil || !strings.Contains(err.Error(), "env GATEWAY_PROXY_URL: expected an http:// or https:// URL") {
		t.Errorf("err = %v", err)
	}
}

func TestURLPasswordIsNotEchoedInErrors(t *testing.T) {
	for name, value := range map[string]string{
		"GATEWAY_PROXY_URL":   "ftp://user:hunter2@host",
		"HERALD_DATABASE_URL": "mysql://herald:hunter2@db/herald",
	} {
		_, err := load(t, "", map[string]string{name: value})
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v; want an error naming it, without the password", name, err)
		}
	}
	c, err := load(t, "database:\n  url: postgresql://herald:hunter2@db:5432/herald?sslmode=disable\n", nil)
	if err != nil || c.Database.URL != "postgresql://herald:hunter2@db:5432/herald?sslmode=disable" || c.Database.MaxConnections != 10 {
		t.Errorf("database.url: %+v, %v", c.Database, err)
	}
}

func TestBrokenYAMLNamesTheFile(t *testing.T) {
	_, err := load(t, "gateway: [unclosed\n", nil)
	if err == nil || !strings.Contains(err.Error(), "config.yaml") {
		t.Errorf("err = %v, want one naming config.yaml", err)
	}
	_, err = load(t, "- a list\n", nil)
	if err == nil || !strings.Contains(err.Error(), "top level must be a mapping") {
		t.Errorf("err = %v", err)
	}
	_, err = load(t, "gateway: 5\n", nil)
	if err == nil || !strings.Contains(err.Error(), "gateway.proxy_url: line 1: gateway must be a mapping") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigFlagFileMustExist(t *testing.T) {
	_, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": t.TempDir()}), File: filepath.Join(t.TempDir(), "missing.yaml")})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("err = %v", err)
	}
}

func TestConfigFlagOverridesHomeFile(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.yaml"), []byte("gateway:\n  proxy_url: http://home:1\n"), 0o600)
	other := filepath.Join(t.TempDir(), "hermes.yaml")
	os.WriteFile(other, []byte("gateway:\n  proxy_url: http://other:1\n"), 0o600)
	c, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home}), File: other})
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.URL != "http://other:1" || c.File != other {
		t.Errorf("url = %q, file = %q", c.Proxy.URL, c.File)
	}
}

func TestDotEnvDoesNotOverrideTheEnvironment(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, ".env"), []byte("# comment\nGATEWAY_PROXY_URL=http://from-file:1\nexport GATEWAY_PROXY_KEY=\"file key\"\n"), 0o600)
	c, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home, "GATEWAY_PROXY_URL": "http://from-env:1"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.URL != "http://from-env:1" || c.Proxy.Key != "file key" {
		t.Errorf("url = %q, key = %q", c.Proxy.URL, c.Proxy.Key)
	}
	for _, e := range c.Effective() {
		if e.Env == "GATEWAY_PROXY_KEY" && e.Origin != filepath.Join(home, ".env")+": GATEWAY_PROXY_KEY" {
			t.Errorf("key origin = %q", e.Origin)
		}
	}
}

func TestRequireBackend(t *testing.T) {
	home := t.TempDir()
	_, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home}), RequireBackend: true})
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_PROXY_URL") || !strings.Contains(err.Error(), "agent.base_url") {
		t.Errorf("err = %v, want advice naming GATEWAY_PROXY_URL and agent.base_url", err)
	}
	_, err = Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home, "HERALD_AGENT_BASE_URL": "http://127.0.0.1:11434/v1"}), RequireBackend: true})
	if err == nil || !strings.Contains(err.Error(), "agent.model") {
		t.Errorf("err = %v, want agent.model required", err)
	}
	c, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home, "HERALD_AGENT_BASE_URL": "http://127.0.0.1:11434/v1", "HERALD_AGENT_MODEL": "llama3"}), RequireBackend: true})
	if err != nil || c.Backend() != "openai" {
		t.Errorf("err = %v, backend = %q", err, c.Backend())
	}
}

func TestEffectiveListsOrigins(t *testing.T) {
	c := mustLoad(t, "streaming:\n  cursor: \" |\"\n", map[string]string{"GATEWAY_PROXY_URL": "http://h:1"})
	origins := map[string]string{}
	for _, e := range c.Effective() {
		origins[e.Key] = e.Origin
	}
	if origins["gateway.proxy_url"] != "env GATEWAY_PROXY_URL" || !strings.HasSuffix(origins["streaming.cursor"], "config.yaml: streaming.cursor") || origins["http.addr"] != "default" {
		t.Errorf("origins = %v", origins)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "0.0.0.0:1": false, "192.0.2.1:1": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

func TestBrokenDotEnvDoesNotShowValues(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, ".env"), []byte("GATEWAY_PROXY_KEY=\"sk-supersecret-123\n"), 0o600)
	_, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home})})
	if err == nil || strings.Contains(err.Error(), "supersecret") || !strings.Contains(err.Error(), ".env") {
		t.Errorf("err = %v, want one naming .env without the value", err)
	}
}

func TestWorldWritableHomeIsRefused(t *testing.T) {
	home := t.TempDir()
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home})})
	if err == nil || !strings.Contains(err.Error(), home+" is writable by every user") || !strings.Contains(err.Error(), "chmod o-w "+home) {
		t.Errorf("err = %v, want a refusal naming the home and the fix", err)
	}
	if err := os.Chmod(home, 0o770); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home})}); err != nil {
		t.Errorf("a home only its group may write to: %v", err)
	}
	env := filepath.Join(home, ".env")
	if err := os.WriteFile(env, []byte("GATEWAY_PROXY_KEY=k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(env, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home})}); err == nil || !strings.Contains(err.Error(), env+" is writable by every user") {
		t.Errorf("a world-writable .env: err = %v, want a refusal naming it", err)
	}
}
