package hermes

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/sse"
)

func deltas(events []agent.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind == agent.EventDelta {
			out = append(out, e.Text)
		}
	}
	return out
}

func turn() agent.Turn { return agent.Turn{SessionID: "s", Message: "hi", Source: source()} }

func TestUTF8SplitAcrossWritesArrivesIntact(t *testing.T) {
	line := "data: {\"choices\":[{\"delta\":{\"content\":\"héllo 😀 wörld\"}}]}\n\ndata: [DONE]\n\n"
	cut := strings.Index(line, "😀") + 2 // in the middle of the emoji's four bytes
	srv, _ := upstream(t, 200, nil, line[:cut], line[cut:])
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if res.FinalResponse != "héllo 😀 wörld" {
		t.Errorf("final = %q", res.FinalResponse)
	}
}

func TestLineEndingsAndFieldForms(t *testing.T) {
	stream := "data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n" + // CRLF, no space
		"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\r\r" + // bare CR
		"data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"c\"}}]}\n\n" + // JSON across two data lines
		": keepalive\n\n" +
		"data: [DONE]\n\n"
	srv, _ := upstream(t, 200, nil, stream)
	res, events := run(t, newBackend(srv.URL, ""), turn())
	if res.FinalResponse != "abc" || res.Err != nil {
		t.Errorf("final = %q, err = %v; want abc", res.FinalResponse, res.Err)
	}
	if got := deltas(events); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("deltas = %q", got)
	}
}

func TestToolProgressIsEmitted(t *testing.T) {
	stream := "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n" +
		"event: hermes.tool.progress\n" +
		"data: {\"tool\":\"web_search\",\"emoji\":\"🔍\",\"label\":\"searching the web\",\"toolCallId\":\"call_1\",\"status\":\"running\"}\n\n" +
		"event: hermes.tool.progress\ndata: {\"tool\":\"_internal\",\"status\":\"running\"}\n\n" +
		": keepalive\n\n" +
		"event: hermes.tool.progress\ndata: {\"tool\":\"web_search\",\"toolCallId\":\"call_1\",\"status\":\"completed\"}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Found it.\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n" +
		"data: [DONE]\n\n"
	srv, _ := upstream(t, 200, nil, stream)
	res, events := run(t, newBackend(srv.URL, ""), turn())

	var kinds []agent.EventKind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	want := []agent.EventKind{agent.EventTool, agent.EventTool, agent.EventDelta}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("event kinds = %v, want %v (the _internal tool must not show)", kinds, want)
	}
	first := events[0].Tool
	if first.Tool != "web_search" || first.Emoji != "🔍" || first.Label != "searching the web" || first.Status != "running" || first.ToolCallID != "call_1" {
		t.Errorf("tool progress = %+v", first)
	}
	if events[1].Tool.Status != "completed" {
		t.Errorf("second tool event = %+v", events[1].Tool)
	}
	if res.FinalResponse != "Found it." || res.Err != nil {
		t.Errorf("final = %q, err = %v", res.FinalResponse, res.Err)
	}
}

