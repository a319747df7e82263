//go:build unix

package httpserve

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/httpserve/httpservetest"
	"github.com/herald-chat/herald/internal/syncbuf"
)

// Serve reads the process's real open-file limit and warns when the cap
// exceeds it.
func TestServeWarnsAboveTheOpenFileLimit(t *testing.T) {
	limit, known := openFileLimit()
	if !known || limit > 1<<40 {
		t.Skipf("open-file limit %d (known %v): no cap can exceed it", limit, known)
	}
	var logs syncbuf.Buffer
	addr, _ := serve(t, Limits{MaxConnections: int(limit), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	httpservetest.Dial(t, addr, "").Get("/") // Serve warns before it serves
	if got := logs.String(); !strings.Contains(got, "open-file limit") || !strings.Contains(got, "HERALD_HTTP_MAX_CONNECTIONS") {
		t.Errorf("log:\n%s\nwant a warning about the open-file limit naming HERALD_HTTP_MAX_CONNECTIONS", got)
	}
}

// outOfFiles is a listener whose first Accept fails as accept4 does when
// the process has no file descriptor left.
type outOfFiles struct {
	net.Listener
	once sync.Once
}

func (l *outOfFiles) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() {
		err = &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	})
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// Running out of file descriptors does not end Serve: the error passes
// through the caps' listener still temporary, and net/http tries again.
func TestServeOutlivesTooManyOpenFiles(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("page")) })
	serveOn(t, &outOfFiles{Listener: ln}, mux, Limits{MaxConnections: 4, ReadTimeout: time.Minute})
	if resp, body := httpservetest.Dial(t, ln.Addr().String(), "").Get("/"); resp.StatusCode != http.StatusOK || body != "page" {
		t.Errorf("after EMFILE: %s %q, want 200 page", resp.Status, body)
	}
}
