// Package sse reads Server-Sent Events streams, such as the one an
// OpenAI-compatible /v1/chat/completions endpoint sends when streaming.
//
// It follows the "event stream interpretation" section of the WHATWG HTML
// standard exactly: LF, CRLF and bare CR line endings (even when a CRLF pair
// is split between two reads), a leading byte order mark, UTF-8 decoding with
// U+FFFD for invalid bytes, and dispatch rules for data, event and id.
// This package only parses: it does not reconnect, so "retry:" is ignored.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// DefaultLimit bounds a line (without its ending) and an event when
// NewReader is used: 16 MiB, our choice, far beyond any chat completion
// chunk yet small enough that a misbehaving server cannot make a gateway
// with many streams hold much for each.
const DefaultLimit = 16 << 20

// ErrLineTooLong is returned (wrapped, with the limit in the message) when a
// line exceeds the Reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// ErrEventTooLarge is returned (wrapped, with the limit in the message) when
// an event's data lines, name and id together exceed the Reader's limit:
// lines each within the limit can still add up to an endless event.
var ErrEventTooLarge = errors.New("sse: event too large")

// defaultBufSize is the initial read buffer. Chat completion chunks are a few
// hundred bytes, so this holds a few lines; a streamed answer arrives an
// event per read anyway, and the buffer lives as long as the stream, so a
// gateway with thousands of streams keeps it small. It grows only when a
// single line does not fit.
const defaultBufSize = 1 << 10

// maxEmptyReads is how many (0, nil) reads in a row we tolerate before
// deciding the underlying reader is broken, as bufio does.
const maxEmptyReads = 100

// keepDataCap is the largest data buffer kept for reuse between events; a
// rare huge event should not pin its memory for the life of the stream.
const keepDataCap = 64 << 10

// utf8BOM is the byte order mark the standard says to skip at stream start.
var utf8BOM = []byte("\xEF\xBB\xBF")

// Event is one dispatched server-sent event. Data is left in the Reader's
// buffer rather than copied, since callers mostly parse it at once
// (json.Unmarshal takes bytes) and would otherwise pay an allocation and a
// copy per event.
type Event struct {
	Name string // the "event:" field; empty means the default type "message"
	Data []byte // "data:" lines joined with "\n", valid UTF-8; valid only until the next call to Next
	ID   string // the last event ID seen ("id:" field), carried over per the standard
}

// Reader reads events from a byte stream. It is not safe for concurrent use.
type Reader struct {
	// OnComment, if set, is called with the text of each comment line (after
	// ':', leading space removed), so a caller can reset an idle timer on
	// keepalives.
	OnComment func(comment string)

	src     io.Reader
	buf     []byte // buffered input; unconsumed bytes are buf[start:end]
	start   int    // first unconsumed byte
	end     int    // end of buffered input
	scanned int    // buf[start:scanned] is known to hold no line ending
	limit   int    // the most bytes a line, or an event, may hold
	err     error  // sticky error from src, or ErrLineTooLong or ErrEventTooLarge

	bomDone bool // the stream start has been checked for a BOM
	skipLF  bool // the last line ended in CR at the buffer end; a following LF belongs to it

	data     []byte // data buffer, each line followed by "\n"
	name     string // event type buffer
	lastName string // last event type seen, reused when names repeat
	id       string // last event ID buffer
	comment  string // last comment, reused when keepalives repeat
}

// NewReader returns a Reader that reads events from r, within DefaultLimit.
func NewReader(r io.Reader) *Reader {
	return NewReaderLimit(r, DefaultLimit)
}

// NewReaderLimit returns a Reader that reads events from r and fails with
// ErrLineTooLong on a line longer than limit bytes, and with
// ErrEventTooLarge on an event whose data (its lines, each with a "\n"),
// name and id add up to more than limit bytes. So it holds two limits'
// worth at most, the line being read and the event's data, and for the
// rare event that is not valid UTF-8 the repaired copy too (U+FFFD takes
// three bytes where an invalid one took one). A limit <= 0 means
// DefaultLimit.
func NewReaderLimit(r io.Reader, limit int) *Reader {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return newReaderSize(r, defaultBufSize, limit)
}

