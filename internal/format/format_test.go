package format

import (
	"strings"
	"testing"
)

func TestLength(t *testing.T) {
	tests := []struct {
		s                   string
		runes, bytes, utf16 int
	}{
		{"", 0, 0, 0},
		{"abc", 3, 3, 3},
		{"héllo", 5, 6, 5},
		{"€", 1, 3, 1},
		{"👍", 1, 4, 2},
		{"a👍b", 3, 6, 4},
		{"\xff", 1, 1, 1}, // an invalid byte counts as one character
	}
	for _, tt := range tests {
		if got := Length(tt.s, Runes); got != tt.runes {
			t.Errorf("Length(%q, Runes) = %d, want %d", tt.s, got, tt.runes)
		}
		if got := Length(tt.s, Bytes); got != tt.bytes {
			t.Errorf("Length(%q, Bytes) = %d, want %d", tt.s, got, tt.bytes)
		}
		if got := Length(tt.s, UTF16); got != tt.utf16 {
			t.Errorf("Length(%q, UTF16) = %d, want %d", tt.s, got, tt.utf16)
		}
	}
}

func TestStripThinking(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "Hello there", "Hello there"},
		{"leading block", "<think>hmm, let me see</think>\n\nThe answer is 4.", "The answer is 4."},
		{"all tag names", "<thinking>a</thinking>A <reasoning>b</reasoning>B <thought>c</thought>C", "A B C"},
		{"case-insensitive", "<THINK>x</Think>Yes", "Yes"},
		{"multiline", "Sure.<think>\nline 1\nline 2\n</think> Done.", "Sure. Done."},
		{"unclosed hides the rest", "Partial answer <think>still thinking about", "Partial answer "},
		{"unclosed at start", "<think>still thinking", ""},
		{"stray closing tag", "reasoning here</think>Answer", "reasoning hereAnswer"},
		{"mismatched close does not end", "<think>a</thought>b", ""},
		{"in fence kept", "Example:\n```xml\n<think>kept</think>\n```\nafter <think>x</think>end", "Example:\n```xml\n<think>kept</think>\n```\nafter end"},
		{"in tilde fence kept", "~~~\n<thinking>\n~~~\n", "~~~\n<thinking>\n~~~\n"},
		{"unclosed fence keeps", "```\n<think>", "```\n<think>"},
		{"inline code kept", "Use `<think>` tags", "Use `<think>` tags"},
		{"double backticks", "Use ``a ` <think> b`` ok", "Use ``a ` <think> b`` ok"},
		{"unmatched backtick is text", "a ` b <think>x</think>c", "a ` b c"},
		{"code span stops at a paragraph", "a `b\n\n<think>x</think>c`", "a `b\n\nc`"},
		{"partial tag is text at the end", "x <thi", "x <thi"},
		{"not a tag", "a <b> c < d", "a <b> c < d"},
		{"leading whitespace trimmed", "  \n hi", "hi"},
		{"multibyte", "é<think>ü</think>👍", "é👍"},
	}
	for _, tt := range tests {
		if got := StripThinking(tt.in); got != tt.want {
			t.Errorf("%s: StripThinking(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestStripThinkingPartial(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello <", "Hello "},
		{"Hello <thi", "Hello "},
		{"Hello </THINK", "Hello "},
		{"Hello <b", "Hello <b"},
		{"a < b", "a < b"},
		{"`x <thi", "`x "},         // the backtick is not closed yet: plain text
		{"`x <thi`", "`x <thi`"},   // inside code
		{"```\n<thi", "```\n<thi"}, // inside a fence
	}
	for _, tt := range tests {
		if got := StripThinkingPartial(tt.in); got != tt.want {
			t.Errorf("StripThinkingPartial(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitShortAndEmpty(t *testing.T) {
	if got := Split("", 10, Runes); got != nil {
		t.Errorf("Split of empty text = %q, want nil", got)
	}
	if got := Split(" \n\t ", 2, Runes); got != nil {
		t.Errorf("Split of blank text = %q, want nil", got)
	}
	if got := Split("  fits  ", 10, Runes); len(got) != 1 || got[0] != "  fits  " {
		t.Errorf("Split of a fitting text = %q, want it unchanged", got)
	}
	long := strings.Repeat("word ", 1000)
	if got := Split(long, 0, Runes); len(got) != 1 || got[0] != long {
		t.Errorf("Split with no limit changed the text")
	}
}

func TestSplitPrefersParagraphsThenLinesThenSpaces(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"paragraph", "first line\nsecond line\n\nthird para", 25, []string{"first line\nsecond line", "third para"}},
		{"line", "aaaa bbbb cccc\ndddd eeee", 20, []string{"aaaa bbbb cccc", "dddd eeee"}},
		{"space", "aaaa bbbb cccc dddd", 12, []string{"aaaa bbbb", "cccc dddd"}},
		{"hard", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"early break loses to hard cut? no: latest break", "ab cdefghijklmnop", 10, []string{"ab", "cdefghijkl", "mnop"}},
		{"paragraph too early, line wins", "a\n\nbbbbbbbb\ncc", 12, []string{"a\n\nbbbbbbbb", "cc"}},
		{"crlf", "one two\r\nthree\r\n\r\nfour five", 16, []string{"one two\r\nthree", "four five"}},
		{"indentation kept", "- item\n  - nested one\n  - nested two", 22, []string{"- item\n  - nested one", "  - nested two"}},
		{"trailing spaces dropped", "abc   \ndef ghi", 9, []string{"abc", "def ghi"}},
		{"long blank run", "a" + strings.Repeat(" ", 50) + "b", 10, []string{"a", "b"}},
	}
	for _, tt := range tests {
		got := Split(tt.text, tt.limit, Runes)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("%s: Split(%q, %d) = %q, want %q", tt.name, tt.text, tt.limit, got, tt.want)
		}
	}
}

