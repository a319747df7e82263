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
	mu sync.Mutex
	// settled is a prefix of the last text whose rendering can no longer
	// change, and rendered a prefix of the last HTML returned, its
	// rendering. Both point into those strings, which the caller keeps
	// anyway, so no copy of either is held.
	settled  string
	rendered string
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
	rendered := g.rendered
	if cut := settledCut(md, len(g.settled)); cut > len(g.settled) {
		rendered += Render(md[len(g.settled):cut], HTML)
		g.settled = md[:cut]
	} else {
		g.settled = md[:len(g.settled)]
	}
	html := rendered + Render(md[len(g.settled):], HTML)
	g.rendered = html[:len(rendered)]
	return html
}

// htmlBlockStarts open the raw HTML blocks that a blank line does not end
// (CommonMark's kinds 1 to 5), which may also start within a line of a list
// item; lower case, matched without regard to case.
var htmlBlockStarts = []string{"<!--", "<?", "<!", "<script", "<pre", "<style", "<textarea"}

// splittable reports whether md can be rendered in parts at all: a link
// reference definition reaches links anywhere in the text, and raw HTML
// blocks either run over blank lines or may hold fence lines that are not
// fences, so a text holding either is rendered whole.
func splittable(md string) bool {
	if strings.Contains(md, "]:") {
		return false
	}
	for i := strings.IndexByte(md, '<'); i >= 0; {
		if startsLine(md, i) {
			return false
		}
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

// startsLine reports whether md[i] is the first character of its line
// after indentation and quote markers, where an HTML block could begin.
func startsLine(md string, i int) bool {
	j := i - 1
	for j >= 0 && (md[j] == ' ' || md[j] == '\t' || md[j] == '>') {
		j--
	}
	return j < 0 || md[j] == '\n'
}

// settledCut returns the last offset after from, where from is a cut or 0,
// at which md can be cut so that the part before renders the same alone as
// in any continuation of md; from when there is none. Such a cut is the
// start of a line that begins with a letter, follows a blank line and lies
// outside code fences: that line can only begin a paragraph, which closes
// every list, quote and indented code block before it, and no later text
// reaches back over it, even when the line is not finished yet.
//
// Fences are followed only where that is certain: at the left margin. An
// indented fence line may open, close or belong to a fence, an indented
// code block or a list item, so after one no cut is made at all.
func settledCut(md string, from int) int {
	cut := from
	blank := false
	var open fence
	inFence := false
	for i := from; i < len(md); {
		line := lineAt(md, i)
		text := strings.TrimSuffix(line, "\n")
		if indentedFence(text) {
			return cut
		}
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

// indentedFence reports whether line is a fence marker line, or the start
// of one, with spaces or tabs before it.
func indentedFence(line string) bool {
	rest := strings.TrimLeft(line, " \t")
	if len(rest) == len(line) {
		return false
	}
	return strings.HasPrefix(rest, "``") || strings.HasPrefix(rest, "~~") || rest == "`" || rest == "~"
}

// startsWithLetter reports whether s begins, at its first byte, with a letter.
func startsWithLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r)
}
