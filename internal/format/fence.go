package format

import "strings"

// blankChars is the whitespace that Split may drop at a cut and that
// StripThinking trims: space, tab, carriage return and line feed.
const blankChars = " \t\r\n"

// fence is an open fenced code block.
type fence struct {
	line   string // the opening line, without its line break
	indent string // the spaces and tabs before the marker
	char   byte   // '`' or '~'
	n      int    // how many marker characters open it
}

// closing is the line that closes the fence.
func (f fence) closing() string {
	return f.indent + strings.Repeat(string(f.char), f.n)
}

// openingFence reports whether line (without its '\n') opens a fenced code
// block: any indentation of spaces and tabs, then three or more backticks or
// tildes, then an info string (which for backticks holds no backtick).
// Unlike CommonMark, any indentation is accepted, so that fences nested in
// list items are kept balanced too.
func openingFence(line string) (fence, bool) {
	line = strings.TrimSuffix(line, "\r")
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) || (line[i] != '`' && line[i] != '~') {
		return fence{}, false
	}
	n := runLength(line, i, line[i])
	if n < 3 || (line[i] == '`' && strings.IndexByte(line[i+n:], '`') >= 0) {
		return fence{}, false
	}
	return fence{line: line, indent: line[:i], char: line[i], n: n}, true
}

// closedBy reports whether line closes the fence: at least as many of the
// same marker characters, with only whitespace around them.
func (f fence) closedBy(line string) bool {
	line = strings.Trim(line, blankChars)
	return len(line) >= f.n && runLength(line, 0, f.char) == len(line)
}

// openFenceAt returns the fence still open at the end of s, reading s line by
// line (an unfinished last line counts as a line).
func openFenceAt(s string) (fence, bool) {
	var open fence
	in := false
	for i := 0; i < len(s); {
		line := lineAt(s, i)
		i += len(line)
		line = strings.TrimSuffix(line, "\n")
		if in {
			in = !open.closedBy(line)
		} else {
			open, in = openingFence(line)
		}
	}
	return open, in
}

// OpenFence returns the opening line of the code fence still open at the
// end of md, or "" when md ends outside code blocks. A caller that continues
// md in another message reopens the fence with it.
func OpenFence(md string) string {
	if f, ok := openFenceAt(md); ok {
		return f.line
	}
	return ""
}

// CloseFence returns the line that closes the fence the line open opens
// (as OpenFence returns it), or "" when open opens none.
func CloseFence(open string) string {
	if f, ok := openingFence(open); ok {
		return f.closing()
	}
	return ""
}
