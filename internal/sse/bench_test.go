package sse

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3/packages/ssestream"
)

// benchStream builds a realistic chat completion stream: many small content
// chunks, a few tool progress events and keepalives, and the [DONE] marker.
// It returns the stream and how many events it holds.
func benchStream(chunks int) ([]byte, int) {
	var b bytes.Buffer
	events := 0
	for i := range chunks {
		b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"hermes-agent","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}` + "\n\n")
		events++
		if i%100 == 50 {
			fmt.Fprintf(&b, "event: hermes.tool.progress\ndata: {\"tool\":\"web_search\",\"status\":\"running\",\"step\":%d}\n\n", i)
			events++
		}
		if i%250 == 100 {
			b.WriteString(": keepalive\n\n")
		}
	}
	b.WriteString("data: [DONE]\n\n")
	events++
	return b.Bytes(), events
}

func BenchmarkDecode(b *testing.B) {
	input, want := benchStream(1000)

	// "herald" reads as the gateway reads the agent's stream: each event's
	// data is a view of the reader's buffer.
	b.Run("herald", func(b *testing.B) {
		b.SetBytes(int64(len(input)))
		b.ReportAllocs()
		for b.Loop() {
			rd := NewReader(bytes.NewReader(input))
			n := 0
			for {
				_, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != want {
				b.Fatalf("decoded %d events, want %d", n, want)
			}
		}
		b.ReportMetric(float64(want*b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("openai-go", func(b *testing.B) {
		b.SetBytes(int64(len(input)))
		b.ReportAllocs()
		for b.Loop() {
			res := &http.Response{
				Header: http.Header{"Content-Type": {"text/event-stream"}},
				Body:   io.NopCloser(bytes.NewReader(input)),
			}
			dec := ssestream.NewDecoder(res)
			n := 0
			for dec.Next() {
				n++
			}
			if err := dec.Err(); err != nil {
				b.Fatal(err)
			}
			if n != want {
				b.Fatalf("decoded %d events, want %d", n, want)
			}
		}
		b.ReportMetric(float64(want*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
