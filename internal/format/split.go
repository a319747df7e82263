package format

import (
	"strings"
	"unicode/utf8"
)

// Chunk is one message's worth of a split text, with where it came from, so
// that a caller can tell which part of the text a sent message holds.
type Chunk struct {
	// Text is what to send: text[Start:End], preceded by a reopened code
	// fence line and followed by a closing fence line where needed.
	Text string
	// Start and End delimit, in bytes, the part of the split text that this
	// chunk holds. Between one chunk's End and the next one's Start there is
	// only whitespace dropped at the cut.
	Start, End int
	// Fence is the opening line of the code fence closed at the end of Text
	// and reopened at the start of the next chunk; empty when Text does not
	// end inside a code block.
	Fence string
}

// Split cuts a markdown answer into chunks that each fit a platform's
// message limit, counted as c says. See SplitChunks for the rules.
func Split(text string, limit int, c Counting) []string {
	chunks := SplitChunks(text, limit, c)
	if chunks == nil {
		return nil
	}
	out := make([]string, len(chunks))
	for i, ch := range chunks {
		out[i] = ch.Text
	}
	return out
}

// SplitChunks cuts a markdown answer into chunks of at most limit units of
// c, and tells where each came from.
//
// A text that fits (or any text when limit <= 0) is returned whole, as it
// is; a text of nothing but whitespace gives no chunks. Otherwise each chunk
// is cut, in order of preference, at a paragraph break (blank line), at a
// line break, at a run of spaces or tabs (each of these only if it leaves
// the chunk at least half full; failing that, the latest of them), and else
// at the last character boundary that fits: a cut never splits a UTF-8
// sequence, and so never a UTF-16 surrogate pair either.
//
// Whitespace dropped at a cut: the spaces and tabs ending the chunk's last
// line, the line break (LF or CRLF), and any whitespace-only lines after it,
// up to the first character of the next chunk; the next chunk keeps the
// indentation of its first line. A cut inside a line drops the run of
// spaces, tabs and CRs there. A hard cut drops nothing. A run of whitespace
// too long for a chunk is dropped whole. Whitespace here means space, tab,
// CR and LF only. So the chunks' texts, with the fence lines added below
// removed, joined with the dropped whitespace, give back the text.
//
// Code fences (``` or ~~~, any indentation, with their info string) stay
// balanced: a chunk that ends inside a code block, the last one included,
// gets a closing fence line (its line break and marker, counted toward the
// limit), and the next chunk starts with the opening line again. When the
// limit cannot hold the longest fence line twice plus one character, fences
// are not repaired: the text is cut with the same preferences only. A single
// character longer than the limit (only possible when limit is below 4 bytes
// or 2 UTF-16 units) gets a chunk of its own, longer than the limit, rather
// than being lost.
func SplitChunks(text string, limit int, c Counting) []Chunk {
	if isBlankText(text) {
		return nil
	}
	if limit <= 0 || Length(text, c) <= limit {
		return []Chunk{{Text: text, End: len(text)}}
	}
	longest, aware := fenceRoom(text, limit, c)
	out := make([]Chunk, 0, Length(text, c)/max(limit, 1)+1)
	var reopen string // the fence line the next chunk starts with
	pos := 0
chunks:
	for !isBlankText(text[pos:]) {
		prefix := ""
		if reopen != "" {
			prefix = reopen + "\n"
		}
		lp := Length(prefix, c)
		rest := text[pos:]
		budget := limit - lp
		for tries := 0; ; tries++ {
			if e := fit(rest, budget, c); e > 0 && isBlankText(rest[:e]) {
				// Only whitespace fits: drop the whole run.
				pos += len(rest) - len(strings.TrimLeft(rest, blankChars))
				continue chunks
			}
			end, next := cut(rest, budget, c)
			body := rest[:end]
			closing, open := "", ""
			if aware {
				if f, ok := openFenceAt(prefix + body); ok {
					open = f.line
					closing = f.closing()
					if !strings.HasSuffix(body, "\n") {
						closing = "\n" + closing
					}
				}
			}
			lc := Length(closing, c)
			if closing == "" || lp+Length(body, c)+lc <= limit {
				out = append(out, Chunk{Text: prefix + body + closing, Start: pos, End: pos + end, Fence: open})
				pos += next
				reopen = open
				break
			}
			if tries >= 8 {
				budget = limit - lp - longest - 1 // always leaves room for any closing line
			} else {
				budget = min(budget-1, limit-lp-lc)
			}
		}
	}
	return out
}

// fenceRoom returns the length of the longest line that may hold a fence
// marker, and whether limit leaves room for an opening and a closing line
// that long plus one character, which fence repair needs.
func fenceRoom(text string, limit int, c Counting) (int, bool) {
	longest := 0
	for i := 0; i < len(text); {
		line := lineAt(text, i)
		i += len(line)
		if strings.Contains(line, "```") || strings.Contains(line, "~~~") {
			longest = max(longest, Length(line, c))
		}
	}
	if longest == 0 {
		return 0, false
	}
	return longest, 2*(longest+1)+maxRuneUnits(c) <= limit
}

// fit returns the largest e such that s[:e] ends on a character boundary and
// takes at most budget units.
func fit(s string, budget int, c Counting) int {
	units := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		units += runeUnits(r, c, size)
		if units > budget {
			return i
		}
		i += size
	}
	return len(s)
}

// isBlankText reports whether s holds nothing but whitespace.
func isBlankText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBlank(s[i]) {
			return false
		}
	}
	return true
}

// isBlank reports whether b is whitespace that a cut may drop.
func isBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\n'
}

// ResumeAfter returns where the next chunk starts after a cut that ends a
// chunk at end: past spaces and tabs, and if they end the line, past the
// line break and any whitespace-only lines after it, keeping the next
// line's indentation.
func ResumeAfter(s string, end int) int {
	i := end
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	if i == len(s) || s[i] != '\n' {
		return i
	}
	i++
	for lineStart := i; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r':
		case '\n':
			lineStart = i + 1 // a blank line: drop it too
		default:
			return lineStart // keep the next line's indentation
		}
	}
	return i
}

// cut chooses where the chunk starting at s[0] ends (end) and where the next
// one starts (next), for a chunk of at most budget units.
func cut(s string, budget int, c Counting) (end, next int) {
	e := fit(s, budget, c)
	if e == len(s) {
		return e, e
	}
	if e == 0 { // a character longer than the budget: send it alone
		_, size := utf8.DecodeRuneInString(s)
		return size, ResumeAfter(s, size)
	}
	const (
		space = iota
		line
		paragraph
	)
	best := [3]int{-1, -1, -1} // latest cut of each kind that is at least half full
	latest, latestNext := -1, -1
	half := e / 2
	// A cut ends the chunk at p, just before whitespace, after a non-blank
	// byte. Scan back from the window's end.
	for p := e; p > 0; p-- {
		if !isBlank(s[p]) || isBlank(s[p-1]) {
			continue
		}
		if p < half && latest >= 0 {
			break
		}
		n := ResumeAfter(s, p)
		if latest < 0 {
			latest, latestNext = p, n
		}
		if p < half {
			break
		}
		kind := space
		switch strings.Count(s[p:n], "\n") {
		case 0:
		case 1:
			kind = line
		default:
			kind = paragraph
		}
		if best[kind] < 0 {
			best[kind] = p
		}
		if best[paragraph] >= 0 {
			break
		}
	}
	for kind := paragraph; kind >= space; kind-- {
		if p := best[kind]; p >= 0 {
			return p, ResumeAfter(s, p)
		}
	}
	if latest >= 0 {
		return latest, latestNext
	}
	return e, e
}
