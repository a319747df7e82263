package ops

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// With a URL, the spans go there by OTLP over HTTP once the provider is
// shut down at exit, named as Herald's; without one, nothing is recorded.
func TestTracingExportsAtShutdown(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var body []byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		body = append(body, data...)
		mu.Unlock()
	}))
	defer collector.Close()

	ctx := context.Background()
	tp, shutdown, err := Tracing(ctx, collector.URL+"/v1/traces", "1.2.3", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(ctx, "a-turn")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "POST /v1/traces application/x-protobuf" {
		t.Errorf("the collector got %q, want one OTLP/HTTP export", got)
	}
	for _, want := range []string{"a-turn", "herald", "1.2.3"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the export lacks %q", want)
		}
	}

	off, shutdown, err := Tracing(ctx, "", "1.2.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, span := off.Tracer("test").Start(ctx, "a-turn"); span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("without a URL a span is recorded")
	}
	if err := shutdown(ctx); err != nil {
		t.Error(err)
	}
}
