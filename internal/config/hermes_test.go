package config

import (
	"strings"
	"testing"
)

// The compatibility table cannot drift from the registry: what it says
// Herald reads, Herald reads, with Hermes's default or, where it says so,
// another one; what it says Herald does not read, Herald does not read.
func TestHermesSettingsAreMarkedTruly(t *testing.T) {
	settings := map[string]Setting{}
	for _, s := range All() {
		for _, n := range s.names() {
			settings[n] = s
		}
	}
	seen := map[string]bool{}
	for _, h := range hermesSettings {
		if seen[h.Name] {
			t.Errorf("%s is in the table twice", h.Name)
		}
		seen[h.Name] = true
		s, read := settings[h.Name]
		if isRawSection(strings.Split(h.Name, ".<name>.")[0]) {
			// Read as written by readDisplayPlatforms: no default of its own.
			read, s.Default = true, h.Default
			if h.Mark == OtherDefault {
				s.Default = "(the global setting's)"
			}
		}
		switch h.Mark {
		case Same:
			if !read || s.Default != h.Default {
				t.Errorf("%s is marked %q: read %v, default %q, Hermes's %q", h.Name, h.Mark, read, s.Default, h.Default)
			}
		case OtherDefault:
			if !read || s.Default == h.Default {
				t.Errorf("%s is marked %q: read %v, default %q, Hermes's %q", h.Name, h.Mark, read, s.Default, h.Default)
			}
		case NotRelay, NotYet:
			if read {
				t.Errorf("%s is marked %q, yet Herald reads it", h.Name, h.Mark)
			}
		default:
			t.Errorf("%s is marked %q, which is not a mark of the table", h.Name, h.Mark)
		}
		if h.Mark != Same && h.Why == "" {
			t.Errorf("%s is marked %q without saying why", h.Name, h.Mark)
		}
	}
}

// display.tool_progress and its per-platform form take Hermes's modes and
// its booleans.
func TestToolProgressSettings(t *testing.T) {
	c := mustLoad(t, "display:\n  tool_progress: new\n  platforms:\n    telegram:\n      tool_progress: false\n    matrix:\n      tool_progress: verbose\n", nil)
	if c.ToolProgress != "new" || c.PlatformToolProgress["telegram"] != "off" || c.PlatformToolProgress["matrix"] != "verbose" {
		t.Errorf("tool progress %q, per platform %v", c.ToolProgress, c.PlatformToolProgress)
	}
	if c := mustLoad(t, "", map[string]string{"HERMES_TOOL_PROGRESS_MODE": "true"}); c.ToolProgress != "all" {
		t.Errorf("HERMES_TOOL_PROGRESS_MODE=true: %q, want all", c.ToolProgress)
	}
	_, err := load(t, "display:\n  platforms:\n    slack:\n      tool_progress: loud\n", nil)
	if err == nil || !strings.Contains(err.Error(), "display.platforms.slack.tool_progress: expected one of off, new, all, verbose, log, got \"loud\"") {
		t.Errorf("err = %v", err)
	}
}

// session_reset's mode, left unset, follows what the user set of it.
func TestSessionResetMode(t *testing.T) {
	for _, c := range []struct {
		yaml string
		env  map[string]string
		want string
	}{
		{"", nil, "none"},
		{"", map[string]string{"SESSION_IDLE_MINUTES": "90"}, "idle"},
		{"session_reset:\n  at_hour: 6\n", nil, "daily"},
		{"session_reset:\n  at_hour: 6\n", map[string]string{"SESSION_IDLE_MINUTES": "90"}, "both"},
		{"session_reset:\n  mode: none\n  idle_minutes: 5\n", nil, "none"},
	} {
		if got := mustLoad(t, c.yaml, c.env).SessionResetMode(); got != c.want {
			t.Errorf("%q %v: mode %q, want %q", c.yaml, c.env, got, c.want)
		}
	}
	if _, err := load(t, "", map[string]string{"SESSION_RESET_HOUR": "24"}); err == nil || !strings.Contains(err.Error(), "env SESSION_RESET_HOUR: expected an hour of the day from 0 to 23") {
		t.Errorf("err = %v", err)
	}
}
