// Package matrixtest runs a real Matrix homeserver, Dendrite, for tests,
// the way net/http/httptest runs an HTTP server: Start gives a fresh server
// on a loopback port with its own data in a temporary directory, stopped
// when the test ends.
//
// Dendrite is not a Go dependency of Herald: its binaries (dendrite,
// generate-config, generate-keys) must be on PATH. .ci/dendrite.sh installs
// them and prints their directory:
//
//	export PATH="$(.ci/dendrite.sh):$PATH"
package matrixtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries are the Dendrite programs Start needs on PATH.
var Binaries = []string{"dendrite", "generate-config", "generate-keys"}

// ServerName is the homeserver's name: users are @name:localhost.
const ServerName = "localhost"

// startTimeout bounds how long Dendrite may take to answer.
const startTimeout = 60 * time.Second

// Server is a running Dendrite, behind a rate limit of Synapse's kind
// when Options.Limit asks for one.
type Server struct {
	url  string
	dir  string
	cmd  *exec.Cmd
	log  *lockedWriter
	done chan struct{}

	mu      sync.Mutex
	stopped bool
	limiter *limiter // nil without Options.Limit
}

// Options change the server's configuration.
type Options struct {
	// RateLimit turns Dendrite's rate limiting on (5 requests, then a
	// 500 ms cool-off; M_LIMIT_EXCEEDED with retry_after_ms). It is off by
	// default, as in Dendrite's CI configuration.
	RateLimit bool
	// Limit, when set, puts a rate limit of Synapse's kind in front of
	// Dendrite, whose own limiter counts differently: see Limit.
	Limit *Limit
}

// Start runs a Dendrite for the test and stops it when the test ends. The
// test fails, naming .ci/dendrite.sh, when Dendrite is not installed; with
// -short it is skipped instead.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bins := map[string]string{}
	for _, name := range Binaries {
		path, err := exec.LookPath(name)
		if err != nil {
			if testing.Short() {
				t.Skipf("Dendrite's %s is not on PATH (-short)", name)
			}
			t.Fatalf("Dendrite's %s is not on PATH: the Matrix tests run against a real homeserver. "+
				"Install it with .ci/dendrite.sh and put the directory it prints on PATH: export PATH=\"$(.ci/dendrite.sh):$PATH\"", name)
		}
		bins[name] = path
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "matrix_key.pem")
	run(t, bins["generate-keys"], "--private-key", key)
	config := run(t, bins["generate-config"], "-ci", "-dir", dir, "-server", ServerName)
	config = edit(t, config, map[string]string{
		"  private_key: matrix_key.pem\n":      "  private_key: " + key + "\n",
		"  disable_federation: false\n":        "  disable_federation: true\n",
		"  server_notices:\n    enabled: true": "  server_notices:\n    enabled: false",
	})
	if opts.RateLimit {
		config = edit(t, config, map[string]string{"  rate_limiting:\n    enabled: false\n": "  rate_limiting:\n    enabled: true\n"})
	}
	configPath := filepath.Join(dir, "dendrite.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := launch(bins["dendrite"], dir, configPath)
		if err == nil {
			if opts.Limit != nil {
				proxy := httptest.NewServer(s.limit(*opts.Limit))
				s.url = proxy.URL
				t.Cleanup(proxy.Close)
			}
			t.Cleanup(func() {
				s.stop()
				if t.Failed() {
					t.Logf("Dendrite's log (last lines):\n%s", s.tail(60))
				}
			})
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting Dendrite: %v", lastErr)
	return nil
}

// launch starts Dendrite on a free loopback port and waits until it answers.
func launch(bin, dir, config string) (*Server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{url: "http://" + addr, dir: dir, log: &lockedWriter{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "-config", config, "-http-bind-address", addr, "-really-enable-open-registration")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/_matrix/client/versions", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("dendrite exited at start:\n%s", s.tail(30))
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("dendrite did not answer within %s:\n%s", startTimeout, s.tail(30))
		case <-tick.C:
		}
	}
}

// URL is the homeserver's base URL.
func (s *Server) URL() string { return s.url }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Register creates a user with open registration (m.login.dummy) and
// returns its id and the access token and device id of its first login.
func (s *Server) Register(t testing.TB, localpart, password string) (userID, accessToken, deviceID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"username":                    localpart,
		"password":                    password,
		"initial_device_display_name": "matrixtest",
		"auth":                        map[string]string{"type": "m.login.dummy"},
	})
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	s.post(t, "/_matrix/client/v3/register", body, &out)
	return out.UserID, out.AccessToken, out.DeviceID
}

// Login logs an existing user in as a new device.
func (s *Server) Login(t testing.TB, localpart, password string) (accessToken, deviceID string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": localpart},
		"password":   password,
	})
	var out struct {
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	s.post(t, "/_matrix/client/v3/login", body, &out)
	return out.AccessToken, out.DeviceID
}

func (s *Server) post(t testing.TB, path string, body []byte, out any) {
	t.Helper()
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
}

// stop ends Dendrite: politely, then not.
func (s *Server) stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// tail is the end of Dendrite's output.
func (s *Server) tail(lines int) string {
	s.log.mu.Lock()
	out := s.log.buf.String()
	s.log.mu.Unlock()
	all := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// lockedWriter collects Dendrite's output.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// run runs a Dendrite tool and returns its standard output.
func run(t testing.TB, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// edit replaces exact snippets of the generated configuration, failing if
// one is missing (a Dendrite version with another layout).
func edit(t testing.TB, config string, replace map[string]string) string {
	t.Helper()
	for old, repl := range replace {
		if !strings.Contains(config, old) {
			t.Fatalf("Dendrite's generated config has no %q: is it v0.13.8?", old)
		}
		config = strings.Replace(config, old, repl, 1)
	}
	return config
}

// freeAddr finds a free loopback port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	if _, _, err := net.SplitHostPort(ln.Addr().String()); err != nil {
		return "", errors.New("unexpected listener address")
	}
	return ln.Addr().String(), nil
}