func TestSplitNeverBreaksCharacters(t *testing.T) {
	text := strings.Repeat("é👍", 20)
	for _, c := range []Counting{Runes, Bytes, UTF16} {
		for limit := 1; limit < 12; limit++ {
			chunks := Split(text, limit, c)
			if strings.Join(chunks, "") != text {
				t.Fatalf("counting %d limit %d: chunks %q do not rejoin", c, limit, chunks)
			}
			for _, ch := range chunks {
				if Length(ch, c) > limit && Length(ch, Runes) != 1 {
					t.Errorf("counting %d limit %d: chunk %q too long", c, limit, ch)
				}
			}
		}
	}
}

func TestSplitKeepsFencesBalanced(t *testing.T) {
	var b strings.Builder
	b.WriteString("Here is the code:\n\n```go\n")
	for i := range 40 {
		b.WriteString("\tfmt.Println(\"line ")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("\")\n")
	}
	b.WriteString("```\n\nThat's all.")
	text := b.String()
	chunks := SplitChunks(text, 200, Runes)
	if len(chunks) < 3 {
		t.Fatalf("got %d chunks, want several", len(chunks))
	}
	for i, ch := range chunks {
		if n := Length(ch.Text, Runes); n > 200 {
			t.Errorf("chunk %d has %d runes", i, n)
		}
		if _, open := openFenceAt(ch.Text); open {
			t.Errorf("chunk %d ends inside a code block:\n%s", i, ch.Text)
		}
		if i > 0 && chunks[i-1].Fence != "" && !strings.HasPrefix(ch.Text, "```go\n") {
			t.Errorf("chunk %d does not reopen the fence:\n%s", i, ch.Text)
		}
		if ch.Fence != "" && !strings.HasSuffix(ch.Text, "\n```") {
			t.Errorf("chunk %d does not close the fence:\n%s", i, ch.Text)
		}
	}
	checkRejoin(t, text, chunks)
}

func TestSplitTinyLimitWithFences(t *testing.T) {
	text := "```python\nprint(1)\nprint(2)\n```"
	chunks := Split(text, 8, Runes) // too small for a fence pair: plain cuts
	for _, ch := range chunks {
		if Length(ch, Runes) > 8 {
			t.Errorf("chunk %q over the limit", ch)
		}
	}
	if strings.Join(chunks, "") != strings.ReplaceAll(text, "\n", "") {
		t.Errorf("chunks %q lost text", chunks)
	}
}

// checkRejoin verifies the chunks hold the text, give or take whitespace
// dropped at the cuts, and that fence lines are all that was added.
func checkRejoin(t testing.TB, text string, chunks []Chunk) {
	t.Helper()
	prev := 0
	for i, ch := range chunks {
		if ch.Start < prev || ch.End < ch.Start || ch.End > len(text) {
			t.Fatalf("chunk %d has range [%d,%d) after %d in a text of %d bytes", i, ch.Start, ch.End, prev, len(text))
		}
		if gap := text[prev:ch.Start]; !isBlankText(gap) {
			t.Fatalf("chunk %d: dropped %q, which is not whitespace", i, gap)
		}
		body := text[ch.Start:ch.End]
		reopen := ""
		if i > 0 && chunks[i-1].Fence != "" {
			reopen = chunks[i-1].Fence + "\n"
		}
		if !strings.HasPrefix(ch.Text, reopen+body) {
			t.Fatalf("chunk %d: text %q is not %q then its body %q", i, ch.Text, reopen, body)
		}
		added := ch.Text[len(reopen)+len(body):]
		if (added == "") != (ch.Fence == "") {
			t.Fatalf("chunk %d: added %q after the body, fence %q", i, added, ch.Fence)
		}
		if added != "" {
			f, ok := openingFence(ch.Fence)
			if !ok || strings.TrimPrefix(added, "\n") != f.closing() {
				t.Fatalf("chunk %d: added %q after the body (fence %q)", i, added, ch.Fence)
			}
		}
		prev = ch.End
	}
	if rest := text[prev:]; !isBlankText(rest) {
		t.Fatalf("text after the last chunk lost: %q", rest)
	}
}

