package sse

import (
	"bytes"
	"errors"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// randomChunkReader hands out its data in pseudo-random pieces, including
// the occasional empty read, seeded so that a failure can be replayed.
type randomChunkReader struct {
	data []byte
	rng  *rand.Rand
}

func newRandomChunkReader(data []byte) *randomChunkReader {
	h := fnv.New64a()
	h.Write(data)
	return &randomChunkReader{data: data, rng: rand.New(rand.NewPCG(h.Sum64(), uint64(len(data))))}
}

func (c *randomChunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.rng.IntN(20), len(p), len(c.data)) // 0 now and then
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// referenceParse is a deliberately naive, line-by-line transcription of the
// WHATWG algorithm that works on a whole decoded string. The Reader must
// agree with it on every input.
func referenceParse(input []byte) []record {
	s := referenceDecode(input)
	var out []record
	var data strings.Builder
	var name, id string
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return out // an unterminated last line is never processed
		}
		line := s[:i]
		if strings.HasPrefix(s[i:], "\r\n") {
			s = s[i+2:]
		} else {
			s = s[i+1:]
		}
		switch {
		case line == "":
			if data.Len() == 0 {
				name = ""
				continue
			}
			d := strings.TrimSuffix(data.String(), "\n")
			out = append(out, record{Event: event{Name: name, Data: d, ID: id}})
			data.Reset()
			name = ""
		case line[0] == ':':
			out = append(out, record{Comment: strings.TrimPrefix(line[1:], " "), IsComment: true})
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "data":
				data.WriteString(value + "\n")
			case "event":
				name = value
			case "id":
				if !strings.Contains(value, "\x00") {
					id = value
				}
			}
		}
	}
}

// referenceDecode is the WHATWG Encoding standard's "UTF-8 decode",
// written as the spec's state machine so that it shares no code with
// decodeUTF8.
func referenceDecode(b []byte) string {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	var sb strings.Builder
	var cp rune
	needed, seen := 0, 0
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if needed == 0 {
			switch {
			case c <= 0x7F:
				sb.WriteByte(c)
			case c >= 0xC2 && c <= 0xDF:
				needed, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				}
				if c == 0xED {
					upper = 0x9F
				}
				needed, cp = 2, rune(c&0xF)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				}
				if c == 0xF4 {
					upper = 0x8F
				}
				needed, cp = 3, rune(c&0x7)
			default:
				sb.WriteRune(utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			cp, needed, seen = 0, 0, 0
			lower, upper = 0x80, 0xBF
			sb.WriteRune(utf8.RuneError)
			i-- // process the byte again
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		seen++
		if seen == needed {
			sb.WriteRune(cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n",
		"data: a\r\n\r\ndata: b\r\r",
		"data:a\ndata:  b\ndata\n\n",
		"event: x\nid: 1\ndata: y\n\nid: 2\x00\ndata: z\n\n",
		": keepalive\n\nevent: e\n\n",
		"\xEF\xBB\xBF\xEF\xBB\xBFdata: bom\n\n",
		"data: \xE2\x82\xAC \xF0\x9F\x98\x80 \xFF\xC0\xED\xA0\x80\xF4\x90\x80\x80\xE2\x82\n\n",
		"data: 0123456789abcdefghij\n\ndata: a\r",
		"retry: 100\nretry: x\n\n",
		"data: incomplete\n",
		"data: 12345678\ndata: 12345678\n\n",
		"id: 0123456789\nevent: 012345\ndata: a\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		want := referenceParse(input)

		// With the real limit, every way of feeding the input must give
		// exactly what the reference gives.
		feeds := map[string]func() *Reader{
			"whole":      func() *Reader { return NewReader(bytes.NewReader(input)) },
			"onebyte":    func() *Reader { return NewReader(iotest.OneByteReader(bytes.NewReader(input))) },
			"random":     func() *Reader { return NewReader(newRandomChunkReader(input)) },
			"tinybuffer": func() *Reader { return newReaderSize(bytes.NewReader(input), 1, DefaultLimit) },
		}
		for name, feed := range feeds {
			got, err := readAll(feed())
			if err != io.EOF {
				t.Fatalf("%s: err = %v, want io.EOF", name, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: input %q\n got %v\nwant %v", name, input, got, want)
			}
			checkValid(t, got)
		}

		// With a tiny line limit, the feeds must agree with each other,
		// including on where the stream stops, and produce a prefix of the
		// reference output.
		const limit = 16
		small := map[string]func() *Reader{
			"whole":   func() *Reader { return newReaderSize(bytes.NewReader(input), 4, limit) },
			"onebyte": func() *Reader { return newReaderSize(iotest.OneByteReader(bytes.NewReader(input)), 4, limit) },
			"random":  func() *Reader { return newReaderSize(newRandomChunkReader(input), 4, limit) },
			"bigbuf":  func() *Reader { return newReaderSize(bytes.NewReader(input), 4096, limit) },
		}
		base, baseErr := readAll(small["whole"]())
		if baseErr != io.EOF && !errors.Is(baseErr, ErrLineTooLong) && !errors.Is(baseErr, ErrEventTooLarge) {
			t.Fatalf("limit %d: err = %v", limit, baseErr)
		}
		// Where decoding changes nothing, every event given out fits
		// the limit: its data with the ending "\n", name and id.
		if utf8.Valid(input) {
			for _, r := range base {
				if e := r.Event; !r.IsComment && len(e.Data)+1+len(e.Name)+len(e.ID) > limit {
					t.Fatalf("limit %d: input %q gave %v, over the limit", limit, input, r)
				}
			}
		}
		if len(base) > len(want) || !slices.Equal(base, want[:len(base)]) {
			t.Fatalf("limit %d: input %q\n got %v\nnot a prefix of %v", limit, input, base, want)
		}
		if baseErr == io.EOF && len(base) != len(want) {
			t.Fatalf("limit %d: clean EOF after %d of %d records", limit, len(base), len(want))
		}
		for name, feed := range small {
			got, err := readAll(feed())
			if (err == io.EOF) != (baseErr == io.EOF) || !slices.Equal(got, base) {
				t.Fatalf("limit %d %s: input %q\n got %v, %v\nwant %v, %v", limit, name, input, got, err, base, baseErr)
			}
		}
	})
}

// checkValid asserts the invariants every output must have.
func checkValid(t *testing.T, recs []record) {
	t.Helper()
	for _, r := range recs {
		if !utf8.ValidString(r.Comment) || !utf8.ValidString(r.Event.Name) ||
			!utf8.ValidString(r.Event.Data) || !utf8.ValidString(r.Event.ID) {
			t.Fatalf("invalid UTF-8 in %v", r)
		}
		if strings.Contains(r.Event.ID, "\x00") {
			t.Fatalf("NUL in ID of %v", r)
		}
	}
}