// newReaderSize lets tests use a tiny buffer and limit.
func newReaderSize(r io.Reader, bufSize, limit int) *Reader {
	return &Reader{src: r, buf: make([]byte, max(bufSize, 1)), limit: limit}
}

// Next returns the next event. It returns io.EOF when the stream ends
// cleanly; an incomplete event at the end is discarded, as the standard says.
// Errors from the underlying reader are returned as they are, after the
// events completed before them. Once Next returns an error, it keeps
// returning it.
//
// The event's Data points into the Reader's own buffer and is valid only
// until the next call to Next, which reuses that buffer; a caller that keeps
// the data must copy it. In the usual case (valid UTF-8, repeated names and
// ids) Next allocates nothing.
func (r *Reader) Next() (Event, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := r.field(line); err != nil {
			return Event{}, err
		}
	}
}

// dispatch handles a blank line: it turns the buffers into an event unless
// the data buffer is empty, and resets them for the next event. The event's
// Data shares the data buffer, which the next event overwrites.
func (r *Reader) dispatch() (Event, bool) {
	if len(r.data) == 0 {
		r.name = ""
		return Event{}, false
	}
	n := len(r.data) - 1 // without the last "\n"
	data := r.data[:n]
	if !utf8.Valid(data) {
		// Decode into the same buffer, after the raw bytes (and their
		// "\n", which append never overwrites), so that the rare invalid
		// event needs no buffer of its own.
		r.data = appendUTF8(r.data, data)
		data = r.data[n+1:]
	}
	ev := Event{Name: r.name, Data: data, ID: r.id}
	r.name = ""
	if cap(r.data) > keepDataCap {
		r.data = nil
	} else {
		r.data = r.data[:0]
	}
	return ev, true
}

// field processes one non-blank line. It fails when the line would make
// the event larger than the limit.
func (r *Reader) field(line []byte) error {
	if line[0] == ':' {
		if r.OnComment != nil {
			c := line[1:]
			if len(c) > 0 && c[0] == ' ' {
				c = c[1:]
			}
			r.comment = reuse(r.comment, c)
			r.OnComment(r.comment)
		}
		return nil
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	// Splitting the raw bytes before UTF-8 decoding gives the same result as
	// decoding first: ':' and ' ' are ASCII and end any invalid sequence.
	// Each field is checked before it is kept, sizes counted as received.
	switch string(name) {
	case "data":
		if r.exceeds(len(r.data)+len(value)+1, len(r.name), len(r.id)) {
			return r.stop(fmt.Errorf("%w (over %d bytes)", ErrEventTooLarge, r.limit))
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		if r.exceeds(len(r.data), len(value), len(r.id)) {
			return r.stop(fmt.Errorf("%w (over %d bytes)", ErrEventTooLarge, r.limit))
		}
		// The name buffer is reset after each event, so remember the
		// last name separately to reuse it.
		r.lastName = reuse(r.lastName, value)
		r.name = r.lastName
	case "id":
		if bytes.IndexByte(value, 0) >= 0 {
			break
		}
		if r.exceeds(len(r.data), len(r.name), len(value)) {
			return r.stop(fmt.Errorf("%w (over %d bytes)", ErrEventTooLarge, r.limit))
		}
		r.id = reuse(r.id, value)
	case "retry":
		// Ignored: the reader does not reconnect, and no caller used it.
	}
	return nil
}

// exceeds tells whether an event of these data, name and id sizes is over
// the limit.
func (r *Reader) exceeds(data, name, id int) bool {
	return data+name+id > r.limit
}

// reuse returns prev if b decodes to it, so a repeated event name, id or
// keepalive costs no allocation.
func reuse(prev string, b []byte) string {
	if string(b) == prev {
		return prev
	}
	return decodeUTF8(b)
}

// readLine returns the next line without its ending. The slice points into
// the read buffer and is valid only until the next call.
func (r *Reader) readLine() ([]byte, error) {
	for {
		if !r.bomDone {
			avail := r.buf[r.start:r.end]
			if len(avail) < len(utf8BOM) && r.err == nil && bytes.HasPrefix(utf8BOM, avail) {
				r.fill()
				continue
			}
			if bytes.HasPrefix(avail, utf8BOM) {
				r.start += len(utf8BOM)
				r.scanned = r.start
			}
			r.bomDone = true
		}
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
				r.scanned = r.start
			}
			r.skipLF = false
		}
		if line, ok := r.scanLine(); ok {
			if len(line) > r.limit {
				return nil, r.tooLong()
			}
			return line, nil
		}
		if r.end-r.start > r.limit {
			return nil, r.tooLong()
		}
		if r.err != nil {
			return nil, r.err
		}
		r.fill()
	}
}