func TestRenderMarkdownAsIs(t *testing.T) {
	md := "**bold** <b>x</b>"
	if got := Render(md, Markdown); got != md {
		t.Errorf("Render(Markdown) = %q", got)
	}
}

func TestRenderHTML(t *testing.T) {
	got := Render("# Hi\n\n**bold** ~~gone~~ [site](https://example.org) https://go.dev\n\n| a | b |\n|---|---|\n| 1 | 2 |", HTML)
	for _, want := range []string{
		"<h1>Hi</h1>",
		"<strong>bold</strong>",
		"<del>gone</del>",
		`<a href="https://example.org" rel="nofollow noopener">site</a>`,
		`<a href="https://go.dev" rel="nofollow noopener">https://go.dev</a>`,
		"<table>", "<td>1</td>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Render(HTML) = %q, missing %q", got, want)
		}
	}
}

func TestRenderHTMLIsSafe(t *testing.T) {
	attacks := []string{
		"<script>alert(1)</script>",
		"hello <script>alert(1)</script> world",
		"<img src=x onerror=alert(1)>",
		"text <img src=x onerror=alert(1)> text",
		"[click](javascript:alert(1))",
		"[click](JaVaScRiPt:alert(1))",
		"[click](&#106;avascript:alert(1))",
		"<javascript:alert(1)>",
		"![img](javascript:alert(1))",
		"[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
		"<a href=\"javascript:alert(1)\">x</a>",
		"<iframe src=\"https://evil\"></iframe>",
		"<div onmouseover=\"alert(1)\">\nhover\n</div>",
		"[x](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
		"<svg/onload=alert(1)>",
	}
	for _, md := range attacks {
		got := strings.ToLower(Render(md, HTML))
		for _, bad := range []string{"<script", "<img src=x", "onerror=", "javascript:alert", "<iframe", "<div", "<svg", "data:text/html", "\" onmouseover", "<a href=\"javascript"} {
			// The words may appear as escaped text, never as markup.
			if strings.Contains(got, bad) && !escapedOnly(got, bad) {
				t.Errorf("Render(%q, HTML) = %q: contains %q", md, got, bad)
			}
		}
	}
}

// escapedOnly reports whether every occurrence of bad in html is inside text
// (not inside a tag or an attribute value): a crude check that holds for
// goldmark's output, where text never contains a raw '<' or '"'.
func escapedOnly(html, bad string) bool {
	for i := 0; ; {
		j := strings.Index(html[i:], bad)
		if j < 0 {
			return true
		}
		j += i
		// Inside a tag if the last '<' before it is after the last '>'.
		if strings.LastIndexByte(html[:j+1], '<') > strings.LastIndexByte(html[:j], '>') {
			return false
		}
		i = j + len(bad)
	}
}

func TestRenderPlain(t *testing.T) {
	md := "# Title\n\nSome *em* and **strong** `code` [link](https://x.y)\n\n- a\n- b\n\n```go\nx := 1\n```"
	want := "Title\n\nSome em and strong code link (https://x.y)\n\n- a\n- b\n\nx := 1"
	if got := Render(md, Plain); got != want {
		t.Errorf("Render(Plain) = %q, want %q", got, want)
	}
}

func TestRenderPlainStructures(t *testing.T) {
	md := "- a\n- b\n  - c\n\n1. one\n2. two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote\n> more\n\n" +
		"<div>raw</div>\n\n- [x] done\n- [ ] todo\n\n---\n\n![alt text](https://img) ~~old~~ <https://a.b>"
	want := "- a\n- b\n  - c\n\n1. one\n2. two\n\na | b\n1 | 2\n\n> quote\n> more\n\n<div>raw</div>\n\n" +
		"- [x] done\n- [ ] todo\n\n---\n\nalt text old https://a.b"
	if got := Render(md, Plain); got != want {
		t.Errorf("Render(Plain) =\n%s\nwant\n%s", got, want)
	}
}

func TestPlainParagraphTakesOnlyPlainText(t *testing.T) {
	for md, plain := range map[string]bool{
		"Hello there, this is plain (mostly) text - 100% \"quoted\" ▉": true,
		"Ünïcode wörds, 日本語 and emoji 🎉":                               true,
		"Visit www.example.com today":                                  false,
		"Some *emphasis*":                                              false,
		"Two\nlines":                                                   false,
		"1984 was a year":                                              false,
		"a\u00a0b":                                                     false,
		"a & b":                                                        false,
	} {
		html, ok := plainParagraph(md)
		if ok != plain {
			t.Errorf("plainParagraph(%q) took it: %v, want %v", md, ok, plain)
		}
		if want := goldmarkHTML(t, md); ok && html != want {
			t.Errorf("plainParagraph(%q) = %q, goldmark gives %q", md, html, want)
		}
	}
}

// goldmarkHTML renders md with goldmark alone, without Render's shortcut.
func goldmarkHTML(t testing.TB, md string) string {
	t.Helper()
	var b renderBuffer
	if err := htmlRenderer.Convert([]byte(md), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
