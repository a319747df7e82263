package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/sse"
)

// sseFigures is one decoder's speed on one stream. Speeds are per second
// of the process's CPU time (user and system, the garbage collector's
// included), which other work on a shared machine disturbs far less than
// wall-clock time.
type sseFigures struct {
	EventsPerSec   float64
	MBPerSec       float64
	AllocsPerEvent float64
	BytesPerEvent  float64 // allocated
}

// sseStream is one input and both decoders' figures on it.
type sseStream struct {
	Name   string
	Bytes  int
	Events int
	Herald sseFigures
	OpenAI sseFigures
}

// Ratio is how many times more events per second Herald's reader decodes.
func (s sseStream) Ratio() float64 {
	if s.OpenAI.EventsPerSec == 0 {
		return 0
	}
	return s.Herald.EventsPerSec / s.OpenAI.EventsPerSec
}

// sseResult compares Herald's SSE reader with openai-go's decoder.
type sseResult struct {
	Rounds  int
	Round   time.Duration
	Streams []sseStream // the internal/sse benchmark's stream first
}

// benchmarkStream has the shape of internal/sse's BenchmarkDecode input:
// 1,000 identical content chunks, a tool progress event after every 100th
// (from the 51st), a keepalive comment every 250 (from the 101st), [DONE].
func benchmarkStream() []byte {
	const chunk = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"hermes-agent","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n"
	var b bytes.Buffer
	for i := range 1000 {
		b.WriteString(chunk)
		if i%100 == 50 {
			fmt.Fprintf(&b, "event: hermes.tool.progress\ndata: {\"tool\":\"web_search\",\"status\":\"running\",\"step\":%d}\n\n", i)
		}
		if i%250 == 100 {
			b.WriteString(": keepalive\n\n")
		}
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// recordedStream is a real answer of the simulator, recorded: a role chunk,
// tool progress events, 1,000 content chunks of varied words, the finish
// chunk with usage, and [DONE]; with a keepalive comment every 100 events,
// as a slow agent's stream has.
func recordedStream() ([]byte, error) {
	s := sim.New(sim.Options{AnswerTokens: 1000, ToolProgress: true, Tools: []string{"web_search", "read_file", "terminal"}})
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"hermes-agent","stream":true,"messages":[{"role":"user","content":"How fast is the SSE reader?"}]}`))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("simulator answered %d", rec.Code)
	}
	events := bytes.SplitAfter(rec.Body.Bytes(), []byte("\n\n"))
	var b bytes.Buffer
	for i, ev := range events {
		if i > 0 && i%100 == 0 {
			b.WriteString(": keepalive\n\n")
		}
		b.Write(ev)
	}
	return b.Bytes(), nil
}

// sseDigest is what a decoder makes of a stream: the events with data and a
// checksum of that data. Computing it makes each decoder's caller read every
// byte of every event's data, as a client that parses the data does, and
// lets the two decoders be checked against each other.
type sseDigest struct {
	Events int
	Sum    uint32 // CRC-32 of the events' data, in order
}

// add counts one event's data, as the standard defines it (lines joined
// with "\n", no final "\n").
func (d *sseDigest) add(data []byte) {
	d.Events++
	d.Sum = crc32.Update(d.Sum, crc32.IEEETable, data)
}

// decodeHerald reads every event of input with Herald's reader as the
// gateway does: Next, whose data is a view of the reader's buffer
// (decoded as UTF-8, no copy), checksummed where it lies.
func decodeHerald(input []byte) (sseDigest, error) {
	rd := sse.NewReader(bytes.NewReader(input))
	var d sseDigest
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return d, err
		}
		if len(ev.Data) > 0 {
			d.add(ev.Data)
		}
	}
}

// decodeOpenAI reads every event of input with openai-go's decoder, as its
// streaming client does: each event's data is a new slice (raw bytes, no
// UTF-8 decoding) that still ends in the "\n" of its last line, which is cut
// off (no copy) before the same checksum.
func decodeOpenAI(input []byte) (sseDigest, error) {
	res := &http.Response{
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body:   io.NopCloser(bytes.NewReader(input)),
	}
	dec := ssestream.NewDecoder(res)
	var d sseDigest
	for dec.Next() {
		if data := dec.Event().Data; len(data) > 0 {
			d.add(bytes.TrimSuffix(data, []byte("\n")))
		}
	}
	return d, dec.Err()
}

// measureSSE decodes each stream with both decoders for round long,
// rounds times, alternating, and keeps each one's median round.
func measureSSE(rounds int, round time.Duration) (sseResult, error) {
	recorded, err := recordedStream()
	if err != nil {
		return sseResult{}, err
	}
	res := sseResult{Rounds: rounds, Round: round}
	for _, in := range []struct {
		name  string
		input []byte
	}{
		{"the internal/sse benchmark's stream (identical 160-byte chunks)", benchmarkStream()},
		{"a recorded simulator answer (varied chunks)", recorded},
	} {
		st, err := compareDecoders(in.name, in.input, rounds, round)
		if err != nil {
			return res, err
		}
		res.Streams = append(res.Streams, st)
	}
	return res, nil
}

func compareDecoders(name string, input []byte, rounds int, round time.Duration) (sseStream, error) {
	want, err := decodeHerald(input)
	if err != nil {
		return sseStream{}, err
	}
	if got, err := decodeOpenAI(input); err != nil || got != want {
		return sseStream{}, fmt.Errorf("%s: openai-go decoded %+v (%v), Herald %+v", name, got, err, want)
	}
	st := sseStream{Name: name, Bytes: len(input), Events: want.Events}
	var h, o []sseFigures
	for range rounds {
		f, err := timeDecoder(input, want, round, decodeHerald)
		if err != nil {
			return st, err
		}
		h = append(h, f)
		if f, err = timeDecoder(input, want, round, decodeOpenAI); err != nil {
			return st, err
		}
		o = append(o, f)
	}
	st.Herald, st.OpenAI = medianFigures(h), medianFigures(o)
	return st, nil
}

// timeDecoder decodes input over and over for about d of CPU time, checking
// each time that it gives want.
func timeDecoder(input []byte, want sseDigest, d time.Duration, decode func([]byte) (sseDigest, error)) (sseFigures, error) {
	if _, err := decode(input); err != nil { // warm up
		return sseFigures{}, err
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU()
	iters := 0
	var spent time.Duration
	for spent < d {
		for range 8 {
			got, err := decode(input)
			if err != nil {
				return sseFigures{}, err
			}
			if got != want {
				return sseFigures{}, fmt.Errorf("decoded %+v, want %+v", got, want)
			}
			iters++
		}
		spent = processCPU() - cpu0
	}
	runtime.ReadMemStats(&after)
	total := float64(want.Events * iters)
	return sseFigures{
		EventsPerSec:   total / spent.Seconds(),
		MBPerSec:       float64(len(input)*iters) / spent.Seconds() / 1e6,
		AllocsPerEvent: float64(after.Mallocs-before.Mallocs) / total,
		BytesPerEvent:  float64(after.TotalAlloc-before.TotalAlloc) / total,
	}, nil
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianFigures(fs []sseFigures) sseFigures {
	slices.SortFunc(fs, func(a, b sseFigures) int {
		switch {
		case a.EventsPerSec < b.EventsPerSec:
			return -1
		case a.EventsPerSec > b.EventsPerSec:
			return 1
		}
		return 0
	})
	return fs[len(fs)/2]
}
