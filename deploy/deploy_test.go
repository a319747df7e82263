// Package deploy holds the files to install Herald with (a container
// image, compose files, a systemd unit); its test keeps them true to the
// code.
package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/herald-chat/herald/internal/app" // registers the platforms, and their settings
	"github.com/herald-chat/herald/internal/config"
)

var files = []string{"Dockerfile", "compose.yaml", "compose.replicas.yaml", "herald.service"}

// Every Herald or Hermes gateway variable the files set is one Herald
// reads: a renamed setting cannot leave them behind.
func TestVariablesAreSettings(t *testing.T) {
	name := regexp.MustCompile(`\b(?:HERALD|GATEWAY|TELEGRAM|WEBCHAT|MATRIX|DISCORD|SLACK)_[A-Z0-9_]+`)
	for _, f := range files {
		text := read(t, f)
		for _, v := range name.FindAllString(text, -1) {
			if _, ok := config.Lookup(v); !ok {
				t.Errorf("%s names %s, which is not a setting of Herald", f, v)
			}
		}
	}
}

// The image builds with the Go of go.mod, checks its health with herald
// health (it has no curl), runs as a non-root user, and listens on every
// interface at Herald's default port.
func TestImage(t *testing.T) {
	docker := read(t, "Dockerfile")
	goMod := read(t, "../go.mod")
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)
	if goLine == nil || !strings.Contains(docker, "FROM golang:"+goLine[1]+"-") {
		t.Errorf("the Dockerfile's builder is not go.mod's Go %v", goLine)
	}
	port := ""
	for _, s := range config.All() {
		if s.Env == "HERALD_HTTP_ADDR" {
			_, port, _ = net.SplitHostPort(s.Default)
		}
	}
	for _, want := range []string{`HEALTHCHECK`, `"/usr/local/bin/herald", "health"`, "USER nonroot", "VOLUME /data", "-tags goolm", "CGO_ENABLED=0",
		"HERALD_HTTP_ADDR=0.0.0.0:" + port + "\n", "EXPOSE " + port + "\n"} {
		if !strings.Contains(docker, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

// The unit passes systemd-analyze verify (Debian's systemd package; .ci/deps
// installs it), with ExecStart pointing at a binary that exists.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd package; .ci/deps installs it)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(read(t, "herald.service"), "/usr/local/bin/herald", bin)
	path := filepath.Join(dir, "herald.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=herald", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure", "Environment=HERALD_HOME=/var/lib/herald"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
