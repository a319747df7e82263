package format

import (
	"fmt"
	"strings"
	"testing"
)

func TestGrowingHTMLSettlesFinishedBlocks(t *testing.T) {
	cases := []struct {
		name, md, settled string
	}{
		{"paragraphs", "One.\n\nTwo.\n\nThr", "One.\n\nTwo.\n\n"},
		{"a list, then a paragraph", "- a\n- b\n\nAfter the list", "- a\n- b\n\n"},
		{"a list that may go on", "Intro.\n\n- a\n\n- b", ""},
		{"a fence with blank lines", "Code:\n\n```\nx\n\ny\n", ""},
		{"after a closed fence", "Code:\n\n```\nx\n\ny\n```\n\nDone", "Code:\n\n```\nx\n\ny\n```\n\n"},
		{"a reference definition", "See [x].\n\n[x]: https://example.com\n\nMore", ""},
		{"an HTML comment", "<!-- a\n\nb -->\n\nMore", ""},
		{"a raw HTML block, any case", "Intro.\n\n<PRE>\n\nx\n\n</PRE>\n\nMore", ""},
		{"a lone angle bracket", "If a < b:\n\nThen", "If a < b:\n\n"},
	}
	for i, md := range fenceTraps {
		cases = append(cases, struct{ name, md, settled string }{fmt.Sprintf("fence trap %d", i), md, ""})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var g GrowingHTML
			if got, want := g.Render(c.md), Render(c.md, HTML); got != want {
				t.Fatalf("Render(%q) = %q, want %q", c.md, got, want)
			}
			if g.settled != c.settled {
				t.Fatalf("settled %q, want %q", g.settled, c.settled)
			}
		})
	}
}

func TestGrowingHTMLStartsOverOnADifferentText(t *testing.T) {
	var g GrowingHTML
	g.Render("First answer.\n\nMore of it.")
	md := "Another text.\n\nEntirely."
	if got, want := g.Render(md), Render(md, HTML); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// streamedAnswer is a markdown answer of some 4 KB made of the blocks
// agents write: paragraphs, lists, code and a table.
func streamedAnswer() string {
	var b strings.Builder
	for i := 0; b.Len() < 4000; i++ {
		b.WriteString("Here is **part** of the answer, with `code` and a [link](https://example.com).\n\n")
		if i%3 == 0 {
			b.WriteString("- first point\n- second point\n\n```go\nfmt.Println(\"hi\")\n```\n\n")
		}
	}
	return b.String()
}

// BenchmarkStreamedRender renders answers at every 20 bytes of their
// growth, as a chat's edits do: with goldmark whole each time, and with
// GrowingHTML. "markdown" is streamedAnswer; "prose" one paragraph of
// plain words, as the simulator writes.
func BenchmarkStreamedRender(b *testing.B) {
	prose := strings.Repeat("Plain words of an answer, written one after another. ", 20)
	for name, md := range map[string]string{"markdown": streamedAnswer(), "prose": prose} {
		b.Run(name+"/goldmark", func(b *testing.B) {
			for b.Loop() {
				for n := 20; n < len(md); n += 20 {
					goldmarkHTML(b, md[:n])
				}
			}
		})
		b.Run(name+"/growing", func(b *testing.B) {
			for b.Loop() {
				var g GrowingHTML
				for n := 20; n < len(md); n += 20 {
					g.Render(md[:n])
				}
			}
		})
	}
}
