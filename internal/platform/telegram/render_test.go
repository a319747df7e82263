package telegram

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
)

func TestRenderHTML(t *testing.T) {
	cases := []struct {
		name, md, html string
	}{
		{"plain", "hello world", "hello world"},
		{"escapes", `a < b && c > d "q"`, `a &lt; b &amp;&amp; c &gt; d "q"`},
		{"raw html is text", "<b>x</b> <script>alert(1)</script>", "&lt;b&gt;x&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;"},
		{"emphasis", "**bold** *it* ~~gone~~ ***both***", "<b>bold</b> <i>it</i> <s>gone</s> <i><b>both</b></i>"},
		{"code span", "run `a<b && c`", "run <code>a&lt;b &amp;&amp; c</code>"},
		{"code in bold", "**see `x`**", "<b>see <code>x</code></b>"},
		{"heading", "# Title\ntext", "<b>Title</b>\ntext"},
		{"fence with language", "```go\nx := 1 < 2\n```", `<pre><code class="language-go">x := 1 &lt; 2</code></pre>`},
		{"fence without language", "```\nplain\n```", "<pre>plain</pre>"},
		{"odd language dropped", "```a\"b\nx\n```", "<pre>x</pre>"},
		{"unclosed fence", "```py\nprint(1)", `<pre><code class="language-py">print(1)</code></pre>`},
		{"link", "[site](https://example.com/?a=1&b=\"2\")", `<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">site</a>`},
		{"unsafe link", "[x](javascript:alert(1))", "x"},
		{"autolink", "<https://example.com>", "https://example.com"},
		{"quote", "> a\n> b", "<blockquote>a\nb</blockquote>"},
		{"nested quote flattened", "> a\n> > b", "<blockquote>a\nb</blockquote>"},
		{"list", "- a\n- b\n  - c", "• a\n• b\n  • c"},
		{"ordered list", "3. x\n4. y", "3. x\n4. y"},
		{"task list", "- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo"},
		{"table", "| h | i |\n|---|---|\n| 1 | 2 |", "<b>h</b> | <b>i</b>\n1 | 2"},
		{"paragraphs", "one\n\ntwo", "one\n\ntwo"},
		{"backslash escapes", `\*not\* \<b\>`, "*not* &lt;b&gt;"},
		{"entities", "&amp; &copy; &#65;", "&amp; © A"},
		{"link in code stays text", "`[x](https://e.com)`", "<code>[x](https://e.com)</code>"},
		{"cursor", "partial answer ▉", "partial answer ▉"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := renderHTML(c.md)
			if r.HTML != c.html {
				t.Errorf("renderHTML(%q)\n got %q\nwant %q", c.md, r.HTML, c.html)
			}
			checkRendered(t, c.md, r)
		})
	}
}

// checkRendered checks that Telegram would take the HTML and show the
// visible text the renderer computed.
func checkRendered(t *testing.T, md string, r rendered) {
	t.Helper()
	visible, _, err := telegramtest.ParseHTML(r.HTML)
	if err != nil {
		t.Fatalf("Telegram would refuse the HTML of %q: %v\nHTML: %q", md, err, r.HTML)
	}
	if visible != r.Visible {
		t.Errorf("visible text of %q: renderer says %q, Telegram shows %q", md, r.Visible, visible)
	}
}

func TestRenderHTMLKeepsEveryWord(t *testing.T) {
	md := "Intro with **bold**, `code` and a [link](https://e.com).\n\n" +
		"```python\nfor i in range(3):\n    print(i < 2)\n```\n\n" +
		"- one\n- two\n\n> quoted & <escaped>\n\n| a | b |\n|---|---|\n| c | d |"
	r := renderHTML(md)
	checkRendered(t, md, r)
	for _, w := range []string{"Intro", "bold", "code", "link", "for i in range(3):", "    print(i < 2)", "one", "two", "quoted & <escaped>", "c | d"} {
		if !strings.Contains(r.Visible, w) {
			t.Errorf("visible text lacks %q:\n%s", w, r.Visible)
		}
	}
}

// Rendering never makes a typical answer longer than its markdown, so a
// chunk the gateway cut to the limit still fits once rendered.
func TestRenderHTMLIsNotLongerThanMarkdown(t *testing.T) {
	for _, md := range []string{
		"# Heading\n\nText with **bold** and `code`.\n\n```go\nfmt.Println(1)\n```\n\n- a\n- b\n\n1. x\n2. y\n\n> q",
		strings.Repeat("😀 emoji ", 500),
		"| a | b |\n|---|---|\n| 1 | 2 |",
	} {
		r := renderHTML(md)
		if v, m := format.Length(r.Visible, format.UTF16), format.Length(md, format.UTF16); v > m {
			t.Errorf("visible %d units > markdown %d units for %q", v, m, md)
		}
	}
}

func TestPrepareFallsBackToPlainText(t *testing.T) {
	if out := prepare("**bold**"); out.mode != "HTML" || out.text != "<b>bold</b>" || out.plain != "**bold**" {
		t.Errorf("prepare(**bold**) = %+v", out)
	}
	// A rendering that shows nothing is sent as written.
	if out := prepare("[](https://e.com/x)"); out.mode != "" || out.text != "[](https://e.com/x)" {
		t.Errorf("empty rendering: %+v", out)
	}
	// Invalid UTF-8 never reaches Telegram, which refuses it.
	if out := prepare("a\xffb"); !utf8.ValidString(out.text) || !utf8.ValidString(out.plain) {
		t.Errorf("invalid UTF-8 kept: %+v", out)
	}
}

func FuzzRenderHTML(f *testing.F) {
	for _, s := range []string{
		"**a** *b* `c` [d](https://e.com) > q\n\n- l\n\n```go\nx\n```",
		"<b>&amp;</b> \\* &#0; &#xD800; \x00",
		"| a |\n|---|\n| `x|y` |",
		"- [ ] x\n  > y\n  ```\n  z",
		"***~~x~~*** [**`y`**](http://h/) ![i](https://h/i.png)",
		"# h\n===\n---\n    code\n<div>\nx\n</div>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		r := renderHTML(md)
		visible, _, err := telegramtest.ParseHTML(r.HTML)
		if err != nil {
			t.Fatalf("Telegram would refuse the HTML of %q: %v\nHTML: %q", md, err, r.HTML)
		}
		if visible != r.Visible {
			t.Fatalf("visible text of %q: renderer says %q, Telegram shows %q", md, r.Visible, visible)
		}
		if !utf8.ValidString(r.HTML) {
			t.Fatalf("invalid UTF-8 in %q", r.HTML)
		}
	})
}
