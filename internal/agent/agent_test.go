package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

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
		{"status", "", &StatusError{Status: 503, Message: "Service Unavailable"}, "⚠️ Proxy error (503): Service Unavailable"},
		{"connection before text", "", &ConnectionError{Err: errors.New("connection refused")}, "⚠️ Proxy connection error: connection refused"},
		{"connection after text", "part", &ConnectionError{Err: errors.New("reset")}, "part\n\n⚠️ The answer was interrupted: reset"},
		{"agent failed", "part", ErrAgentFailed, "part\n\n⚠️ The agent reported an error."},
		{"stopped", "part", context.Canceled, "part\n\n⏹ Stopped."},
		{"idle", "", ErrIdleTimeout, "⚠️ The answer was interrupted: " + ErrIdleTimeout.Error()},
		{"not a stream", "", ErrNotAStream, "⚠️ The answer was interrupted: the agent server did not answer with a stream"},
		{"in-stream error", "part", &StreamError{Message: "quota exceeded"}, "part\n\n⚠️ The answer was interrupted: server error in stream: quota exceeded"},
	}
	for _, c := range cases {
		if got := FinalText("Proxy", c.text, c.err); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSummary(t *testing.T) {
	long := strings.Repeat("é", 400)
	cases := []struct{ name, in, want string }{
		{"plain", "Invalid API key", "Invalid API key"},
		{"first line", "\n  \r\nTraceback (most recent call last):\n  File \"x.py\"", "Traceback (most recent call last):"},
		{"white space collapsed", " a \t b\u00a0\u2003c  ", "a b c"},
		{"controls removed", "a\x00b\x01c\x1bd\x7fe\u009bf\tg\u0085h", "abcdef g h"},
		{"capped", long, strings.Repeat("é", maxSummary-1) + "…"},
		{"exactly the cap", long[:2*maxSummary], long[:2*maxSummary]},
		{"no space before the ellipsis", strings.Repeat("a", maxSummary-2) + " bcd", strings.Repeat("a", maxSummary-2) + "…"},
		{"html", "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", ""},
		{"html after blank lines", "\r\n\n <html>", ""},
		{"markup later is text", "a <b> c", "a <b> c"},
		{"invalid UTF-8", "bad \xff byte", "bad \uFFFD byte"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		if got := Summary(c.in); got != c.want {
			t.Errorf("%s: Summary(%.40q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func FuzzSummary(f *testing.F) {
	for _, s := range []string{"Invalid API key", "a\nb", "<html>", strings.Repeat("x ", 200), "\x00\xff\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Summary(s)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxSummary {
			t.Fatalf("Summary(%q) = %q: invalid or over %d characters", s, got, maxSummary)
		}
		if strings.TrimSpace(got) != got || strings.Contains(got, "  ") {
			t.Fatalf("Summary(%q) = %q: white space not collapsed", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("Summary(%q) = %q holds %U", s, got, r)
			}
		}
		if Summary(got) != got && !strings.HasSuffix(got, "…") {
			t.Fatalf("Summary is not stable on its own output %q", got)
		}
	})
}
