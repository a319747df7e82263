package slacktest

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// Socket Mode (docs.slack.dev/apis/events-api/using-socket-mode): the app
// gets a single-use URL from apps.connections.open and opens a websocket
// on it; Slack says hello, pings, sends events in envelopes that the app
// acknowledges by envelope_id, delivers again what is not acknowledged in
// time, and asks the app to reconnect with a disconnect message before it
// closes a connection. Each connection has a goroutine that always reads
// (the handler's) and one that writes what is queued for it and pings, so
// that nothing that delivers an event waits for the client.

// maxClientMessage bounds what a client may send: acknowledgements are
// small.
const maxClientMessage = 1 << 20

// approxConnectionTime is hello's debug_info.approximate_connection_time,
// the seconds Slack means to keep a connection, as in the hello example of
// docs.slack.dev/apis/events-api/using-socket-mode.
const approxConnectionTime = 18060

// socketState is Socket Mode's part of the server, under s.mu.
type socketState struct {
	tickets   map[string]bool
	conns     []*smConn // open, oldest first
	opened    int
	queue     []delivery // waiting for a connection
	envelopes []*envelope
	byID      map[string]*envelope
	acks      []Ack
}

func (st *socketState) init() {
	st.tickets = map[string]bool{}
	st.byID = map[string]*envelope{}
}

// stopTimers stops every acknowledgement timer.
func (st *socketState) stopTimers() {
	for _, e := range st.envelopes {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
}

// delivery is an event to send, and the how-many-th time.
type delivery struct {
	ev     *sockEvent
	retry  int
	reason string
}

// envelope is one delivery as sent.
type envelope struct {
	Envelope
	ev    *sockEvent
	conn  *smConn
	timer *time.Timer
	done  bool // acknowledged, or given up on
}

// frame is a message queued for a connection; disconnect starts the
// grace after which the server closes it.
type frame struct {
	data       []byte
	disconnect bool
}

// smConn is one Socket Mode connection.
type smConn struct {
	n    int
	ws   *websocket.Conn
	done chan struct{} // closed when the reader ends
	out  *platformtest.Outbox[frame]

	// Under s.mu.
	disconnecting bool
	ended         bool
}

// send queues a frame.
func (c *smConn) send(f frame) { c.out.Push(f) }

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic("slacktest: " + err.Error())
	}
	return data
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveLink serves one Socket Mode connection until it ends.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	if !s.sock.tickets[ticket] {
		s.mu.Unlock()
		// Slack documents nothing for a used or unknown ticket; the
		// fake refuses the upgrade.
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	delete(s.sock.tickets, ticket)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(maxClientMessage)
	c := &smConn{ws: ws, done: make(chan struct{}), out: platformtest.NewOutbox[frame]()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.sock.opened++
	c.n = s.sock.opened
	s.sock.conns = append(s.sock.conns, c)
	if len(s.sock.conns) > maxConnections {
		c.disconnecting = true
		c.send(frame{data: s.disconnectMessage("too_many_websockets"), disconnect: true})
	} else {
		c.send(frame{data: mustJSON(obj{"type": "hello", "num_connections": len(s.sock.conns),
			"debug_info":      obj{"host": s.linkHost(), "build_number": 1, "approximate_connection_time": approxConnectionTime},
			"connection_info": obj{"app_id": s.AppID}})})
		queue := s.sock.queue
		s.sock.queue = nil
		for _, d := range queue {
			s.sendLocked(d)
		}
	}
	s.changes.Changed()
	s.mu.Unlock()

	writer := make(chan struct{})
	go func() {
		defer close(writer)
		s.writeLoop(c)
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		s.handleClientMessage(c, data)
	}
	s.mu.Lock()
	s.connEndedLocked(c)
	s.mu.Unlock()
	close(c.done)
	ws.Close()
	<-writer
}

// linkHost is debug_info.host: the name of the Slack server of the
// connection.
func (s *Server) linkHost() string { return "applink-slacktest-1" }

// disconnectMessage is a disconnect message of a reason
// (docs.slack.dev/apis/events-api/using-socket-mode, on disconnect events).
func (s *Server) disconnectMessage(reason string) []byte {
	return mustJSON(obj{"type": "disconnect", "reason": reason, "debug_info": obj{"host": s.linkHost()}})
}

// writeLoop writes what is queued for a connection and pings it until it
// ends; after a disconnect message it closes the connection once the
// grace is over, if the client has not.
func (s *Server) writeLoop(c *smConn) {
	ping := time.NewTicker(s.opts.PingInterval)
	defer ping.Stop()
	var grace *time.Timer
	var graceC <-chan time.Time
	defer func() {
		if grace != nil {
			grace.Stop()
		}
	}()
	for {
		q := c.out.Take()
		for _, f := range q {
			if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				c.ws.Close()
				return
			}
			if f.disconnect && grace == nil {
				grace = time.NewTimer(s.opts.DisconnectGrace)
				graceC = grace.C
			}
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-c.out.Wake():
		case <-ping.C:
			// A control frame: slack-go's client drops a connection
			// that Slack has not pinged for 30 s.
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("slacktest"), time.Now().Add(s.opts.PingInterval)); err != nil {
				c.ws.Close()
				return
			}
		case <-graceC:
			c.ws.Close()
			return
		case <-c.done:
			return
		case <-s.quit:
			c.ws.Close()
			return
		}
	}
}