// [DONE] must end the turn even when the server keeps the connection open.
func TestDoneEndsTheTurnOnAHeldOpenConnection(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(okStream))
		w.(http.Flusher).Flush()
		select { // hold the connection open until the test ends or the client leaves
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	done := make(chan agent.Result, 1)
	go func() { done <- newBackend(srv.URL, "").Run(context.Background(), turn(), func(agent.Event) {}) }()
	select {
	case res := <-done:
		if res.FinalResponse != "ok" || res.Err != nil {
			t.Errorf("final = %q, err = %v", res.FinalResponse, res.Err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("the turn did not end after [DONE]")
	}
}

func TestLineOver16MiBFailsClearly(t *testing.T) {
	huge := "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("a", 17<<20) + "\"}}]}\n\n"
	srv, _ := upstream(t, 200, nil, "data: {\"choices\":[{\"delta\":{\"content\":\"start \"}}]}\n\n", huge)
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if !errors.Is(res.Err, sse.ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", res.Err)
	}
	if !strings.HasPrefix(res.FinalResponse, "start \n\n⚠️") || res.Err == nil {
		t.Errorf("final = %.80q, want the partial text and a notice", res.FinalResponse)
	}
}

func TestMalformedJSONIsSkipped(t *testing.T) {
	srv, _ := upstream(t, 200, nil,
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
		"data: {not json\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if res.FinalResponse != "ab" || res.Err != nil {
		t.Errorf("final = %q, err = %v; want ab", res.FinalResponse, res.Err)
	}
}

func TestFinishReasonErrorIsSurfacedAfterPartialText(t *testing.T) {
	srv, _ := upstream(t, 200, nil,
		"data: {\"choices\":[{\"delta\":{\"content\":\"Working on\"}}]}\n\n"+
			"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"error\"}]}\n\ndata: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if !errors.Is(res.Err, agent.ErrAgentFailed) {
		t.Fatalf("err = %v, want ErrAgentFailed", res.Err)
	}
	if res.FinalResponse != "Working on\n\n⚠️ The agent reported an error." || !errors.Is(res.Err, agent.ErrAgentFailed) {
		t.Errorf("final = %q, err = %v", res.FinalResponse, res.Err)
	}
}

func TestStreamCutBeforeTheEndIsAnError(t *testing.T) {
	srv, _ := upstream(t, 200, nil, "data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if !errors.Is(res.Err, agent.ErrIncomplete) {
		t.Fatalf("err = %v, want ErrIncomplete", res.Err)
	}
	if !strings.HasPrefix(res.FinalResponse, "half\n\n⚠️ The answer was interrupted") {
		t.Errorf("final = %q", res.FinalResponse)
	}
}

func TestEmptyAnswerSaysNoResponse(t *testing.T) {
	srv, _ := upstream(t, 200, nil, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	res, _ := run(t, newBackend(srv.URL, ""), turn())
	if res.FinalResponse != "(No response from remote agent)" || res.Text != "" {
		t.Errorf("final = %q, text = %q", res.FinalResponse, res.Text)
	}
}

// Cancelling the turn must close the connection, so that the API server
// interrupts the agent.
func TestCancellationClosesTheConnection(t *testing.T) {
	clientLeft := make(chan struct{})
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"thinking\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the server notices the client leaving
		close(clientLeft)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan agent.Result, 1)
	go func() {
		done <- newBackend(srv.URL, "").Run(ctx, turn(), func(e agent.Event) {
			if e.Kind == agent.EventDelta {
				cancel()
			}
		})
	}()
	res := <-done
	<-clientLeft
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", res.Err)
	}
	if res.FinalResponse != "thinking\n\n⏹ Stopped." {
		t.Errorf("final = %q", res.FinalResponse)
	}
}

func TestIdleTimeoutIsResetByKeepalives(t *testing.T) {
	keepalives := make(chan struct{})
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		// Keepalives well inside the idle timeout keep the turn alive for
		// longer than the timeout itself.
		for range 10 {
			_, _ = w.Write([]byte(": keepalive\n\n"))
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
		close(keepalives)
		_, _ = w.Write([]byte(okStream))
	}))
	defer srv.Close()
	b := New(Config{URL: srv.URL, ConnectTimeout: time.Second, IdleTimeout: 500 * time.Millisecond})
	res := b.Run(context.Background(), turn(), func(agent.Event) {})
	<-keepalives
	if res.Err != nil || res.FinalResponse != "ok" {
		t.Errorf("final = %q, err = %v; keepalives must reset the idle timer", res.FinalResponse, res.Err)
	}
}

func TestIdleTimeoutFailsASilentServer(t *testing.T) {
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"so far\"}}]}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	b := New(Config{URL: srv.URL, ConnectTimeout: time.Second, IdleTimeout: 100 * time.Millisecond})
	res := b.Run(context.Background(), turn(), func(agent.Event) {})
	if !errors.Is(res.Err, agent.ErrIdleTimeout) {
		t.Fatalf("err = %v, want ErrIdleTimeout", res.Err)
	}
	if !strings.HasPrefix(res.FinalResponse, "so far\n\n⚠️") {
		t.Errorf("final = %q", res.FinalResponse)
	}
}

// fullListener returns the address of a socket whose accept queue is full,
// so that a new connection attempt gets no answer until it times out.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue; nobody accepts.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // the queue is full: connects now hang
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("this kernel accepts connections beyond the listen backlog; cannot make a connect hang on loopback")
	return ""
}

func TestConnectTimeout(t *testing.T) {
	addr := fullListener(t)
	b := New(Config{URL: "http://" + addr, ConnectTimeout: 300 * time.Millisecond, IdleTimeout: time.Hour})
	res := b.Run(context.Background(), turn(), func(agent.Event) {})
	var conn *agent.ConnectionError
	if !errors.As(res.Err, &conn) {
		t.Fatalf("err = %v, want a connection error", res.Err)
	}
	var nerr net.Error
	if !errors.As(res.Err, &nerr) || !nerr.Timeout() {
		t.Errorf("err = %v, want a timeout", res.Err)
	}
	if !strings.HasPrefix(res.FinalResponse, "⚠️ Proxy connection error: ") {
		t.Errorf("final = %q", res.FinalResponse)
	}
}
