package matrix

import (
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/platform"
)

func TestMatrixDisabledByDefault(t *testing.T) {
	m := settingsOf(configtest.MustLoad(t, "", nil))
	if m.Enabled() {
		t.Error("Matrix enabled without MATRIX_HOMESERVER")
	}
	if !m.RequireMention || !m.Reactions || m.ProcessNotices || !m.AutoThread {
		t.Errorf("defaults: require_mention %v, reactions %v, process_notices %v, auto_thread %v", m.RequireMention, m.Reactions, m.ProcessNotices, m.AutoThread)
	}
	if m.E2EE != "optional" || m.SessionScope != "auto" || m.MaxLength != 16000 ||
		m.Budget != MessageBudget || m.MaxMediaBytes != 100<<20 {
		t.Errorf("defaults: %+v", m)
	}
}

func TestMatrixLoginIsRequired(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string // "" for no error
	}{
		{map[string]string{"MATRIX_HOMESERVER": "https://matrix.example.org"}, "set MATRIX_ACCESS_TOKEN, or MATRIX_USER_ID and MATRIX_PASSWORD"},
		{map[string]string{"MATRIX_HOMESERVER": "https://matrix.example.org", "MATRIX_USER_ID": "@bot:example.org"}, "MATRIX_PASSWORD is missing"},
		{map[string]string{"MATRIX_HOMESERVER": "https://matrix.example.org", "MATRIX_PASSWORD": "pw"}, "MATRIX_USER_ID is missing"},
		{map[string]string{"MATRIX_HOMESERVER": "https://matrix.example.org", "MATRIX_ACCESS_TOKEN": "syt_x"}, ""},
		{map[string]string{"MATRIX_HOMESERVER": "https://matrix.example.org", "MATRIX_USER_ID": "@bot:example.org", "MATRIX_PASSWORD": "pw"}, ""},
		{map[string]string{"MATRIX_ACCESS_TOKEN": "syt_x"}, ""}, // not enabled: nothing to check
	}
	for _, c := range cases {
		cfg, err := configtest.Load(t, "", c.env)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: error %v, want one saying %q", c.env, err, c.want)
		case c.want != "" && !strings.Contains(err.Error(), "MATRIX_HOMESERVER is set"):
			t.Errorf("%v: error %v does not name MATRIX_HOMESERVER", c.env, err)
		case c.want == "" && c.env["MATRIX_HOMESERVER"] != "" && !settingsOf(cfg).Enabled():
			t.Errorf("%v: Matrix not enabled", c.env)
		}
	}
}

func TestMatrixEncryptionMode(t *testing.T) {
	base := map[string]string{"MATRIX_HOMESERVER": "https://hs.example", "MATRIX_ACCESS_TOKEN": "t"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{with(), "optional"},
		{with("MATRIX_ENCRYPTION", "true"), "required"},
		{with("MATRIX_ENCRYPTION", "false"), "off"},
		{with("MATRIX_E2EE_MODE", "off"), "off"},
		{with("MATRIX_E2EE_MODE", "Required"), "required"},
		{with("MATRIX_E2EE_MODE", "require"), "required"},
		{with("MATRIX_E2EE_MODE", "on"), "required"},
		{with("MATRIX_E2EE_MODE", "1"), "required"},
		{with("MATRIX_E2EE_MODE", "preferred"), "optional"},
		{with("MATRIX_E2EE_MODE", "prefer"), "optional"},
		{with("MATRIX_E2EE_MODE", "disabled"), "off"},
		{with("MATRIX_E2EE_MODE", "required", "MATRIX_ENCRYPTION", "true"), "required"},
	} {
		cfg, err := configtest.Load(t, "", c.env)
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if got := settingsOf(cfg).E2EE; got != c.want {
			t.Errorf("%v: mode %q, want %q", c.env, got, c.want)
		}
	}
	_, err := configtest.Load(t, "", with("MATRIX_E2EE_MODE", "off", "MATRIX_ENCRYPTION", "true"))
	if err == nil || !strings.Contains(err.Error(), "MATRIX_E2EE_MODE=off contradicts MATRIX_ENCRYPTION=true") {
		t.Errorf("contradicting modes: %v", err)
	}
	_, err = configtest.Load(t, "", with("MATRIX_E2EE_MODE", "sometimes"))
	if err == nil || !strings.Contains(err.Error(), "env MATRIX_E2EE_MODE: expected one of off, optional, required (or Hermes's spellings of them), got \"sometimes\"") {
		t.Errorf("bad mode: %v", err)
	}
}

