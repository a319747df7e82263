package format

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzLimits are the limits every fuzzed text is split with: tiny ones that
// force hard cuts and the plain fallback, and larger ones that repair fences.
var fuzzLimits = []int{1, 2, 3, 5, 8, 16, 40, 100}

func FuzzSplit(f *testing.F) {
	f.Add("Hello, world. This is a short answer.")
	f.Add("```go\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n```\nafter the code")
	f.Fuzz(func(t *testing.T, text string) {
		for _, c := range []Counting{Runes, Bytes, UTF16} {
			for _, limit := range fuzzLimits {
				checkSplit(t, text, limit, c)
			}
		}
	})
}

// checkSplit verifies every promise SplitChunks makes for one text.
func checkSplit(t *testing.T, text string, limit int, c Counting) {
	t.Helper()
	chunks := SplitChunks(text, limit, c)
	if isBlankText(text) {
		if chunks != nil {
			t.Fatalf("blank text %q gave chunks %+v", text, chunks)
		}
		return
	}
	if Length(text, c) <= limit {
		if len(chunks) != 1 || chunks[0].Text != text {
			t.Fatalf("fitting text %q (counting %d, limit %d) changed: %+v", text, c, limit, chunks)
		}
		return
	}
	_, aware := fenceRoom(text, limit, c)
	valid := utf8.ValidString(text)
	for i, ch := range chunks {
		if n := Length(ch.Text, c); n > limit && !(ch.End-ch.Start == len(ch.Text) && utf8.RuneCountInString(ch.Text) == 1) {
			t.Fatalf("counting %d, limit %d: chunk %d %q has length %d", c, limit, i, ch.Text, n)
		}
		if isBlankText(text[ch.Start:ch.End]) {
			t.Fatalf("counting %d, limit %d: chunk %d %q is blank", c, limit, i, ch.Text)
		}
		if aware {
			if _, open := openFenceAt(ch.Text); open {
				t.Fatalf("counting %d, limit %d: chunk %d ends inside a code block: %q", c, limit, i, ch.Text)
			}
		}
		if valid && !utf8.ValidString(ch.Text) {
			t.Fatalf("counting %d, limit %d: chunk %d %q is not valid UTF-8", c, limit, i, ch.Text)
		}
	}
	checkRejoin(t, text, chunks)
}

func FuzzStripThinking(f *testing.F) {
	f.Add("<think>reasoning</think>\n\nThe answer.")
	f.Add("Use `<think>` in code, not <THOUGHT>here")
	f.Fuzz(func(t *testing.T, s string) {
		full := StripThinking(s)
		partial := StripThinkingPartial(s)
		if utf8.ValidString(s) && (!utf8.ValidString(full) || !utf8.ValidString(partial)) {
			t.Fatalf("invalid UTF-8 from %q: %q, %q", s, full, partial)
		}
		if !strings.HasPrefix(full, partial) {
			t.Fatalf("partial %q is not a prefix of full %q (input %q)", partial, full, s)
		}
		if len(full) > len(s) {
			t.Fatalf("output %q longer than input %q", full, s)
		}
		if !strings.Contains(s, "<") && full != strings.TrimLeft(s, blankChars) {
			t.Fatalf("text without tags %q changed to %q", s, full)
		}
	})
}

// FuzzGrowingHTML checks that rendering a text as it grows, in steps of
// the sizes the fuzzer picks, gives at every step exactly what rendering
// that version whole gives.
func FuzzGrowingHTML(f *testing.F) {
	f.Add("Intro.\n\n- a\n- b\n\nMiddle *text*.\n\n```go\nx := 1\n\ny := 2\n```\n\nEnd with a [link](https://example.com).", uint64(7))
	f.Add("- one\n\n- two\n\nafter\n\n> quote\n\nlazy\n\n    code\n\nnext", uint64(3))
	f.Add("a | b\n--|--\n1 | 2\n\nText [x][y] here.\n\n[y]: https://example.com", uint64(11))
	f.Add("1. first\n\n   still first\n\n2. second\n\nÉtat final.\n\n<!-- comment\n\nstill comment -->\n\nz", uint64(5))
	for _, md := range fenceTraps {
		f.Add(md, uint64(0))
	}
	f.Fuzz(func(t *testing.T, md string, steps uint64) {
		var g GrowingHTML
		step := int(steps%17) + 1
		for n := 0; ; n += step {
			n = min(n, len(md))
			if got, want := g.Render(md[:n]), Render(md[:n], HTML); got != want {
				t.Fatalf("rendering %q after %q (steps of %d bytes):\n got %q\nwant %q", md[:n], g.settled, step, got, want)
			}
			if n == len(md) {
				return
			}
		}
	})
}

