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

	"github.com/herald-chat/herald/internal/syncbuf"
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
	addr string // Dendrite's own address, behind the limiter's when there is one
	bin  string
	dir  string
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}

	mu        sync.Mutex
	stopped   bool
	limiter   *limiter         // nil without Options.Limit
	proxy     *httptest.Server // the limiter's listener; nil without it
	removeDir bool             // Close removes dir (Launch made it)
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
	for _, name := range Binaries {
		if _, err := exec.LookPath(name); err != nil {
			if testing.Short() {
				t.Skipf("Dendrite's %s is not on PATH (-short)", name)
			}
			t.Fatalf("Dendrite's %s is not on PATH: the Matrix tests run against a real homeserver. "+
				"Install it with .ci/dendrite.sh and put the directory it prints on PATH: export PATH=\"$(.ci/dendrite.sh):$PATH\"", name)
		}
	}
	s, err := start(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("starting Dendrite: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("Dendrite's log (last lines):\n%s", s.tail(60))
		}
	})
	return s
}

// Launch runs a Dendrite for a program other than a test (the
// benchmarks), with its data in a new temporary directory; Close stops it
// and removes the directory.
func Launch(opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "herald-dendrite-")
	if err != nil {
		return nil, err
	}
	s, err := start(dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.removeDir = true
	return s, nil
}

// start configures and runs a Dendrite with its data in dir, trying a few
// ports, behind the rate limit when opts asks for one.
func start(dir string, opts Options) (*Server, error) {
	bins := map[string]string{}
	for _, name := range Binaries {
		path, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("no %s of Dendrite's on PATH (install it with .ci/dendrite.sh): %w", name, err)
		}
		bins[name] = path
	}
	key := filepath.Join(dir, "matrix_key.pem")
	if _, err := run(bins["generate-keys"], "--private-key", key); err != nil {
		return nil, err
	}
	config, err := run(bins["generate-config"], "-ci", "-dir", dir, "-server", ServerName)
	if err != nil {
		return nil, err
	}
	replace := map[string]string{
		"  private_key: matrix_key.pem\n":      "  private_key: " + key + "\n",
		"  disable_federation: false\n":        "  disable_federation: true\n",
		"  server_notices:\n    enabled: true": "  server_notices:\n    enabled: false",
	}
	if opts.RateLimit {
		replace["  rate_limiting:\n    enabled: false\n"] = "  rate_limiting:\n    enabled: true\n"
	}
	if config, err = edit(config, replace); err != nil {
		return nil, err
	}
	configPath := filepath.Join(dir, "dendrite.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s, err := launch(bins["dendrite"], dir, addr)
		if err == nil {
			if opts.Limit != nil {
				s.proxy = httptest.NewServer(s.limit(*opts.Limit))
				s.url = s.proxy.URL
			}
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// launch starts Dendrite with the configuration in dir on addr and waits
// until it answers.
func launch(bin, dir, addr string) (*Server, error) {
	s := &Server{url: "http://" + addr, addr: addr, bin: bin, dir: dir, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "-config", filepath.Join(dir, "dendrite.yaml"), "-http-bind-address", addr, "-really-enable-open-registration")
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
	userID, accessToken, deviceID, err := s.RegisterUser(localpart, password)
	if err != nil {
		t.Fatal(err)
	}
	return userID, accessToken, deviceID
}

// RegisterUser is Register for programs other than tests.
func (s *Server) RegisterUser(localpart, password string) (userID, accessToken, deviceID string, err error) {
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
	err = s.post("/_matrix/client/v3/register", body, &out)
	return out.UserID, out.AccessToken, out.DeviceID, err
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
	if err := s.post("/_matrix/client/v3/login", body, &out); err != nil {
		t.Fatal(err)
	}
	return out.AccessToken, out.DeviceID
}

func (s *Server) post(path string, body []byte, out any) error {
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	return nil
}

// Close stops Dendrite (and the limiter in front of it), and removes its
// data when Launch made the directory.
func (s *Server) Close() {
	s.stop()
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.removeDir {
		os.RemoveAll(s.dir)
	}
}

// Stop stops Dendrite, as when the homeserver goes down; Restart starts
// it again.
func (s *Server) Stop() { s.stop() }

// Restart starts a stopped Dendrite again, on the same address with the
// same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	n, err := launch(s.bin, s.dir, s.addr)
	if err != nil {
		t.Fatalf("starting Dendrite again: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.log, s.done, s.stopped = n.cmd, n.log, n.done, false
	s.mu.Unlock()
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
	out := s.log.String()
	all := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// run runs a Dendrite tool and returns its standard output.
func run(bin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// edit replaces exact snippets of the generated configuration, failing if
// one is missing (a Dendrite version with another layout).
func edit(config string, replace map[string]string) (string, error) {
	for old, repl := range replace {
		if !strings.Contains(config, old) {
			return "", fmt.Errorf("no %q in the config Dendrite generated: is it v0.13.8?", old)
		}
		config = strings.Replace(config, old, repl, 1)
	}
	return config, nil
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
