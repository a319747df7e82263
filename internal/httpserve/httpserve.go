// Package httpserve serves Herald's HTTP listener and the simulator's with
// bounds a client cannot get around, so that nobody who can reach the port
// can hold it open or starve it of file descriptors.
//
// Timeouts: a request (headers and body) must arrive within ReadTimeout,
// its headers within at most headerTimeout; a response must be written
// within WriteTimeout; a kept-alive connection waiting for its next request
// is closed after IdleTimeout. Once a request is read, net/http lifts its
// read deadline; a long-lived response (the web chat's event stream) sets
// its own write deadline before each write with http.ResponseController.
//
// Connections are counted per client (see Client) and in total, in three
// tiers:
//
//   - Within MaxConnections and MaxConnectionsPerClient, a connection is
//     served as usual.
//   - Beyond a cap, a connection takes a spare place: a quarter of each cap
//     again, at least one. Its first request is read within spareLife and
//     answered 503 with Retry-After and Connection: close, unless it asks
//     for one of Limits.Probes (/healthz, /readyz), which is served, then
//     the connection closes. So a health check gets through while clients
//     hold every regular place, and a client over its cap learns why
//     instead of hanging.
//   - Beyond the spare places too, a connection is closed as soon as it is
//     accepted, without an answer.
//
// The listener thus holds at most MaxConnections plus a quarter of it
// (1024 + 256 with Herald's defaults), and one client at most
// MaxConnectionsPerClient plus a quarter of it. Behind a reverse proxy
// every client has the proxy's address: raise the per-client cap there.
// A request's line and headers are bounded too (maxHeaderBytes; 431
// beyond), so that no connection holds more than a few tens of kilobytes
// of them.
//
// Open files: each connection is a file descriptor. With a Logger, Serve
// warns when the caps, with the files the process needs besides, exceed
// the soft RLIMIT_NOFILE as it is then (Go, since 1.19, raises it to the
// hard limit at start on Unix). Should the descriptors run out anyway,
// Accept fails with EMFILE or ENFILE; the listener passes that error to
// http.Server unchanged, which sees it as temporary (a *net.OpError whose
// errno is EMFILE or ENFILE), logs it, and retries after a pause that
// doubles up to a second, instead of ending Serve.
package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Limits bound what clients may hold of a listener; zero fields leave
// that bound off.
type Limits struct {
	MaxConnections, MaxConnectionsPerClient int
	ReadTimeout, WriteTimeout, IdleTimeout  time.Duration
	// Probes are paths answered even on a connection over the caps (health
	// and readiness checks), so that the process is seen alive under load.
	Probes []string
	// Logger is told, at most once a minute, how many connections the caps
	// refused; nil says nothing.
	Logger *slog.Logger
}

const (
	// shutdownGrace is how long the listener may take to close.
	shutdownGrace = 10 * time.Second
	// headerTimeout bounds a request's headers (our choice): a few hundred
	// bytes, which even a slow mobile link sends in well under a second.
	headerTimeout = 10 * time.Second
	// maxHeaderBytes bounds a request's line and headers: 32 KiB, as much
	// as nginx reads by default (large_client_header_buffers 4 8k, in
	// nginx's ngx_http_core_module documentation). Go's default of 1 MiB
	// would let 1024 + 256 connections hold 1.3 GB of headers; this bound,
	// with the 4 KiB net/http reads past it, 47 MB. Beyond it, net/http
	// answers 431.
	maxHeaderBytes = 32 << 10
	// spareLife is how long a connection over the caps may live (our
	// choice): a client or health check sends its request at once, and
	// one that sends nothing frees its spare place soon.
	spareLife = 2 * time.Second
	// retryAfter is the Retry-After of a 503 over the caps, in seconds (our
	// choice): connections come free as requests end and idle ones time out.
	retryAfter = "5"
	// refusalReport is how often refused connections are logged at most
	// (our choice): a flood of them must not flood the log too.
	refusalReport = time.Minute
)

