// Package format turns the agent's markdown into what a platform shows:
// length counted the platform's way, thinking blocks removed, long answers
// split without breaking code fences, and markdown rendered per flavour.
package format

import "unicode/utf8"

// Counting is how a platform measures message length.
type Counting int

// The ways platforms count length.
const (
	Runes Counting = iota // Unicode code points (Matrix, Discord, Slack)
	Bytes                 // UTF-8 bytes
	UTF16                 // UTF-16 code units (Telegram)
)

// Flavour is the markup a platform understands.
type Flavour string

// The markup flavours Herald renders.
const (
	Plain    Flavour = "plain"
	Markdown Flavour = "markdown" // passed through as written
	HTML     Flavour = "html"     // rendered HTML (web chat, Matrix)
)

// Length measures s the way c counts, so that a text can be checked against
// a platform's limit before it is sent. Invalid UTF-8 bytes count as one
// replacement character each (one unit for Runes and UTF16, one byte for
// Bytes).
func Length(s string, c Counting) int {
	switch c {
	case Bytes:
		return len(s)
	case UTF16:
		n := 0
		for _, r := range s {
			n += runeUnits(r, c, 1)
		}
		return n
	default:
		return utf8.RuneCountInString(s)
	}
}

// runeUnits is how many units of c the rune r, encoded in size bytes of the
// text, takes.
func runeUnits(r rune, c Counting, size int) int {
	switch c {
	case Bytes:
		return size
	case UTF16:
		if r >= 0x10000 {
			return 2
		}
		return 1
	default:
		return 1
	}
}

// maxRuneUnits is the most units one character can take under c.
func maxRuneUnits(c Counting) int {
	switch c {
	case Bytes:
		return utf8.UTFMax
	case UTF16:
		return 2
	default:
		return 1
	}
}
