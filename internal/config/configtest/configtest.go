// Package configtest loads Herald's configuration in the tests of the
// parts that declare settings (the platforms), as a user's machine would:
// from a config.yaml and the process environment.
package configtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/herald-chat/herald/internal/config"
)

// Load writes yamlText (unless it is empty) as config.yaml into a new
// HERALD_HOME and loads it with env as the only variables set: every other
// registered variable is blanked for the test, which therefore cannot run
// in parallel.
func Load(t testing.TB, yamlText string, env map[string]string) (*config.Config, error) {
	t.Helper()
	home := t.TempDir()
	if yamlText != "" {
		if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte(yamlText), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range config.Registry() {
		t.Setenv(v.Name, env[v.Name]) // blank counts as unset
	}
	t.Setenv("HERALD_HOME", home)
	return config.Load(config.Options{})
}

// MustLoad is Load for configurations that must load: an error fails the test.
func MustLoad(t testing.TB, yamlText string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := Load(t, yamlText, env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
