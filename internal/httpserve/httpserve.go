// Package httpserve serves Herald's HTTP listener and the simulator's with
// bounds a client cannot get around: request timeouts, idle keep-alive
// connections closed, and caps on connections, in total and per client.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Limits bound what clients may hold of a listener; zero fields leave
// that bound off.
type Limits struct {
	MaxConnections, MaxConnectionsPerClient int
	ReadTimeout, WriteTimeout, IdleTimeout  time.Duration
}

// shutdownGrace is how long the listener may take to close.
const shutdownGrace = 10 * time.Second

// Serve runs h on ln within limits until ctx ends, then closes it
// gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, limits Limits) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
