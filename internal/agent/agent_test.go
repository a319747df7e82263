package agent

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNewSessionIDShape(t *testing.T) {
	now := time.Date(2026, 6, 23, 19, 54, 26, 0, time.UTC)
	shape := regexp.MustCompile(`^20260623_195426_[0-9a-f]{6}$`)
	a, b := NewSessionID(now), NewSessionID(now)
	if !shape.MatchString(a) || !shape.MatchString(b) {
		t.Errorf("ids %q, %q do not have the shape YYYYMMDD_HHMMSS_<6 hex>", a, b)
	}
	if a == b {
		t.Errorf("two ids in the same second are equal: %q", a)
	}
}

func TestFinalText(t *testing.T) {
	cases := []struct {
		name, text string
		err        error
		want       string
	}{
		{"answer", "hi", nil, "hi"},
		{"empty", "", nil, NoResponse},
		{"status", "", &StatusError{Status: 503, Message: strings.Repeat("é", 400)}, "⚠️ Proxy error (503): " + strings.Repeat("é", 300)},
		{"connection before text", "", &ConnectionError{Err: errors.New("connection refused")}, "⚠️ Proxy connection error: connection refused"},
		{"connection after text", "part", &ConnectionError{Err: errors.New("reset")}, "part\n\n⚠️ The answer was interrupted: reset"},
		{"agent failed", "part", ErrAgentFailed, "part\n\n⚠️ The agent reported an error."},
		{"stopped", "part", context.Canceled, "part\n\n⏹ Stopped."},
		{"idle", "", ErrIdleTimeout, "⚠️ The answer was interrupted: " + ErrIdleTimeout.Error()},
	}
	for _, c := range cases {
		if got := FinalText("Proxy", c.text, c.err); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
