package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/texts"
)

func TestFinalText(t *testing.T) {
	cases := []struct {
		name, text string
		err        error
		want       string
	}{
		{"answer", "hi", nil, "hi"},
		{"empty", "", nil, texts.NoResponse},
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
