package slack

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRender(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a & b < c > d", "a &amp; b &lt; c &gt; d"},
		{"<!channel> look", "&lt;!channel&gt; look"},
		{"ping <@U123>", "ping &lt;@U123&gt;"},
		{"hey @channel and @here, @everyone", "hey @\u2060channel and @\u2060here, @\u2060everyone"},
		{"see <https://example.com/a?b=1&c=2>", "see https://example.com/a?b=1&amp;c=2"},
		{"[docs](https://example.com)", "[docs](https://example.com)"},
		{"> quoted <b>\nnot > quoted", "> quoted &lt;b&gt;\nnot &gt; quoted"},
		{"```\nif a < b && c {\n```", "```\nif a &lt; b &amp;&amp; c {\n```"},
		{"email@channel.com", "email@channel.com"},
		{"@Override and @ann", "@Override and @ann"},
		{"@here first", "@\u2060here first"},
	} {
		if got := render(tc.in); got != tc.want {
			t.Errorf("render(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The pieces of a growing text render to the pieces of the whole, so that
// a stream's appends show what the whole would.
func TestRenderOfPiecesIsRenderOfTheWhole(t *testing.T) {
	whole := "Use a < b && c > d.\n\n> a quote\n\nand @here [a link](https://x.example/?q=1&r=2)."
	for cut := 1; cut < len(whole); cut++ {
		if !utf8.RuneStart(whole[cut]) {
			continue
		}
		if got := render(whole[:cut]) + renderAfter(whole[:cut], whole[cut:]); got != render(whole) {
			t.Fatalf("cut at %d: %q, want %q", cut, got, render(whole))
		}
	}
}

// mentionRE is a mass mention that starts a word.
var mentionRE = regexp.MustCompile(`(?i)(^|\W)@(channel|here|everyone)`)

func FuzzRender(f *testing.F) {
	for _, s := range []string{"a & b", "<!here>", "<https://x.example>", "> q", "@channel", "```\n<>\n```"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		out := render(md)
		if strings.Contains(out, "<") {
			t.Fatalf("render(%q) = %q keeps a <", md, out)
		}
		if m := mentionRE.FindString(out); m != "" {
			t.Fatalf("render(%q) = %q keeps %q", md, out, m)
		}
		if utf8.ValidString(md) && !utf8.ValidString(out) {
			t.Fatalf("render(%q) is not UTF-8", md)
		}
	})
}

func TestPlainText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  <@U0HERALDBOT>  what is 2 &amp; 2?", "@U0HERALDBOT  what is 2 & 2?"},
		{"ask <@U123|ann> in <#C456|general>", "ask @ann in #general"},
		{"see <https://example.com|the docs> and <https://x.example>", "see the docs (https://example.com) and https://x.example"},
		{"<!here> a &lt;b&gt;", "@here a <b>"},
		{"<!subteam^S123|@team>", "@subteam"},
	} {
		if got := plainText(tc.in); got != tc.want {
			t.Errorf("plainText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTSTime(t *testing.T) {
	if got, want := tsTime("1700000000.123456"), time.Unix(1700000000, 123456000).UTC(); !got.Equal(want) {
		t.Errorf("tsTime = %v, want %v", got, want)
	}
	if got := tsTime("nonsense"); time.Since(got) > time.Minute {
		t.Errorf("tsTime of nonsense = %v, want now", got)
	}
}

// The bot token goes only to Slack's file hosts or the configured API
// server, whatever URL an event names.
func TestTokenGoesOnlyToSlack(t *testing.T) {
	a := &Adapter{opts: Options{APIURL: "http://127.0.0.1:9000/api/"}}
	for url, want := range map[string]bool{
		"https://files.slack.com/files-pri/T1-F1/a.png": true,
		"https://slack.com/files-pri/T1-F1/a.png":       true,
		"http://127.0.0.1:9000/files-pri/T1-F1/a.png":   true,
		"http://files.slack.com/files-pri/T1-F1/a.png":  false,
		"https://evil.example/a.png":                    false,
		"https://slack.com.evil.example/a.png":          false,
		"http://127.0.0.1:9001/a.png":                   false,
	} {
		if got := a.onSlack(url); got != want {
			t.Errorf("onSlack(%q) = %v, want %v", url, got, want)
		}
	}
}
