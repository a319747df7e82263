package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// event is an Event with its data copied into a string, so that it outlives
// the next call and compares with ==.
type event struct {
	Name, Data, ID string
}

// record is one thing a Reader produced: an event or a comment.
type record struct {
	Comment   string
	IsComment bool
	Event     event
}

func (r record) String() string {
	if r.IsComment {
		return fmt.Sprintf("comment %q", r.Comment)
	}
	return fmt.Sprintf("event{Name:%q Data:%q ID:%q}", r.Event.Name, r.Event.Data, r.Event.ID)
}

// readAll drains rd with Next, returning what it produced in order and the
// final error. It copies each event's data as soon as it has it, since the
// next call may overwrite it.
func readAll(rd *Reader) ([]record, error) {
	var out []record
	rd.OnComment = func(c string) { out = append(out, record{Comment: c, IsComment: true}) }
	for {
		ev, err := rd.Next()
		if err != nil {
			return out, err
		}
		out = append(out, record{Event: event{Name: ev.Name, Data: string(ev.Data), ID: ev.ID}})
	}
}

// chunkReader returns its chunks one Read at a time, so a test controls
// exactly where reads split the stream.
type chunkReader struct {
	chunks [][]byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

func chunks(parts ...string) *chunkReader {
	c := &chunkReader{}
	for _, p := range parts {
		c.chunks = append(c.chunks, []byte(p))
	}
	return c
}

// feeds returns readers that deliver input in different ways: whole, one
// byte at a time, and split in two at every position.
func feeds(input string) map[string]func() io.Reader {
	m := map[string]func() io.Reader{
		"whole":   func() io.Reader { return strings.NewReader(input) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(input)) },
		"halfreads": func() io.Reader {
			return iotest.HalfReader(strings.NewReader(input))
		},
	}
	for i := 1; i < len(input); i++ {
		m[fmt.Sprintf("split@%d", i)] = func() io.Reader { return chunks(input[:i], input[i:]) }
	}
	return m
}

