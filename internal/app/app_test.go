package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/platform/matrix"
	"github.com/herald-chat/herald/internal/platform/slack"
	"github.com/herald-chat/herald/internal/platform/telegram"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silent is a backend nobody talks to in these tests.
type silent struct{}

func (silent) Name() string { return "silent" }
func (silent) Run(context.Context, agent.Turn, func(agent.Event)) agent.Result {
	return agent.Result{}
}

// The defaults build a gateway with the web chat on the listener, beside
// the operations endpoints and any extra routes; Run serves them until
// its context ends, then closes everything.
func TestBuildAndRunOnTheDefaults(t *testing.T) {
	cfg := configtest.MustLoad(t, "", map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0"})
	extra := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "extra") })
	a, err := Build(t.Context(), cfg, Options{Backend: silent{}, Routes: map[string]http.Handler{"GET /extra": extra}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/readyz": `"ready"`, "/": "<!doctype html>", "/extra": "extra"} {
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), want) {
			t.Errorf("GET %s: %s %.80q, want 200 with %s", path, resp.Status, body, want)
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get("http://" + a.Addr() + "/healthz"); err == nil {
		t.Error("the listener still answers after Run returned")
	}
}

// Without a platform there is nothing to relay: Build says how to enable one.
func TestBuildRefusesWithoutAPlatform(t *testing.T) {
	cfg := configtest.MustLoad(t, "", map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0", "WEBCHAT_ENABLED": "false"})
	_, err := Build(t.Context(), cfg, Options{Backend: silent{}})
	if err == nil || !strings.Contains(err.Error(), "WEBCHAT_ENABLED") {
		t.Errorf("err = %v, want one saying how to enable a platform", err)
	}
}

// A second gateway on the same HERALD_HOME is refused at once, naming the
// first one's PID; once the first has stopped, one may start again.
func TestOneGatewayPerHome(t *testing.T) {
	env := map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0"}
	cfg := configtest.MustLoad(t, "", env)
	first, err := Build(t.Context(), cfg, Options{Backend: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(t.Context(), cfg, Options{Backend: silent{}})
	want := "HERALD_HOME " + cfg.Home + " is in use by another Herald (PID " + strconv.Itoa(os.Getpid()) + ")"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("second Build: %v, want %q", err, want)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := first.Run(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := Build(t.Context(), cfg, Options{Backend: silent{}})
	if err != nil {
		t.Fatalf("Build after the first stopped: %v", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	again.Run(ctx)
}

// A state database that is not one (a torn copy, another file in its
// place) or cannot be opened stops the start with an error naming the
// file, and the file is left as it was for the operator to look at.
func TestUnusableStateDatabaseIsAClearError(t *testing.T) {
	for name, spoil := range map[string]func(path string) error{
		"not a database": func(path string) error {
			return os.WriteFile(path, []byte(strings.Repeat("this is not an SQLite database\n", 200)), 0o600)
		},
		"a directory": func(path string) error { return os.Mkdir(path, 0o700) },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := configtest.MustLoad(t, "", map[string]string{"HERALD_HTTP_ADDR": "127.0.0.1:0"})
			path := filepath.Join(cfg.Home, "state.db")
			if err := spoil(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			_, err := Build(t.Context(), cfg, Options{Backend: silent{}})
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Build: %v, want an error naming %s", err, path)
			}
			if name == "not a database" && !strings.Contains(err.Error(), "restore it from a backup, or move it aside") {
				t.Errorf("Build: %v, want what to do about it", err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the unusable file was changed")
			}
			// The lock went with the failed start: a fixed home starts.
			if err := os.RemoveAll(path); err != nil {
				t.Fatal(err)
			}
			a, err := Build(t.Context(), cfg, Options{Backend: silent{}})
			if err != nil {
				t.Fatalf("Build once the file is gone: %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			a.Run(ctx)
		})
	}
}

// Left unset, unauthorized_dm_behavior pairs, as in Hermes, except on a
// platform with an allowlist (its own or GATEWAY_ALLOWED_USERS); set, it
// is what it says on every platform.
func TestUnknownDMsArePairedAsInHermes(t *testing.T) {
	pairs := func(yaml string, env map[string]string) map[string]bool {
		return runnerOptions(configtest.MustLoad(t, yaml, env), slog.New(slog.DiscardHandler), ops.NewMetrics()).PairUnknownDMs
	}
	if got := pairs("", map[string]string{"TELEGRAM_ALLOWED_USERS": "1"}); got["telegram"] || !got["matrix"] {
		t.Errorf("unset, a Telegram allowlist: %v; want Telegram to ignore, Matrix to pair", got)
	}
	if got := pairs("", map[string]string{"TELEGRAM_GROUP_ALLOWED_CHATS": "-100"}); got["telegram"] || !got["matrix"] {
		t.Errorf("unset, a Telegram group allowlist: %v; want Telegram to ignore, Matrix to pair", got)
	}
	if got := pairs("", map[string]string{"GATEWAY_ALLOWED_USERS": "1"}); got["matrix"] || got["telegram"] {
		t.Errorf("unset, GATEWAY_ALLOWED_USERS: %v; want every platform to ignore", got)
	}
	if got := pairs("gateway:\n  unauthorized_dm_behavior: pair\n", map[string]string{"TELEGRAM_ALLOWED_USERS": "1"}); !got["telegram"] {
		t.Errorf("pair set under gateway: %v; want Telegram to pair", got)
	}
}

// The compatibility table cannot drift from the registry, every platform's
// included: what it says Herald reads, Herald reads, with Hermes's default
// or, where it says so, another one; what it says Herald does not read,
// Herald does not read.
func TestHermesSettingsAreMarkedTruly(t *testing.T) {
	settings := map[string]config.Setting{}
	for _, s := range config.All() {
		for _, n := range append([]string{s.Env, s.Key}, s.AltKeys...) {
			if n != "" {
				settings[n] = s
			}
		}
	}
	seen := map[string]bool{}
	for _, h := range config.HermesSettings() {
		if seen[h.Name] {
			t.Errorf("%s is in the table twice", h.Name)
		}
		seen[h.Name] = true
		s, read := settings[h.Name]
		switch {
		case strings.HasPrefix(h.Name, "display.platforms.<name>."):
			// Read from display.platforms as written: no default of its own.
			read, s.Default = true, h.Default
			if h.Mark == config.OtherDefault {
				s.Default = "(the global setting's)"
			}
		case strings.Contains(h.Name, "<name>"):
			// Every platform's, read where one of them reads it (Hermes
			// too reads reply_to_mode for Telegram and Discord only).
			for _, name := range []string{"slack", "telegram", "discord", "matrix", "webchat"} {
				if got, ok := settings[strings.ReplaceAll(h.Name, "<name>", name)]; ok {
					s, read = got, true
					break
				}
			}
		}
		switch h.Mark {
		case config.Same:
			if !read || s.Default != h.Default {
				t.Errorf("%s is marked %q: read %v, default %q, Hermes's %q", h.Name, h.Mark, read, s.Default, h.Default)
			}
		case config.OtherDefault:
			if !read || s.Default == h.Default {
				t.Errorf("%s is marked %q: read %v, default %q, Hermes's %q", h.Name, h.Mark, read, s.Default, h.Default)
			}
		case config.NotRelay, config.NotYet:
			if read {
				t.Errorf("%s is marked %q, yet Herald reads it", h.Name, h.Mark)
			}
		case config.HeraldOnly:
			if !read {
				t.Errorf("%s is marked %q, yet Herald does not read it", h.Name, h.Mark)
			}
		default:
			t.Errorf("%s is marked %q, which is not a mark of the table", h.Name, h.Mark)
		}
		if h.Mark != config.Same && h.Mark != config.HeraldOnly && h.Why == "" {
			t.Errorf("%s is marked %q without saying why", h.Name, h.Mark)
		}
	}
}

// A Hermes user's config.yaml and .env, written from the names Hermes
// documents, load as they are and mean what they mean in Hermes.
func TestHermesConfigurationLoads(t *testing.T) {
	home := t.TempDir()
	for _, name := range []string{"config.yaml", ".env"} {
		data, err := os.ReadFile(filepath.Join("testdata", "hermes", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range config.Registry() {
		t.Setenv(v.Name, "") // restored after the test
		os.Unsetenv(v.Name)  // unset, so that .env is read
	}
	t.Setenv("HERALD_HOME", home)
	cfg, err := config.Load(config.Options{RequireBackend: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxy.URL != "http://hermes.lan:8642" || cfg.Proxy.Key != "hermes-api-key-for-tests" || cfg.PairsUnknownDMs("telegram") ||
		!slices.Equal(cfg.ResetTriggers, []string{"/new", "/reset", "/fresh"}) || cfg.GroupSessionsPerUser || !cfg.ThreadSessionsPerUser {
		t.Errorf("gateway: %+v", cfg)
	}
	// SESSION_IDLE_MINUTES is over session_reset.idle_minutes, as in Hermes.
	if cfg.SessionResetMode() != "both" || !reflect.DeepEqual(cfg.SessionReset, config.SessionReset{Mode: "both", IdleMinutes: 90, AtHour: 5, Notify: true, Quiet: []string{"telegram"}}) {
		t.Errorf("session reset %q %+v", cfg.SessionResetMode(), cfg.SessionReset)
	}
	if cfg.Streaming != (config.Streaming{Enabled: true, Transport: "edit", EditInterval: 1200 * time.Millisecond, BufferThreshold: 40, Cursor: " ▌"}) {
		t.Errorf("streaming %+v", cfg.Streaming)
	}
	// display.* is over its variable, as Hermes copies the file's value
	// over the environment for these.
	if cfg.BusyInputMode != "steer" || !cfg.BusyAck || cfg.ToolProgress != "new" || cfg.PlatformToolProgress["telegram"] != "off" ||
		cfg.PlatformToolProgress["matrix"] != "all" || !cfg.PlatformStreaming["telegram"] {
		t.Errorf("display: busy %q, tools %q %v, streaming %v", cfg.BusyInputMode, cfg.ToolProgress, cfg.PlatformToolProgress, cfg.PlatformStreaming)
	}
	tg := cfg.Platforms["telegram"].(*telegram.Options)
	if !tg.RequireMention || !slices.Equal(tg.FreeResponseChats, []string{"-1001111111111"}) || tg.BaseURL != "http://bots.lan:8081" ||
		len(tg.MentionPatterns) != 1 || !tg.MentionPatterns[0].MatchString("Hermes, hello") || !slices.Equal(tg.IgnoredThreads, []string{"7"}) ||
		tg.Proxy != "socks5://127.0.0.1:1080" || !tg.Enabled() {
		t.Errorf("telegram %+v", tg)
	}
	if !slices.Equal(cfg.NoTyping, []string{"matrix"}) {
		t.Errorf("typing indicators off on %q, want matrix's", cfg.NoTyping)
	}
	if got := cfg.PlatformAccess["telegram"]; !slices.Equal(got.GroupChats, []string{"-1001111111111"}) ||
		!slices.Equal(got.Users, []string{"222222", "333333"}) || !slices.Equal(got.GroupUsers, []string{"444444"}) {
		t.Errorf("telegram's allowlists read as %+v", got)
	}
	if got := cfg.PlatformAccess["matrix"].Users; !slices.Equal(got, []string{"@bob:example.org"}) {
		t.Errorf("platforms.matrix.extra.allow_from read as %q", got)
	}
	if !cfg.Platforms["slack"].(*slack.Options).FlatReplies {
		t.Error("platforms.slack.extra.reply_in_thread: false was not read")
	}
	if !slices.Equal(cfg.QuietRestarts, []string{"telegram"}) {
		t.Errorf("restart notices off on %q, want telegram's", cfg.QuietRestarts)
	}
	if home, ok := tg.Home(); !ok || home != (chat.Target{ChatID: "-1002222222222", ThreadID: "5"}) || tg.HomeChannel.Name != "Home" {
		t.Errorf("telegram's home channel %+v %v (%+v)", home, ok, tg.HomeChannel)
	}
	mx := cfg.Platforms["matrix"].(*matrix.Options)
	if home, ok := mx.Home(); !ok || home != (chat.Target{ChatID: "!home:example.org", ThreadID: "$root"}) || mx.HomeRoom.Name != "Ops" {
		t.Errorf("matrix's home room %+v %v (%+v)", home, ok, mx.HomeRoom)
	}
	if mx.E2EE != matrix.E2EERequired || mx.AutoThread || mx.RequireMention || !slices.Equal(mx.FreeResponseRooms, []string{"!room:example.org"}) {
		t.Errorf("matrix %+v", mx)
	}
	for _, e := range cfg.Effective() {
		if e.Key == "platforms.telegram.require_mention" && e.Origin != filepath.Join(home, "config.yaml")+": telegram.require_mention" {
			t.Errorf("require_mention read from %q, want the telegram: section named", e.Origin)
		}
	}
	file := filepath.Join(home, "config.yaml")
	want := []string{
		file + ": display.show_reasoning is a Hermes setting Herald does not honour yet (reasoning is never shown in chats); it is ignored",
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(want, "\n"))
	}
}