// fenceTraps hold fence lines a simple line scan misreads: indented ones,
// ones in list items or indented code, and ones in raw HTML blocks.
var fenceTraps = []string{
	"1. Step\n   ```\n   code\n```\n\nThen run it:\n\n```\nmore\n```\n\nDone.",
	"- x\n\n  ```\n  code\n\nfoo\n```\n\nbar\n\nbaz",
	"Intro\n\n```\ncode\n    ```\n\nstill code\n```\n",
	"Intro\n\n    ```\n\nText\n```\n\nmore\n\nend",
	"Intro\n\n\t```\n\nText\n```\n\nmore\n\nend",
	"<div>\n```\n\nText\n\n```\ncode\n\ninside\n```\n\nend",
	"> <div>\n> ```\n\nText\n\n```\n\ninside\n```",
}

// markdownLines are the lines FuzzGrowingHTMLLines builds documents from:
// the block starts and fence lines, indented and not, that decide where a
// text can be cut.
var markdownLines = []string{
	"", "  ", "Text here.", "more *text* and `code`", "Ünïcode line", "# Heading", "===", "---",
	"- item", "  continued", "    indented", "1. one", "2) two", "> quote", ">", "> ```",
	"```", "```go", "~~~", "````", "   ```", "  ```", "    ```", "\t```", "- ```", "  ~~~",
	"| a | b |", "|---|---|", "<div>", "</div>", "<!-- c", "-->", "[x]: https://example.com", "see [x]",
	"* star", "+ plus", "\tcode", "<https://example.com>", "www.example.com", "a\\",
}

// maxFuzzLines bounds FuzzGrowingHTMLLines' documents.
const maxFuzzLines = 40

// FuzzGrowingHTMLLines is FuzzGrowingHTML over documents made of typical
// markdown lines, each byte of the input choosing one, which reaches the
// combinations of fences, lists and quotes far sooner than random text.
func FuzzGrowingHTMLLines(f *testing.F) {
	f.Add([]byte{2, 0, 16, 3, 0, 2, 16, 0, 2})
	f.Add([]byte{11, 20, 3, 16, 0, 2, 0, 16, 3, 16, 0, 2})
	f.Fuzz(func(t *testing.T, picks []byte) {
		// Every prefix is rendered twice, so a long document costs its
		// length squared; the block structures at stake need few lines.
		picks = picks[:min(len(picks), maxFuzzLines)]
		var b strings.Builder
		for _, p := range picks {
			b.WriteString(markdownLines[int(p)%len(markdownLines)])
			b.WriteByte('\n')
		}
		md := b.String()
		var g GrowingHTML
		for n := 0; n <= len(md); n++ {
			if got, want := g.Render(md[:n]), Render(md[:n], HTML); got != want {
				t.Fatalf("rendering %q after %q:\n got %q\nwant %q", md[:n], g.settled, got, want)
			}
		}
	})
}

// FuzzPlainParagraph checks that every text plainParagraph takes renders
// exactly as goldmark renders it.
func FuzzPlainParagraph(f *testing.F) {
	f.Add("Hello there, this is plain (mostly) text - 100% \"quoted\" ▉")
	f.Add("Visit www.example.com today")
	f.Add("Ünïcode wörds, 日本語 and emoji 🎉")
	f.Add("a\u00a0b")
	f.Add("Trailing spaces   ")
	f.Fuzz(func(t *testing.T, md string) {
		got, ok := plainParagraph(md)
		if !ok {
			return
		}
		if want := goldmarkHTML(t, md); got != want {
			t.Fatalf("%q: got %q, goldmark gives %q", md, got, want)
		}
	})
}
