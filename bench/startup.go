package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/herald-chat/herald/internal/sim"
)

// startupResult is the real binary's start-up time and size.
type startupResult struct {
	Binary   string
	Built    bool // built by the bench (else given with -herald)
	Size     int64
	Fresh    dist // first start: HERALD_HOME empty, the database created
	Restart  dist // a start on the state the previous one left
	Err      error
	BuildCmd string
}

// buildCommand is how the bench builds the binary: as `make build` does.
var buildCommand = []string{"go", "build", "-tags", "goolm", "-trimpath", "-ldflags", "-s -w", "-o"}

// moduleRoot finds the directory of Herald's go.mod, from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/herald-chat/herald\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of Herald's from the working directory up")
		}
		dir = parent
	}
}

// buildHerald builds a static binary into dir.
func buildHerald(ctx context.Context, dir string) (string, string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	out := filepath.Join(dir, "herald")
	args := append(append([]string{}, buildCommand[1:]...), out, "./cmd/herald")
	cmd := exec.CommandContext(ctx, buildCommand[0], args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	shown := "CGO_ENABLED=0 go build -tags goolm -trimpath -ldflags '-s -w' -o herald ./cmd/herald"
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", shown, fmt.Errorf("%s: %w\n%s", shown, err, b)
	}
	return out, shown, nil
}

// measureStartup starts `herald run` with the web chat runs times on a
// fresh HERALD_HOME and as often again on the state left, relaying to a
// simulator, and times each start to the first 200 from /readyz.
func measureStartup(ctx context.Context, binary string, runs int) startupResult {
	res := startupResult{Binary: binary}
	if binary == "" {
		dir, err := os.MkdirTemp("", "herald-bench-bin-")
		if err != nil {
			res.Err = err
			return res
		}
		defer os.RemoveAll(dir)
		res.Built = true
		if binary, res.BuildCmd, err = buildHerald(ctx, dir); err != nil {
			res.Err = err
			return res
		}
		res.Binary = "herald (built by the bench)"
	}
	fi, err := os.Stat(binary)
	if err != nil {
		res.Err = err
		return res
	}
	res.Size = fi.Size()

	s, err := startSim(sim.Options{})
	if err != nil {
		res.Err = err
		return res
	}
	defer s.close()
	var fresh, restart []time.Duration
	for range runs {
		home, err := os.MkdirTemp("", "herald-bench-home-")
		if err != nil {
			res.Err = err
			return res
		}
		d1, err1 := timeStart(ctx, binary, home, s.URL)
		d2, err2 := timeStart(ctx, binary, home, s.URL)
		_ = os.RemoveAll(home)
		if err := errors.Join(err1, err2); err != nil {
			res.Err = err
			return res
		}
		fresh, restart = append(fresh, d1), append(restart, d2)
	}
	res.Fresh, res.Restart = newDist(fresh), newDist(restart)
	return res
}

// timeStart starts the binary once and times it to /readyz 200, then
// stops it with SIGTERM.
func timeStart(ctx context.Context, binary, home, simURL string) (time.Duration, error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(binary, "run")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"HERALD_HOME=" + home,
		"GATEWAY_PROXY_URL=" + simURL,
		"HERALD_HTTP_ADDR=" + addr,
		"HERALD_LOG_LEVEL=warn",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + "/readyz"

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := start.Add(30 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d := time.Since(start)
				stop()
				return d, nil
			}
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("herald run exited before it was ready: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			stop()
			return 0, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return 0, fmt.Errorf("herald run not ready in 30 s: %s", strings.TrimSpace(stderr.String()))
		}
		time.Sleep(200 * time.Microsecond) // polling the port: the resolution of the figure
	}
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
