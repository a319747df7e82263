package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Seed: test_proxy_url_in_optional_env_vars.
func TestProxyURLIsRegistered(t *testing.T) {
	v, ok := Lookup("GATEWAY_PROXY_URL")
	if !ok || v.Category != Messaging || v.Secret {
		t.Errorf("GATEWAY_PROXY_URL = %+v, %v; want messaging, not secret", v, ok)
	}
}

// Seed: test_proxy_key_in_optional_env_vars.
func TestProxyKeyIsRegistered(t *testing.T) {
	v, ok := Lookup("GATEWAY_PROXY_KEY")
	if !ok || v.Category != Messaging || !v.Secret {
		t.Errorf("GATEWAY_PROXY_KEY = %+v, %v; want messaging, secret", v, ok)
	}
}

func TestRegistryEntriesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Registry() {
		if seen[v.Name] {
			t.Errorf("%s is registered twice", v.Name)
		}
		seen[v.Name] = true
		if v.Description == "" || v.Prompt == "" {
			t.Errorf("%s lacks a description or prompt", v.Name)
		}
		switch v.Category {
		case Messaging, Provider, General, Tool:
		default:
			t.Errorf("%s has category %q", v.Name, v.Category)
		}
	}
	for _, s := range All() {
		if s.Description == "" || (s.Set == nil && s.Env != "HERALD_HOME") {
			t.Errorf("setting %s lacks a description or a setter", s.name())
		}
	}
}

func TestUnregisteredNamePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("reading an unregistered variable did not panic")
		}
	}()
	mapEnv(nil).Get("NOT_REGISTERED")
}

// repoRoot is where go.mod is.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// Nothing reads the environment except through the registry.
func TestOnlyTheRegistryReadsTheEnvironment(t *testing.T) {
	root := repoRoot(t)
	direct := regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ|ExpandEnv)\b|\bsyscall\.(Getenv|Environ)\b|http\.ProxyFromEnvironment`)
	allowed := filepath.Join(root, "internal", "config", "env.go")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// bench/ is a separate command that starts herald processes with
		// environments of its own making; it is not part of the program.
		// Packages named *test (platformtest, pgtest, …) are the tests'
		// helpers, not part of the program either.
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || path == filepath.Join(root, "bench") || strings.HasSuffix(d.Name(), "test")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == allowed {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if direct.MatchString(line) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d reads the environment directly; use config.Env: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