// checkAll asserts that input gives want (events and comments) and io.EOF
// however it is split across reads.
func checkAll(t *testing.T, input string, want []record) {
	t.Helper()
	for name, feed := range feeds(input) {
		got, err := readAll(NewReader(feed()))
		if err != io.EOF {
			t.Errorf("%s: err = %v, want io.EOF", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: input %q\n got %v\nwant %v", name, input, got, want)
		}
	}
}

func ev(name, data, id string) record {
	return record{Event: event{Name: name, Data: data, ID: id}}
}

func comment(c string) record {
	return record{Comment: c, IsComment: true}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []record
	}{
		{"LF", "data: a\n\ndata: b\n\n", []record{ev("", "a", ""), ev("", "b", "")}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []record{ev("", "a", ""), ev("", "b", "")}},
		{"bare CR", "data: a\r\rdata: b\r\r", []record{ev("", "a", ""), ev("", "b", "")}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []record{ev("", "a\nb\nc", "")}},
		{"CR then LF is one ending", "data: a\r\ndata: b\n\n", []record{ev("", "a\nb", "")}},
		{"LF then CR is two endings", "data: a\n\rdata: b\n\n", []record{ev("", "a", ""), ev("", "b", "")}},
		{"CR CR LF", "data: a\r\r\n", []record{ev("", "a", "")}},
		{"no space after colon", "data:a\n\n", []record{ev("", "a", "")}},
		{"two spaces keep one", "data:  a\n\n", []record{ev("", " a", "")}},
		{"trailing space kept", "data: a \n\n", []record{ev("", "a ", "")}},
		{"tab is not stripped", "data:\ta\n\n", []record{ev("", "\ta", "")}},
		{"colon in value", "data: a:b: c\n\n", []record{ev("", "a:b: c", "")}},
		{"multi-line data", "data: a\ndata: b\ndata:\ndata: c\n\n", []record{ev("", "a\nb\n\nc", "")}},
		{"empty data dispatches", "data:\n\n", []record{ev("", "", "")}},
		{"field without colon", "data\n\n", []record{ev("", "", "")}},
		{"two empty data lines", "data\ndata\n\n", []record{ev("", "\n", "")}},
		{"event name", "event: ping\ndata: x\n\n", []record{ev("ping", "x", "")}},
		{"event name resets", "event: ping\ndata: x\n\ndata: y\n\n", []record{ev("ping", "x", ""), ev("", "y", "")}},
		{"last event name wins", "event: a\nevent: b\ndata: x\n\n", []record{ev("b", "x", "")}},
		{"empty event name", "event: a\nevent\ndata: x\n\n", []record{ev("", "x", "")}},
		{"no data no dispatch", "event: a\n\n\n\n", nil},
		{"name reset by undispatched event", "event: a\n\ndata: x\n\n", []record{ev("", "x", "")}},
		{"unknown field ignored", "foo: bar\ndata: x\nbaz\n\n", []record{ev("", "x", "")}},
		{"field names are case-sensitive", "Data: x\nDATA: y\n\n", nil},
		{"space before colon is part of name", "data : x\n\n", nil},
		{"ids persist", "id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n",
			[]record{ev("", "a", "1"), ev("", "b", "1"), ev("", "c", "2")}},
		{"id set without dispatch persists", "id: 7\n\ndata: a\n\n", []record{ev("", "a", "7")}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			[]record{ev("", "a", "1"), ev("", "b", "1")}},
		{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []record{ev("", "a", "1"), ev("", "b", "")}},
		{"id after data in same event", "data: a\nid: 9\n\n", []record{ev("", "a", "9")}},
		{"comments", ": hello\n:world\n:  two\n:\ndata: a\n\n",
			[]record{comment("hello"), comment("world"), comment(" two"), comment(""), ev("", "a", "")}},
		{"comment does not dispatch or end event", "data: a\n: keepalive\ndata: b\n\n",
			[]record{comment("keepalive"), ev("", "a\nb", "")}},
		{"incomplete event at EOF", "data: a\n\ndata: b\n", []record{ev("", "a", "")}},
		{"incomplete line at EOF", "data: a\n\ndata: b", []record{ev("", "a", "")}},
		{"comment without ending at EOF", "data: a\n\n: bye", []record{ev("", "a", "")}},
		{"final CR dispatches", "data: a\n\r", []record{ev("", "a", "")}},
		{"BOM skipped", "\uFEFFdata: a\n\n", []record{ev("", "a", "")}},
		{"only one BOM skipped", "\uFEFF\uFEFFdata: a\n\ndata: b\n\n", []record{ev("", "b", "")}},
		{"BOM later is data", "data: \uFEFFa\n\n", []record{ev("", "\uFEFFa", "")}},
		{"partial BOM is content", "\xEF\xBBdata: a\n\ndata: b\n\n", []record{ev("", "b", "")}},
		{"empty stream", "", nil},
		{"BOM only", "\uFEFF", nil},
		{"multi-byte characters", "event: é\ndata: €😀\nid: ü\n\n", []record{ev("é", "€😀", "ü")}},
		{"retry is not an event", "retry: 1000\n\n", nil},
		{"retry is ignored", "retry: 1500\ndata: a\n\nretry: 12x\ndata: b\n\nretry:\ndata: c\n\nretry: 99999999999999999999999\ndata: d\n\n",
			[]record{ev("", "a", ""), ev("", "b", ""), ev("", "c", ""), ev("", "d", "")}},
		{"NUL in data kept", "data: a\x00b\n\n", []record{ev("", "a\x00b", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAll(t, tt.input, tt.want)
		})
	}
}

// A CR at the end of one read and an LF at the start of the next are one
// line ending, not an empty line that would dispatch early.
func TestCRLFSplitAcrossReads(t *testing.T) {
	rd := NewReader(chunks("data: a\r", "\ndata: b\r", "\n\r", "\n"))
	got, err := readAll(rd)
	if err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := []record{ev("", "a\nb", "")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A line ending in CR is handed out before the next byte arrives: a server
// using bare CR must not have its events held back until it sends more.
func TestCRDoesNotWaitForNextByte(t *testing.T) {
	r := &stallReader{data: []byte("data: a\r\r")}
	rd := NewReader(r)
	e, err := rd.Next()
	if err != nil || string(e.Data) != "a" {
		t.Fatalf("Next = %+v, %v; want data a", e, err)
	}
}

// stallReader returns its data and then fails the test if read again.
type stallReader struct {
	data []byte
	done bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.done {
		return 0, errors.New("read past available data: reader would block")
	}
	s.done = true
	return copy(p, s.data), nil
}

func TestUTF8SplitAcrossReads(t *testing.T) {
	const input = "event: café\ndata: é€😀\nid: 😀\n\n"
	checkAll(t, input, []record{ev("café", "é€😀", "😀")})
}

func TestInvalidUTF8(t *testing.T) {
	// Examples from the Unicode standard, chapter 3, "U+FFFD Substitution
	// of Maximal Subparts", which the WHATWG decoder follows.
	tests := []struct{ in, want string }{
		{"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"},
		{"\x61\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41", "a" + strings.Repeat("\uFFFD", 8) + "A"},
		{"\x61\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41", "a" + strings.Repeat("\uFFFD", 8) + "A"},
		{"\x61\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42", "a" + strings.Repeat("\uFFFD", 5) + "A\uFFFD\uFFFDB"},
		{"\x61\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", "a" + strings.Repeat("\uFFFD", 4) + "A"},
		{"\xE2\x82", "\uFFFD"},     // truncated at end of line
		{"\xF0\x9F\x98", "\uFFFD"}, // truncated emoji
		{"\uFFFD", "\uFFFD"},       // a real U+FFFD stays one
		{"ok\xFF", "ok\uFFFD"},
	}
	for _, tt := range tests {
		input := "event: " + tt.in + "\ndata: " + tt.in + "\ndata: " + tt.in + "\nid: " + tt.in + "\n\n"
		want := []record{ev(tt.want, tt.want+"\n"+tt.want, tt.want)}
		checkAll(t, input, want)
	}
	// A lead byte at the end of a line is cut off by the line ending.
	checkAll(t, "data: \xE2\ndata: \x82\xAC\n\n", []record{ev("", "\uFFFD\n\uFFFD\uFFFD", "")})
}

func TestDecodeUTF8MatchesStandardLibraryOnValid(t *testing.T) {
	for _, s := range []string{"", "abc", "é€😀", "\u0000\u007F\u0080\u07FF\u0800\uFFFF\U00010000\U0010FFFF"} {
		if got := decodeUTF8([]byte(s)); got != s {
			t.Errorf("decodeUTF8(%q) = %q", s, got)
		}
	}
	if got := decodeUTF8([]byte("\xFF\xFE")); !utf8.ValidString(got) || got != "\uFFFD\uFFFD" {
		t.Errorf("decodeUTF8(FF FE) = %q", got)
	}
}

func TestOpenAIStream(t *testing.T) {
	const input = `data: {"choices":[{"delta":{"content":"Hel"}}]}

event: hermes.tool.progress
data: {"tool":"web_search","status":"running"}

: keepalive

data: [DONE]

`
	checkAll(t, input, []record{
		ev("", `{"choices":[{"delta":{"content":"Hel"}}]}`, ""),
		ev("hermes.tool.progress", `{"tool":"web_search","status":"running"}`, ""),
		comment("keepalive"),
		ev("", "[DONE]", ""),
	})
}

func TestCommentsWithoutCallback(t *testing.T) {
	rd := NewReader(strings.NewReader(": keepalive\n\ndata: a\n\n"))
	e, err := rd.Next()
	if err != nil || string(e.Data) != "a" {
		t.Fatalf("Next = %+v, %v; want data a", e, err)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("second Next err = %v, want io.EOF", err)
	}
}

func TestReadErrorPropagates(t *testing.T) {
	boom := errors.New("connection reset")
	src := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	rd := NewReader(src)
	e, err := rd.Next()
	if err != nil || string(e.Data) != "a" {
		t.Fatalf("first Next = %+v, %v; want data a", e, err)
	}
	for i := range 2 { // the error is sticky
		if _, err := rd.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next #%d err = %v, want %v", i, err, boom)
		}
	}
}

// Data returned together with an error is still parsed before the error.
func TestDataWithError(t *testing.T) {
	rd := NewReader(iotest.DataErrReader(strings.NewReader("data: a\n\ndata: b\n\n")))
	got, err := readAll(rd)
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if want := []record{ev("", "a", ""), ev("", "b", "")}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// emptyReader always returns (0, nil), which io.Reader discourages.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	if _, err := NewReader(emptyReader{}).Next(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

// badReader claims to have read more than it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestBadReaderCount(t *testing.T) {
	if _, err := NewReader(badReader{}).Next(); err == nil || err == io.EOF {
		t.Fatalf("err = %v, want an error", err)
	}
}

func TestSmallLimit(t *testing.T) {
	const limit = 10
	tests := []struct {
		input string
		want  []record
		err   error
	}{
		{"data: 123\n\n", []record{ev("", "123", "")}, io.EOF},       // 9 bytes
		{"data: 1234\n\n", []record{ev("", "1234", "")}, io.EOF},     // exactly 10
		{"data: 1234\r\n\r\n", []record{ev("", "1234", "")}, io.EOF}, // ending not counted
		{"data: 1234\r\r", []record{ev("", "1234", "")}, io.EOF},
		{"data: 12345\n\n", nil, ErrLineTooLong}, // 11
		{"data: a\n\ndata: 12345\n\n", []record{ev("", "a", "")}, ErrLineTooLong},
		{"data: a\n\ndata: 12345", []record{ev("", "a", "")}, ErrLineTooLong}, // even at EOF
		{"data: a\n\ndata: 1234", []record{ev("", "a", "")}, io.EOF},
	}
	for _, tt := range tests {
		for name, feed := range feeds(tt.input) {
			for _, bufSize := range []int{1, 4, 64} {
				got, err := readAll(newReaderSize(feed(), bufSize, limit))
				if !errors.Is(err, tt.err) {
					t.Errorf("%q %s buf %d: err = %v, want %v", tt.input, name, bufSize, err, tt.err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%q %s buf %d: got %v, want %v", tt.input, name, bufSize, got, tt.want)
				}
			}
		}
	}
}

func TestLineTooLongMessageAndSticky(t *testing.T) {
	rd := newReaderSize(strings.NewReader("data: 0123456789\n\ndata: a\n\n"), 4, 10)
	_, err := rd.Next()
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "10") {
		t.Fatalf("err = %v, want ErrLineTooLong mentioning the limit", err)
	}
	if _, err2 := rd.Next(); err2 != err {
		t.Fatalf("second Next err = %v, want the same error", err2)
	}
}

// An event's lines, each within the limit, may not add up to more than it:
// data lines count with their "\n", and the name and id count too.
func TestEventTooLarge(t *testing.T) {
	const limit = 10
	tests := []struct {
		input string
		want  []record
		err   error
	}{
		// Every line is within the limit of 10 bytes.
		{"data: 1234\ndata: 1234\n\n", []record{ev("", "1234\n1234", "")}, io.EOF}, // exactly 10
		{"data: 1234\ndata: 1234\ndata: \n\n", nil, ErrEventTooLarge},
		{"data: 12\ndata: 12\ndata: 12\ndata: 12\n\n", nil, ErrEventTooLarge},
		{"data: 12\ndata: 12\ndata: 12\ndata: 12\n", nil, ErrEventTooLarge}, // before the event ends
		{"data: a\n\ndata: 1234\ndata: 1234\ndata: \n\ndata: b\n\n", []record{ev("", "a", "")}, ErrEventTooLarge},
		{"event: 12\ndata: 1234\ndata: 12\n\n", []record{ev("12", "1234\n12", "")}, io.EOF},
		{"event: 12\ndata: 1234\ndata: 123\n\n", nil, ErrEventTooLarge},
		{"data: 1234\ndata: 123\nevent: 12\n\n", nil, ErrEventTooLarge},
		{"id: 12\ndata: 1234\ndata: 12\n\n", []record{ev("", "1234\n12", "12")}, io.EOF},
		{"id: 12\ndata: 1234\ndata: 123\n\n", nil, ErrEventTooLarge},
		{"id: 12\x00\ndata: 1234\ndata: 123\n\n", []record{ev("", "1234\n123", "")}, io.EOF}, // an id with NUL is not kept
		// The id is carried over, so it counts in the next event too.
		{"id: 123456\ndata: 1\n\ndata: 1234\n\n", []record{ev("", "1", "123456")}, ErrEventTooLarge},
		// A name is reset after each event.
		{"event: 123\n\nevent: 12\ndata: 1234\ndata: 12\n\n", []record{ev("12", "1234\n12", "")}, io.EOF},
		// Comments and unknown fields are not kept, so they do not count.
		{"data: 1234\n: 12345678\nfoo: 12345\ndata: 1234\n\n", []record{comment("12345678"), ev("", "1234\n1234", "")}, io.EOF},
	}
	for _, tt := range tests {
		for name, feed := range feeds(tt.input) {
			for _, bufSize := range []int{1, 64} {
				got, err := readAll(newReaderSize(feed(), bufSize, limit))
				if !errors.Is(err, tt.err) {
					t.Errorf("%q %s buf %d: err = %v, want %v", tt.input, name, bufSize, err, tt.err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%q %s buf %d: got %v, want %v", tt.input, name, bufSize, got, tt.want)
				}
			}
		}
	}
}

func TestEventTooLargeMessageAndSticky(t *testing.T) {
	rd := newReaderSize(strings.NewReader("data: 1234\ndata: 1234\ndata: \n\ndata: a\n\n"), 4, 10)
	_, err := rd.Next()
	if !errors.Is(err, ErrEventTooLarge) || !strings.Contains(err.Error(), "10 bytes") {
		t.Fatalf("err = %v, want ErrEventTooLarge naming the limit", err)
	}
	if _, err2 := rd.Next(); err2 != err {
		t.Fatalf("second Next err = %v, want the same error", err2)
	}
}

// endlessLine is the line linesReader repeats: 16 bytes of data, which
// take 17 in the event with their "\n".
const endlessLine = "data: 0123456789abcdef\n"

// linesReader supplies an endless event, short data lines and no blank
// line, and counts what it gave out.
type linesReader struct{ n int64 }

func (l *linesReader) Read(p []byte) (int, error) {
	const line = endlessLine
	n := 0
	for len(p)-n >= len(line) {
		n += copy(p[n:], line)
	}
	if n == 0 {
		n = copy(p, line)
	}
	l.n += int64(n)
	return n, nil
}

// The endless event a misbehaving server sends fails once the event holds
// the limit, having read no more than that and one buffer.
func TestEndlessEvent(t *testing.T) {
	const limit = 1 << 20
	src := &linesReader{}
	_, err := NewReaderLimit(src, limit).Next()
	if !errors.Is(err, ErrEventTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(limit)) {
		t.Fatalf("err = %v, want ErrEventTooLarge naming the limit", err)
	}
	// The data fills up after limit/17 lines: the next one fails.
	fit := int64(limit / 17 * len(endlessLine))
	if max := fit + int64(len(endlessLine)+defaultBufSize); src.n > max {
		t.Errorf("read %d bytes, want at most %d", src.n, max)
	}
	if src.n < fit {
		t.Errorf("read %d bytes, want the event to fail only past the limit (%d lines, %d bytes)", src.n, limit/17, fit)
	}
}

func TestReaderLimitDefault(t *testing.T) {
	if got := NewReaderLimit(strings.NewReader(""), 0).limit; got != DefaultLimit {
		t.Errorf("limit 0 gives %d, want DefaultLimit", got)
	}
	if got := NewReader(strings.NewReader("")).limit; got != DefaultLimit {
		t.Errorf("NewReader's limit is %d, want DefaultLimit", got)
	}
}

// fillReader supplies an endless line of 'a' and counts what it gave out.
type fillReader struct{ n int64 }

func (f *fillReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	f.n += int64(len(p))
	return len(p), nil
}

func TestLineTooLongReal(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 16 MiB")
	}
	// 17 MiB of one line, then a proper ending that must never be reached.
	src := &fillReader{}
	body := io.MultiReader(strings.NewReader("data: "), io.LimitReader(src, 17<<20), strings.NewReader("\n\n"))
	rd := NewReader(body)
	_, err := rd.Next()
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(DefaultLimit)) {
		t.Errorf("error %q does not mention the limit", err)
	}
	// Memory stays bounded: we read no more than the limit plus one buffer.
	if max := int64(DefaultLimit + defaultBufSize); src.n > max {
		t.Errorf("read %d bytes of the line, want at most %d", src.n, max)
	}

	// An endless line fails the same way rather than growing forever.
	src = &fillReader{}
	if _, err := NewReader(src).Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("endless line: err = %v, want ErrLineTooLong", err)
	}
	if max := int64(DefaultLimit + defaultBufSize); src.n > max {
		t.Errorf("endless line: read %d bytes, want at most %d", src.n, max)
	}
}

func TestLongLineJustUnderLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 16 MiB several times")
	}
	const prefix = "data: "
	n := DefaultLimit - len(prefix) // the line is exactly DefaultLimit bytes
	body := io.MultiReader(strings.NewReader(prefix), io.LimitReader(&fillReader{}, int64(n)),
		strings.NewReader("\r\n\r\ndata: next\n\n"))
	rd := NewReader(body)
	e, err := rd.Next()
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if len(e.Data) != n || len(bytes.Trim(e.Data, "a")) != 0 {
		t.Fatalf("got data of %d bytes, want %d bytes of 'a'", len(e.Data), n)
	}
	if e, err := rd.Next(); err != nil || string(e.Data) != "next" {
		t.Fatalf("after the long line: %+v, %v", e, err)
	}
}

// A line longer than the initial buffer makes it grow, and the data is intact.
func TestBufferGrowth(t *testing.T) {
	long := strings.Repeat("0123456789", 10_000)
	input := "data: " + long + "\ndata: " + long + "\n\ndata: short\n\n"
	want := []record{ev("", long+"\n"+long, ""), ev("", "short", "")}
	for _, src := range []io.Reader{strings.NewReader(input), iotest.OneByteReader(strings.NewReader(input))} {
		got, err := readAll(NewReader(src))
		if err != io.EOF || !slices.Equal(got, want) {
			t.Fatalf("got %d records, err %v; want the two events", len(got), err)
		}
	}
}

