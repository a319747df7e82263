package format

import "strings"

// thinkingTags are the tags models wrap their reasoning in. Each block ends
// with the closing tag of the same name.
var thinkingTags = []string{"think", "thinking", "reasoning", "thought"}

// StripThinking removes the model's reasoning blocks (<think>, <thinking>,
// <reasoning>, <thought>; tag names in any case; blocks may span lines) so
// that users see only the answer. A block opened but not yet closed hides
// everything after its opening tag, because the answer is still being
// written. A closing tag without its opening tag is removed too. Tags inside
// fenced code blocks and inline code spans are text and are kept. The
// whitespace left at the start of the result (for example after a leading
// block) is trimmed; nothing else changes.
func StripThinking(s string) string {
	return stripThinking(s, false)
}

// StripThinkingPartial is StripThinking for a text that is still arriving:
// it also hides a trailing '<' that may be the start of a thinking tag (for
// example "Hello <thi"), so that a tag cut across two deltas never flashes
// on screen. Use StripThinking for the final text.
func StripThinkingPartial(s string) string {
	return stripThinking(s, true)
}

func stripThinking(s string, partial bool) string {
	if !strings.Contains(s, "<") {
		return strings.TrimLeft(s, blankChars)
	}
	var b strings.Builder
	b.Grow(len(s))
	var open fence // the code fence we are in, if inFence
	inFence := false
	i := 0
	for i < len(s) {
		if i == 0 || s[i-1] == '\n' {
			line := lineAt(s, i)
			if inFence {
				if open.closedBy(line) {
					inFence = false
				}
				b.WriteString(line)
				i += len(line)
				continue
			}
			if f, ok := openingFence(strings.TrimSuffix(line, "\n")); ok {
				open, inFence = f, true
				b.WriteString(line)
				i += len(line)
				continue
			}
		}
		switch s[i] {
		case '`':
			n := runLength(s, i, '`')
			if end := codeSpanEnd(s, i+n, n); end >= 0 {
				b.WriteString(s[i:end])
				i = end
			} else {
				b.WriteString(s[i : i+n])
				i += n
			}
			continue
		case '<':
			if name, ok := tagAt(s, i, false); ok {
				closing := "</" + name + ">"
				end := indexFold(s, i+len(name)+2, closing)
				if end < 0 {
					i = len(s) // still thinking: hide the rest
					continue
				}
				i = end + len(closing)
				continue
			}
			if name, ok := tagAt(s, i, true); ok {
				i += len(name) + 3 // a stray closing tag
				continue
			}
			if partial && partialTag(s[i:]) {
				i = len(s)
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return strings.TrimLeft(b.String(), blankChars)
}

// lineAt returns the line starting at i, with its '\n' if it has one.
func lineAt(s string, i int) string {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return s[i : i+j+1]
	}
	return s[i:]
}

// runLength counts the bytes equal to c from s[i] on.
func runLength(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// codeSpanEnd finds the run of exactly n backticks that closes an inline
// code span whose content starts at i, and returns the index just after it;
// -1 if the paragraph ends first (then the backticks are plain text).
func codeSpanEnd(s string, i, n int) int {
	for i < len(s) {
		switch s[i] {
		case '`':
			m := runLength(s, i, '`')
			if m == n {
				return i + m
			}
			i += m
		case '\n':
			if j := i + 1 + len(lineAt(s, i+1)); isBlankText(s[i+1:j]) && j > i+1 {
				return -1 // a blank line ends the paragraph
			}
			i++
		default:
			i++
		}
	}
	return -1
}

// tagAt reports which thinking tag, opening or closing, starts at s[i].
func tagAt(s string, i int, closing bool) (string, bool) {
	for _, name := range thinkingTags {
		tag := "<" + name + ">"
		if closing {
			tag = "</" + name + ">"
		}
		if len(s)-i >= len(tag) && strings.EqualFold(s[i:i+len(tag)], tag) {
			return name, true
		}
	}
	return "", false
}

// partialTag reports whether tail is a proper beginning of a thinking tag.
func partialTag(tail string) bool {
	for _, name := range thinkingTags {
		for _, tag := range []string{"<" + name + ">", "</" + name + ">"} {
			if len(tail) < len(tag) && strings.EqualFold(tail, tag[:len(tail)]) {
				return true
			}
		}
	}
	return false
}

// indexFold finds sub in s[from:], ignoring ASCII case, and returns its index
// in s, or -1.
func indexFold(s string, from int, sub string) int {
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i] == '<' && strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
