// Package httpservetest talks HTTP/1.1 over raw connections, for tests of
// what a listener does with connections: whether it keeps them, closes
// them, or answers them over its caps.
package httpservetest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// HangGuard bounds every wait on a Conn, so that a connection the server
// fails to close fails the test instead of hanging it.
const HangGuard = 5 * time.Second

// Conn is one raw connection to a server.
type Conn struct {
	net.Conn
	t    testing.TB
	addr string
	rd   *bufio.Reader
}

// Dial connects to addr from the loopback address from (the system's
// choice when empty; another loopback address is another client). The
// connection is closed when the test ends.
func Dial(t testing.TB, addr, from string) *Conn {
	t.Helper()
	d := net.Dialer{Timeout: HangGuard}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(HangGuard)); err != nil {
		t.Fatal(err)
	}
	return &Conn{Conn: conn, t: t, addr: addr, rd: bufio.NewReader(conn)}
}

// Start sends GET path, keeping the connection alive, and returns the
// response with its body unread (an event stream's does not end).
func (c *Conn) Start(path string) *http.Response {
	c.t.Helper()
	return c.Send("GET " + path + " HTTP/1.1\r\nHost: " + c.addr + "\r\n\r\n")
}

// Send sends request, the raw text of a request, and returns the response
// with its body unread.
func (c *Conn) Send(request string) *http.Response {
	c.t.Helper()
	line, _, _ := strings.Cut(request, "\r\n")
	if _, err := io.WriteString(c, request); err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	resp, err := http.ReadResponse(c.rd, nil)
	if err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	return resp
}

// Get sends GET path, keeping the connection alive, and returns the
// response with its body read.
func (c *Conn) Get(path string) (*http.Response, string) {
	c.t.Helper()
	resp := c.Start(path)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp, string(body)
}

// Closed checks that the server closes the connection without sending
// anything more: a read ends with EOF (or a reset), not at the hang guard.
func (c *Conn) Closed() {
	c.t.Helper()
	_, err := c.rd.ReadByte()
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		c.t.Fatalf("the connection is still open after %s", HangGuard)
	}
	if err == nil {
		c.t.Fatal("the server sent more after its answer")
	}
}