// handleClientMessage acts on one message from the client: an
// acknowledgement, {"envelope_id": …, "payload": …}; anything else is
// ignored.
func (s *Server) handleClientMessage(c *smConn, data []byte) {
	var m struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(data, &m) != nil || m.EnvelopeID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	e := s.sock.byID[m.EnvelopeID]
	late := e == nil || e.done
	if !late {
		e.done = true
		e.AckedAt = now
		e.timer.Stop()
	}
	s.sock.acks = append(s.sock.acks, Ack{EnvelopeID: m.EnvelopeID, At: now, Payload: m.Payload, Late: late})
	s.changes.Changed()
}

// connEndedLocked forgets a connection and delivers again, on another
// connection or the next one, what was outstanding on it.
func (s *Server) connEndedLocked(c *smConn) {
	if c.ended {
		return
	}
	c.ended = true
	s.sock.conns = slices.DeleteFunc(s.sock.conns, func(x *smConn) bool { return x == c })
	for _, e := range s.sock.envelopes {
		if e.conn == c && !e.done {
			e.done = true
			e.timer.Stop()
			s.retryLocked(e)
		}
	}
	s.changes.Changed()
}

// targetLocked is the connection new envelopes go to: the most recent one
// that is not being disconnected.
func (s *Server) targetLocked() *smConn {
	for i := len(s.sock.conns) - 1; i >= 0; i-- {
		if c := s.sock.conns[i]; !c.disconnecting && !c.ended {
			return c
		}
	}
	return nil
}

// deliverLocked sends an event for the first time, or queues it until a
// connection opens.
func (s *Server) deliverLocked(ev *sockEvent) {
	s.sendLocked(delivery{ev: ev})
}

// sendLocked sends an envelope of an event on the target connection and
// starts its acknowledgement timer; with no connection, it waits.
func (s *Server) sendLocked(d delivery) {
	c := s.targetLocked()
	if c == nil || s.closed {
		s.sock.queue = append(s.sock.queue, d)
		return
	}
	now := time.Now()
	e := &envelope{Envelope: Envelope{ID: newUUID(), EventID: d.ev.eventID, Type: d.ev.typ, Retry: d.retry,
		RetryReason: d.reason, Conn: c.n, SentAt: now}, ev: d.ev, conn: c}
	s.sock.envelopes = append(s.sock.envelopes, e)
	s.sock.byID[e.ID] = e
	c.send(frame{data: mustJSON(obj{"envelope_id": e.ID, "type": d.ev.typ, "accepts_response_payload": false,
		"retry_attempt": d.retry, "retry_reason": d.reason, "payload": d.ev.payload})})
	e.timer = time.AfterFunc(s.opts.AckTimeout, func() { s.ackTimedOut(e) })
}

// ackTimedOut gives up on an envelope not acknowledged in time.
func (s *Server) ackTimedOut(e *envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || e.done {
		return
	}
	e.done = true
	s.retryLocked(e)
	s.changes.Changed()
}

// retryLocked delivers an event again after the envelope e failed, unless
// it was the last retry.
func (s *Server) retryLocked(e *envelope) {
	if e.Retry >= maxRetries {
		return
	}
	s.sendLocked(delivery{ev: e.ev, retry: e.Retry + 1, reason: "timeout"})
}

// ---- faults ----

// Disconnect sends a disconnect message with this reason ("warning",
// "refresh_requested", "link_disabled", ...) on every open connection: the
// client should open a new one. New envelopes wait for it; the server
// closes the old ones DisconnectGrace later if the client has not.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sock.conns {
		if !c.disconnecting {
			c.disconnecting = true
			c.send(frame{data: s.disconnectMessage(reason), disconnect: true})
		}
	}
	s.changes.Changed()
}

// DropConnections closes every connection without a close frame, as a
// network failure would. What was outstanding on them is delivered again on
// the next connection.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range slices.Clone(s.sock.conns) {
		s.connEndedLocked(c)
		c.ws.NetConn().Close()
	}
}

// ---- what tests read ----

// Connections is how many Socket Mode connections were opened in all.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sock.opened
}

// OpenConnections is how many Socket Mode connections are open now.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sock.conns)
}

// Envelopes returns every envelope sent, in order.
func (s *Server) Envelopes() []Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Envelope, 0, len(s.sock.envelopes))
	for _, e := range s.sock.envelopes {
		out = append(out, e.Envelope)
	}
	return out
}

// Acks returns every acknowledgement received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sock.acks)
}

// Pending is how many event deliveries wait for a connection.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sock.queue)
}