// scanLine cuts the next complete line from the buffer, if there is one.
// It searches for LF and then for CR before it, which is two fast
// IndexByte calls instead of a byte-by-byte loop over both.
func (r *Reader) scanLine() ([]byte, bool) {
	rest := r.buf[r.scanned:r.end]
	lf := bytes.IndexByte(rest, '\n')
	seg := rest
	if lf >= 0 {
		seg = rest[:lf]
	}
	if cr := bytes.IndexByte(seg, '\r'); cr >= 0 {
		eol := r.scanned + cr
		next := eol + 1
		if next == r.end {
			// The LF of a CRLF may still be in flight; we must not
			// wait for it, so remember to drop it if it comes.
			r.skipLF = true
		} else if r.buf[next] == '\n' {
			next++
		}
		return r.consume(eol, next), true
	}
	if lf >= 0 {
		eol := r.scanned + lf
		return r.consume(eol, eol+1), true
	}
	r.scanned = r.end
	return nil, false
}

// consume returns buf[start:eol] and moves past the line ending at next.
func (r *Reader) consume(eol, next int) []byte {
	line := r.buf[r.start:eol]
	r.start, r.scanned = next, next
	return line
}

// tooLong stops the stream at a line over the limit.
func (r *Reader) tooLong() error {
	return r.stop(fmt.Errorf("%w (over %d bytes)", ErrLineTooLong, r.limit))
}

// stop ends the stream with err: it drops the buffered input and the
// event so far, and makes the error sticky.
func (r *Reader) stop(err error) error {
	r.err = err
	r.start, r.end, r.scanned = 0, 0, 0
	r.buf, r.data = nil, nil
	return err
}

// fill reads more input, first making room by sliding the unconsumed bytes
// to the front or, when a single line fills the buffer, growing it. The
// buffer never grows past limit+1 bytes, which is enough to tell that a
// line is too long.
func (r *Reader) fill() {
	if r.start == r.end {
		r.start, r.end, r.scanned = 0, 0, 0
	}
	if r.end == len(r.buf) {
		if r.start > 0 {
			n := copy(r.buf, r.buf[r.start:r.end])
			r.scanned -= r.start
			r.start, r.end = 0, n
		} else {
			size := 2 * len(r.buf)
			if size >= r.limit {
				size = r.limit + 1
			}
			buf := make([]byte, size)
			copy(buf, r.buf[:r.end])
			r.buf = buf
		}
	}
	for range maxEmptyReads {
		n, err := r.src.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			r.err = errors.New("sse: reader returned invalid count")
			return
		}
		r.end += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

// decodeUTF8 converts b to a string the way the WHATWG "UTF-8 decode"
// algorithm does (see appendUTF8), copying valid input as it is.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(appendUTF8(make([]byte, 0, len(b)+2*utf8.UTFMax), b))
}

// appendUTF8 appends b to dst decoded the way the WHATWG "UTF-8 decode"
// algorithm does: each maximal invalid subsequence becomes one U+FFFD.
// That differs from strings.ToValidUTF8, which merges adjacent invalid
// sequences, and from ranging over a string, which replaces byte by byte.
func appendUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		c, size := utf8.DecodeRune(b)
		if c == utf8.RuneError && size <= 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
			b = b[invalidLen(b):]
			continue
		}
		dst = append(dst, b[:size]...)
		b = b[size:]
	}
	return dst
}

// invalidLen returns the length of the maximal subpart at the start of b,
// which does not begin with a valid UTF-8 sequence: a lead byte followed by
// as many continuation bytes as fit the ranges the lead byte allows (Unicode
// chapter 3, "U+FFFD Substitution of Maximal Subparts").
func invalidLen(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0 // no overlong forms
		} else if c == 0xED {
			hi = 0x9F // no surrogates
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90 // no overlong forms
		} else if c == 0xF4 {
			hi = 0x8F // nothing above U+10FFFF
		}
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(b) && b[n] >= lo && b[n] <= hi {
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}
