package config

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDotenvFixtures(t *testing.T) {
	cases := map[string]map[string]string{
		// Values are literal: Hermes and Docker write keys with "$" in them.
		"dollars.env": {
			"GATEWAY_PROXY_KEY":  "key$SECRET",
			"MATRIX_PASSWORD":    "pa${HOME}ss",
			"TELEGRAM_BOT_TOKEN": "12:ab$c${d}",
			"WEBCHAT_TOKEN":      "lit$eral",
		},
		// A byte order mark (Windows editors) and CRLF line endings.
		"bom-crlf.env": {
			"GATEWAY_PROXY_URL": "http://127.0.0.1:8642",
			"GATEWAY_PROXY_KEY": "sk-bom",
		},
		"hermes.env": {
			"GATEWAY_PROXY_URL":      "http://127.0.0.1:8642",
			"GATEWAY_PROXY_KEY":      `a "quoted" key#not-a-comment`,
			"MATRIX_PASSWORD":        `single # quoted \n stays`,
			"MATRIX_RECOVERY_KEY":    "line one\nline two",
			"TELEGRAM_ALLOWED_USERS": "",
		},
	}
	for file, want := range cases {
		data, err := os.ReadFile(filepath.Join("testdata", "dotenv", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseDotenv(data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", file, got, want)
		}
	}
}

// Files that other tools write and read: names Herald does not read, a
// tab after export, classic Mac line endings.
func TestDotenvOtherWriters(t *testing.T) {
	for text, want := range map[string]map[string]string{
		"MY-VAR=1\na.b=2\nGATEWAY_PROXY_KEY=k\n": {"MY-VAR": "1", "a.b": "2", "GATEWAY_PROXY_KEY": "k"},
		"export\tGATEWAY_PROXY_KEY=k\n":          {"GATEWAY_PROXY_KEY": "k"},
		"exported=1\n":                           {"exported": "1"},
		"A=1\rGATEWAY_PROXY_KEY=k\r":             {"A": "1", "GATEWAY_PROXY_KEY": "k"},
	} {
		got, err := parseDotenv([]byte(text))
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("%q: got %q, %v; want %q", text, got, err, want)
		}
	}
}

func TestDotenvKeyWithDollarReachesTheConfig(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".env"), []byte("\uFEFFGATEWAY_PROXY_KEY=key$SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Env: mapEnv(map[string]string{"HERALD_HOME": home, "SECRET": "expanded"})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.Key != "key$SECRET" {
		t.Errorf("key = %q, want it literal", c.Proxy.Key)
	}
}

func TestDotenvErrorsNameTheLineNotTheValue(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"A=1\nGATEWAY_PROXY_KEY=\"sk-secret-1\n", "line 2: the value of GATEWAY_PROXY_KEY has no closing \""},
		{"A=1\n\nsk-secret-1\n", "line 3: want NAME=value"},
		{"GATEWAY_PROXY_KEY: sk-secret-1=x\n", "line 1: the text before \"=\" is not a variable name"},
		{"B='x'\r\nGATEWAY_PROXY_KEY='sk-secret-1' trailing\n", "line 2: unexpected text after the quoted value of GATEWAY_PROXY_KEY"},
		{"C=\"a\nb\"\nGATEWAY_PROXY_KEY='sk-secret-1\n", "line 3: the value of GATEWAY_PROXY_KEY has no closing '"},
	} {
		_, err := parseDotenv([]byte(c.text))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: err = %v, want %q", c.text, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the value: %v", c.text, err)
		}
	}
}

// FuzzDotenv checks that any file is read or refused without a panic, and
// that a value written in single quotes (which hold anything but a single
// quote) comes back byte for byte.
func FuzzDotenv(f *testing.F) {
	for _, seed := range []string{"A=1", "export B='x$y'", "C=\"a\\n${b}\"", "\uFEFFD=e\r\n", "# c\nE=\"multi\nline\" # c"} {
		f.Add([]byte(seed), "v$a{l}")
	}
	f.Fuzz(func(t *testing.T, file []byte, value string) {
		_, _ = parseDotenv(file)
		if strings.Contains(value, "'") {
			return
		}
		got, err := parseDotenv([]byte("X='" + value + "'\n"))
		if err != nil || got["X"] != strings.ReplaceAll(value, "\r\n", "\n") {
			t.Errorf("value %q: got %q, %v", value, got["X"], err)
		}
	})
}