func TestMatrixSettingsFromConfigYAML(t *testing.T) {
	cfg := configtest.MustLoad(t, `
matrix:
  homeserver: https://matrix.example.org/
  user_id: "@herald:example.org"
  require_mention: false
  free_response_rooms: ["!free:example.org"]
  allowed_rooms: "!a:example.org, #b:example.org"
  ignore_user_patterns: ["^@.*bot:"]
  auto_thread: true
  session_scope: thread
  reactions: false
  process_notices: true
  max_media_bytes: 1000
  chunk_size: 4000
  encryption: true
platforms:
  matrix:
    rate: 2
    burst: 20
`, map[string]string{"MATRIX_PASSWORD": "pw"})
	m := settingsOf(cfg)
	if m.Homeserver != "https://matrix.example.org" || m.UserID != "@herald:example.org" || m.Password != "pw" {
		t.Errorf("login: %+v", m)
	}
	if m.RequireMention || !m.AutoThread || m.Reactions || !m.ProcessNotices || m.SessionScope != "thread" || m.E2EE != "required" {
		t.Errorf("flags: %+v", m)
	}
	if len(m.FreeResponseRooms) != 1 || len(m.AllowedRooms) != 2 || m.AllowedRooms[1] != "#b:example.org" || len(m.IgnoreUserPatterns) != 1 {
		t.Errorf("lists: %+v", m)
	}
	if m.MaxMediaBytes != 1000 || m.Budget != (platform.Bucket{Rate: 2, Burst: 20}) || m.MaxLength != 4000 {
		t.Errorf("numbers: %+v", m)
	}
}

func TestMatrixBadValues(t *testing.T) {
	_, err := configtest.Load(t, "", map[string]string{
		"MATRIX_USER_ID":              "herald",
		"MATRIX_ALLOWED_ROOMS":        "general",
		"MATRIX_IGNORE_USER_PATTERNS": "(",
		"MATRIX_MAX_MEDIA_BYTES":      "lots",
		"MATRIX_SESSION_SCOPE":        "galaxy",
		"MATRIX_PICKLE_KEY":           "short",
		"MATRIX_HOME_ROOM":            "lobby",
	})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, want := range []string{
		"env MATRIX_USER_ID: expected a Matrix user id",
		"env MATRIX_ALLOWED_ROOMS: expected room ids",
		"env MATRIX_IGNORE_USER_PATTERNS: expected regular expressions",
		"env MATRIX_MAX_MEDIA_BYTES: expected a number of bytes",
		"env MATRIX_SESSION_SCOPE: expected one of auto, room, thread",
		"env MATRIX_PICKLE_KEY: expected at least 16 characters",
		"env MATRIX_HOME_ROOM: expected a room id",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"short"`) {
		t.Errorf("the pickle key is echoed in the error: %v", err)
	}
}

func TestMatrixSecretsAreMasked(t *testing.T) {
	cfg := configtest.MustLoad(t, "", map[string]string{
		"MATRIX_HOMESERVER": "https://hs.example", "MATRIX_ACCESS_TOKEN": "syt_secret",
		"MATRIX_PASSWORD": "pw", "MATRIX_PICKLE_KEY": "0123456789abcdef0123", "MATRIX_RECOVERY_KEY": "EsT0 abcd",
	})
	secret := map[string]bool{}
	for _, e := range cfg.Effective() {
		secret[e.Env] = e.Secret
	}
	for _, name := range []string{"MATRIX_ACCESS_TOKEN", "MATRIX_PASSWORD", "MATRIX_PICKLE_KEY", "MATRIX_RECOVERY_KEY"} {
		if !secret[name] {
			t.Errorf("%s is not marked secret", name)
		}
		if v, ok := config.Lookup(name); !ok || !v.Secret || v.Category != config.Messaging {
			t.Errorf("registry entry of %s = %+v", name, v)
		}
	}
}

// settingsOf is Matrix's settings in a loaded configuration.
func settingsOf(cfg *config.Config) *Options { return cfg.Platforms[Name].(*Options) }
