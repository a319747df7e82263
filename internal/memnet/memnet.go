// Package memnet is a network in memory, for tests that run in a
// testing/synctest bubble. There time is fake and moves on only when every
// goroutine of the test waits, and a goroutine waiting on a real socket
// does not count as waiting; so the servers such a test talks to listen
// here instead, and each connection is a pair of net.Pipe ends.
package memnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Network holds listeners by address. The zero value is ready to use.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*Listener
}

// Listen returns a listener at a new address of the network.
func (n *Network) Listen() *Listener {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners == nil {
		n.listeners = map[string]*Listener{}
	}
	l := &Listener{
		addr:  addr(fmt.Sprintf("host%d.memnet:80", len(n.listeners)+1)),
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
	}
	n.listeners[string(l.addr)] = l
	return l
}

// Dial connects to the listener at address, as net.Dialer.DialContext does.
func (n *Network) Dial(ctx context.Context, _, address string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[address]
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "memnet", Err: fmt.Errorf("no listener at %s", address)}
	}
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: "memnet", Err: net.ErrClosed}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Client is an HTTP client whose connections are made on the network.
func (n *Network) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.Dial}}
}

// Serve serves h on a new listener of the network until the test ends,
// and returns its base URL.
func (n *Network) Serve(t testing.TB, h http.Handler) string {
	l := n.Listen()
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return "http://" + l.Addr().String()
}

// Listener is one listening address of a Network.
type Listener struct {
	addr  addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the listener; dials to it fail from then on.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

// addr is an address of the network.
type addr string

func (addr) Network() string  { return "memnet" }
func (a addr) String() string { return string(a) }