// Serve runs h on ln within limits until ctx ends, then closes it
// gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, limits Limits) error {
	srv := &http.Server{
		Handler:           admit(h, limits.Probes),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       connContext,
	}
	if limits.ReadTimeout > 0 {
		srv.ReadHeaderTimeout = min(headerTimeout, limits.ReadTimeout)
	}
	if limits.Logger != nil {
		// net/http's own complaints (accept errors it retries, handlers
		// that misbehave) go to the same log as the rest.
		srv.ErrorLog = slog.NewLogLogger(limits.Logger.Handler(), slog.LevelWarn)
	}
	if limits.Logger != nil {
		if limit, known := openFileLimit(); known {
			warnOpenFiles(limits.Logger, limits.MaxConnections, limit)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newListener(ln, limits)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listener sorts accepted connections into the tiers of the package doc.
type listener struct {
	net.Listener
	regular, spare *Slots
	log            *slog.Logger

	mu         sync.Mutex
	refused    int       // connections over the caps since the last report
	nextReport time.Time // no report before this
}

func newListener(ln net.Listener, l Limits) *listener {
	return &listener{
		Listener: ln,
		regular:  NewSlots(l.MaxConnections, l.MaxConnectionsPerClient),
		spare:    NewSlots(quarter(l.MaxConnections), quarter(l.MaxConnectionsPerClient)),
		log:      l.Logger,
	}
}

// refuse counts a connection over the caps and, at most once per
// refusalReport, tells the operator how many there were and which cap.
func (l *listener) refuse(why error) {
	if l.log == nil {
		return
	}
	l.mu.Lock()
	l.refused++
	now := time.Now()
	if now.Before(l.nextReport) {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.nextReport = 0, now.Add(refusalReport)
	l.mu.Unlock()
	setting := "http.max_connections (HERALD_HTTP_MAX_CONNECTIONS)"
	if errors.Is(why, ErrClientFull) {
		setting = "http.max_connections_per_client (HERALD_HTTP_MAX_CONNECTIONS_PER_CLIENT)"
	}
	l.log.Warn("HTTP connections refused over the caps", "refused", n, "cap", setting, "next_report_in", refusalReport)
}

// quarter is the spare room beside a cap: a quarter of it, at least one;
// no cap has no spare room (nothing goes past it).
func quarter(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit/4, 1)
}

// Accept returns the next connection within the caps or the spare room,
// closing those beyond both.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := Client(c.RemoteAddr().String())
		full := l.regular.Take(client)
		if full == nil {
			return &conn{Conn: c, release: func() { l.regular.Give(client) }}, nil
		}
		l.refuse(full)
		if l.spare.Take(client) == nil {
			over := &conn{Conn: c, end: time.Now().Add(spareLife), release: func() { l.spare.Give(client) }}
			over.refusal = "too many connections in total: try again later"
			if errors.Is(full, ErrClientFull) {
				over.refusal = "too many connections from your address: try again later"
			}
			_ = c.SetDeadline(over.end) // fails only once closed, and then the server drops it
			return over, nil
		}
		c.Close()
	}
}

// conn is an accepted connection that gives its place back when closed.
// One over the caps (refusal set) keeps its deadlines before end whatever
// the server asks.
type conn struct {
	net.Conn
	refusal string // the 503's text
	end     time.Time
	release func()
	once    sync.Once
}

func (c *conn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func (c *conn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.bound(t)) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.bound(t)) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

// bound keeps a deadline of a connection over the caps before its end (a
// zero deadline means none).
func (c *conn) bound(t time.Time) time.Time {
	if c.refusal != "" && (t.IsZero() || t.After(c.end)) {
		return c.end
	}
	return t
}

// CloseWrite lets net/http half-close the connection before closing it, so
// that a client still sending does not lose the answer to a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// refusalKey keys, in a request's context, the refusal of a connection
// over the caps.
type refusalKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*conn); ok && lc.refusal != "" {
		return context.WithValue(ctx, refusalKey{}, lc.refusal)
	}
	return ctx
}

// admit answers a request on a connection over the caps with 503, or
// serves it if it asks for a probe; either way the connection then closes.
func admit(h http.Handler, probes []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusal, _ := r.Context().Value(refusalKey{}).(string)
		if refusal == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if slices.Contains(probes, r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Retry-After", retryAfter)
		http.Error(w, refusal, http.StatusServiceUnavailable)
	})
}
