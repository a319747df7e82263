package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/homelock"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

const (
	doctorBotToken = "123456789:AAEdoctorTestTokenForTheHeraldCommand"
	doctorAgentKey = "the-agent-servers-key"
)

// doctorWorld is a Telegram fake and a Hermes API server that wants a
// key, with the settings of a gateway that uses both.
func doctorWorld(t *testing.T) *telegramtest.Server {
	t.Helper()
	isolate(t)
	tg := telegramtest.NewServer(telegramtest.Options{Token: doctorBotToken})
	t.Cleanup(tg.Close)
	tg.Bot.CanReadAllGroupMessages = true // privacy mode off, as groups without a mention need
	agent := httptest.NewServer(sim.New(sim.Options{Key: doctorAgentKey, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(agent.Close)
	t.Setenv("GATEWAY_PROXY_URL", agent.URL)
	t.Setenv("GATEWAY_PROXY_KEY", doctorAgentKey)
	t.Setenv("TELEGRAM_BOT_TOKEN", doctorBotToken)
	t.Setenv("TELEGRAM_BASE_URL", tg.URL)
	return tg
}

// failing is the checklist's first line for check that is not OK, with
// the lines under it (a long detail's and the fix), or "".
func failing(out, check string) string {
	var b strings.Builder
	for l := range strings.Lines(out) {
		switch {
		case b.Len() == 0 && len(l) > 6 && !strings.HasPrefix(l, "OK") && strings.HasPrefix(l[6:], check):
			b.WriteString(l)
		case b.Len() > 0 && strings.HasPrefix(l, " "):
			b.WriteString(l)
		case b.Len() > 0:
			return b.String()
		}
	}
	return b.String()
}

// Everything in order: every line OK, exit status 0.
func TestDoctorAllWell(t *testing.T) {
	doctorWorld(t)
	out, err := herald(t, "doctor")
	if err != nil {
		t.Fatalf("herald doctor: %v\n%s", err, out)
	}
	for _, want := range []string{
		"OK    configuration",
		"OK    HERALD_HOME ",
		"OK    store ",
		"OK    agent server: GET http://127.0.0.1",
		"OK    telegram: bot token",
		"OK    telegram: webhook",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARN") || strings.Contains(out, "FAIL") {
		t.Errorf("a check did not pass:\n%s", out)
	}
	if strings.Contains(out, doctorBotToken) || strings.Contains(out, doctorAgentKey) {
		t.Errorf("a secret in the checklist:\n%s", out)
	}
}

// Each thing a new user gets wrong has its FAIL line and its fix, and
// the command exits with an error.
func TestDoctorNamesWhatToFix(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, tg *telegramtest.Server)
		check string
		want  []string
	}{
		{"wrong agent key", func(t *testing.T, _ *telegramtest.Server) { t.Setenv("GATEWAY_PROXY_KEY", "not-the-key") },
			"agent server: GET", []string{"FAIL", "/v1/models", "the key was refused (401", "fix: set GATEWAY_PROXY_KEY"}},
		{"no agent key", func(t *testing.T, _ *telegramtest.Server) { t.Setenv("GATEWAY_PROXY_KEY", "") },
			"agent server: GET", []string{"FAIL", "a key is required (401), and GATEWAY_PROXY_KEY is not set"}},
		{"agent server down", func(t *testing.T, _ *telegramtest.Server) {
			t.Setenv("GATEWAY_PROXY_URL", "http://"+closedAddr(t))
		}, "agent server: GET", []string{"FAIL", "/health", "cannot be reached", "connection refused", "fix: start the agent server"}},
		{"not an agent server", func(t *testing.T, tg *telegramtest.Server) { t.Setenv("GATEWAY_PROXY_URL", tg.URL) },
			"agent server: GET", []string{"FAIL", "not found (404)", "fix: point GATEWAY_PROXY_URL at the agent's API server"}},
		{"wrong bot token", func(t *testing.T, _ *telegramtest.Server) {
			t.Setenv("TELEGRAM_BOT_TOKEN", "123456789:AAEaTokenTelegramDoesNotKnowAtAll")
		}, "telegram: bot token", []string{"FAIL", "Telegram refused the token", "Unauthorized", "fix: copy the token @BotFather gave"}},
		{"a further bot's token wrong", func(t *testing.T, _ *telegramtest.Server) {
			t.Setenv("TELEGRAM_ACCOUNTS", "support=987654321:AAEaTokenTelegramDoesNotKnowAtAll")
		}, "telegram-support: bot token", []string{"FAIL", "Telegram refused the token", "Unauthorized", "fix: copy the token @BotFather gave into TELEGRAM_ACCOUNTS (support=…)"}},
		{"a webhook set", func(t *testing.T, tg *telegramtest.Server) {
			resp, err := http.Get(tg.URL + "/bot" + doctorBotToken + "/setWebhook?url=https://hooks.example.com/secret-path")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}, "telegram: webhook", []string{"FAIL", "a webhook is set (to hooks.example.com)", "fix: stop the program that set it"}},
		{"Bot API unreachable", func(t *testing.T, _ *telegramtest.Server) {
			t.Setenv("TELEGRAM_BASE_URL", "http://"+closedAddr(t))
		}, "telegram: Bot API", []string{"FAIL", "cannot be reached", "fix: check the network"}},
		{"HERALD_HOME not writable", func(t *testing.T, _ *telegramtest.Server) {
			home := t.TempDir()
			os.Chmod(home, 0o500)
			t.Cleanup(func() { os.Chmod(home, 0o700) })
			t.Setenv("HERALD_HOME", home)
		}, "HERALD_HOME", []string{"FAIL", "cannot be written", "fix: give the user running Herald write access"}},
		{"HERALD_HOME a file", func(t *testing.T, _ *telegramtest.Server) {
			file := t.TempDir() + "/home"
			os.WriteFile(file, nil, 0o600)
			t.Setenv("HERALD_HOME", file)
		}, "configuration", []string{"FAIL", "HERALD_HOME", "not a directory"}},
		{"configuration invalid", func(t *testing.T, _ *telegramtest.Server) { t.Setenv("HERALD_LEASE_TTL", "lots") },
			"configuration", []string{"FAIL", "HERALD_LEASE_TTL", "fix: correct what the message names"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := doctorWorld(t)
			c.setup(t, tg)
			if c.name == "HERALD_HOME not writable" && os.Geteuid() == 0 {
				t.Skip("root writes to any directory")
			}
			out, err := herald(t, "doctor")
			if err == nil || !strings.Contains(err.Error(), "checks failed") {
				t.Errorf("herald doctor: %v, want checks failed", err)
			}
			block := failing(out, c.check)
			for _, want := range c.want {
				if !strings.Contains(block, want) {
					t.Errorf("%s: %q not in its line:\n%s\n\nwhole checklist:\n%s", c.check, want, block, out)
				}
			}
		})
	}
}

// With a gateway holding HERALD_HOME, doctor says which process holds it
// and lets it be; --json gives the same checklist to scripts.
func TestDoctorBesideARunningGateway(t *testing.T) {
	doctorWorld(t)
	home := os.Getenv("HERALD_HOME")
	lock, err := homelock.Acquire(home)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	out, err := herald(t, "doctor", "--json")
	if err != nil {
		t.Fatalf("herald doctor --json: %v\n%s", err, out)
	}
	var findings []platform.Finding
	if err := json.Unmarshal([]byte(out), &findings); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	held := false
	for _, f := range findings {
		if f.Status != platform.OK {
			t.Errorf("%+v", f)
		}
		if f.Check == "HERALD_HOME lock" && strings.Contains(f.Detail, "held by a running Herald (PID "+strconv.Itoa(os.Getpid())+")") {
			held = true
		}
	}
	if !held {
		t.Errorf("no finding names the lock's holder: %s", out)
	}
	if _, err := homelock.Acquire(home); err == nil {
		t.Error("the gateway's lock was lost to doctor")
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	return addr
}
