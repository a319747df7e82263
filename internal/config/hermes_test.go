package config

import (
	"strings"
	"testing"
)

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
