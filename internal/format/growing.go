package format

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// GrowingHTML renders to HTML a markdown text that grows by appending, as
// an answer does while it streams, so that each new version costs the
// rendering of its last blocks rather than of the whole text. Its Render
// returns exactly what Render(md, HTML) returns. It is safe for concurrent
// use; the zero value is ready.
type GrowingHTML struct {
	mu       sync.Mutex
	settled  string // a prefix of the text whose rendering can no longer change
	rendered string // its HTML
}

// Render returns the HTML of md. When md continues the text of the previous
// call, only the part after the settled prefix is rendered again.
func (g *GrowingHTML) Render(md string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !strings.HasPrefix(md, g.settled) || !splittable(md) {
		g.settled, g.rendered = "", ""
		if !splittable(md) {
			return Render(md, HTML)
		}
	}
	if cut := settledCut(md, len(g.settled)); cut > len(g.settled) {
		g.rendered += Render(md[len(g.settled):cut], HTML)
		g.settled = strings.Clone(md[:cut]) // not pinning the caller's whole text
	}
	return g.rendered + Render(md[len(g.settled):], HTML)
}

// htmlBlockStarts open the raw HTML blocks that a blank line does not end
// (CommonMark's kinds 1 to 5); lower case, matched without regard to case.
var htmlBlockStarts = []string{"<!--", "<?", "<!", "<script", "<pre", "<style", "<textarea"}

// splittable reports whether md can be rendered in parts at all: a link
// reference definition reaches links anywhere in the text, and some raw
// HTML blocks run over blank lines, so a text holding either is rendered
// whole.
func splittable(md string) bool {
	if strings.Contains(md, "]:") {
		return false
	}
	for i := strings.IndexByte(md, '<'); i >= 0; {
		for _, s := range htmlBlockStarts {
			if len(md)-i >= len(s) && strings.EqualFold(md[i:i+len(s)], s) {
				return false
			}
		}
		next := strings.IndexByte(md[i+1:], '<')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return true
}

// settledCut returns the last offset after from, where from is a cut or 0,
// at which md can be cut so that the part before renders the same alone as
// in any continuation of md; from when there is none. Such a cut is the
// start of a line that begins with a letter, follows a blank line and lies
// outside code fences: that line can only begin a paragraph, which closes
// every list, quote and indented code block before it, and no later text
// reaches back over it, even when the line is not finished yet.
func settledCut(md string, from int) int {
	cut := from
	blank := false
	var open fence
	inFence := false
	for i := from; i < len(md); {
		line := lineAt(md, i)
		text := strings.TrimSuffix(line, "\n")
		switch {
		case inFence:
			inFence = !open.closedBy(text)
			blank = false
		case blank && startsWithLetter(text):
			cut = i
			blank = false
		default:
			open, inFence = openingFence(text)
			blank = !inFence && strings.Trim(text, blankChars) == ""
		}
		i += len(line)
	}
	return cut
}

// startsWithLetter reports whether s begins, at its first byte, with a letter.
func startsWithLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r)
}