// An event's data must be whole however the read buffer slides or grows
// while the event is read: here each event's blank line arrives in a read
// after its data, events grow and shrink, and the buffer starts tiny.
func TestDataAcrossBufferMoves(t *testing.T) {
	long := strings.Repeat("0123456789", 100)
	want := []string{"a", long, "b\n" + long, "c", long + "\n\nd", "", "e"}
	var parts []string
	for _, d := range want {
		for line := range strings.SplitSeq(d, "\n") {
			parts = append(parts, "data: "+line+"\r\n")
		}
		parts = append(parts, "\r\n")
	}
	for _, bufSize := range []int{1, 4, 64, defaultBufSize} {
		rd := newReaderSize(chunks(parts...), bufSize, DefaultLimit)
		for i, w := range want {
			ev, err := rd.Next()
			if err != nil || string(ev.Data) != w {
				t.Fatalf("buf %d event %d: %.40q, %v; want %.40q", bufSize, i, ev.Data, err, w)
			}
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("buf %d: err = %v, want io.EOF", bufSize, err)
		}
	}
}

// Invalid UTF-8 is decoded in the data buffer itself, after the raw bytes:
// the decoding may be three times longer and move the buffer, and the next
// event must start clean.
func TestInvalidUTF8InPlace(t *testing.T) {
	big := strings.Repeat("\xFF", keepDataCap) // decodes past keepDataCap
	input := "data: a\xFFb\n\n" +
		"data: " + strings.Repeat("\xFF", 200) + "\ndata: \xE2\x82\n\n" +
		"data: ok\n\n" +
		"data: " + big + "\n\n" +
		"data: \xF0\x9F\x98\x80\xC0\n\n"
	want := []string{
		"a\uFFFDb",
		strings.Repeat("\uFFFD", 200) + "\n\uFFFD",
		"ok",
		strings.Repeat("\uFFFD", keepDataCap),
		"😀\uFFFD",
	}
	for _, src := range []io.Reader{strings.NewReader(input), iotest.OneByteReader(strings.NewReader(input))} {
		rd := NewReader(src)
		for i, w := range want {
			ev, err := rd.Next()
			if err != nil || string(ev.Data) != w {
				t.Fatalf("event %d: %.40q, %v; want %.40q", i, ev.Data, err, w)
			}
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("err = %v, want io.EOF", err)
		}
	}
}

// Next reuses its buffers: once they have grown to fit, an event costs no
// allocation, both when names, ids and keepalives repeat and when the data
// must be repaired.
func TestAllocations(t *testing.T) {
	const valid = "event: hermes.tool.progress\nid: 42\ndata: {\"tool\":\"web_search\"}\n\n: keepalive\n\n"
	for name, chunk := range map[string]string{
		"valid":    valid,
		"repaired": valid + "data: {\"choices\":[{\"delta\":{\"content\":\"caf\xE9\"}}]}\n\n",
	} {
		rd := NewReader(strings.NewReader(strings.Repeat(chunk, 1000)))
		rd.OnComment = func(string) {}
		for range 2 { // warm up the cached strings and the data buffer
			if _, err := rd.Next(); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(500, func() {
			if _, err := rd.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per event, want 0", name, allocs)
		}
	}
}
