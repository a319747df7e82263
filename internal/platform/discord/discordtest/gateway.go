package discordtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// The gateway (discord.com/developers/docs/events/gateway): a websocket on
// which the server says HELLO, the client identifies or resumes, both
// heartbeat, and the server dispatches events numbered per session. Each
// connection has a goroutine that always reads (the handler's) and one
// that writes what is queued for it, so that nothing that dispatches an
// event ever waits for the client.

// maxPayload is the largest payload a client may send: "must not exceed
// 4096 bytes" (discord.com/developers/docs/events/gateway#sending-events).
const maxPayload = 4096

// maxReplay is how many dispatches a session keeps for a RESUME. Discord
// does not document its buffer; this one is generous.
const maxReplay = 1000

// closeGrace is how long after sending a close frame the server waits for
// the client to close before closing the connection itself.
const closeGrace = 5 * time.Second

// knownIntents are the intent bits Discord defines (docs: events/gateway,
// "List of Intents", up to DIRECT_MESSAGE_POLLS 1 << 25).
const knownIntents = 1<<26 - 1

// The close codes the server uses (discord.com/developers/docs/topics/
// opcodes-and-status-codes#gateway-gateway-close-event-codes), with the
// reasons Discord sends.
const (
	closeUnknownOpcode        = 4001
	closeDecodeError          = 4002
	closeNotAuthenticated     = 4003
	closeAuthenticationFailed = 4004
	closeAlreadyAuthenticated = 4005
	closeInvalidSeq           = 4007
	closeInvalidAPIVersion    = 4012
	closeInvalidIntents       = 4013
	closeDisallowedIntents    = 4014
)

// gatewayState is the gateway's part of the server, under s.mu.
type gatewayState struct {
	conns       map[*gwConn]bool
	sessions    map[string]*session
	current     *session // the session identified or resumed last
	connections int
	identifies  int
	resumes     int
	heartbeats  int
	intents     int
	version     string
	closeNext   *frame
}

func (g *gatewayState) init() {
	g.conns = map[*gwConn]bool{}
	g.sessions = map[string]*session{}
}

func (g *gatewayState) allConns() []*gwConn {
	var out []*gwConn
	for c := range g.conns {
		out = append(out, c)
	}
	return out
}

// session is a gateway session: its numbered dispatches, kept for a
// RESUME, and the connection that holds it, if any.
type session struct {
	id      string
	intents int
	seq     int
	events  []sentEvent
	conn    *gwConn
	invalid bool // forgotten: a RESUME gets INVALID_SESSION
}

// sentEvent is a dispatch as sent.
type sentEvent struct {
	seq  int
	data []byte
}

// frame is a message queued for a connection: a text payload, or a close
// frame with its code and reason.
type frame struct {
	data  []byte
	close bool
	code  int
	text  string
}

// gwConn is one gateway connection.
type gwConn struct {
	ws   *websocket.Conn
	sess *session      // under s.mu
	done chan struct{} // closed when the reader ends
	out  *platformtest.Outbox[frame]

	mu      sync.Mutex
	closing bool // a close frame is queued: nothing more goes out
}

// send queues a frame.
func (c *gwConn) send(f frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = f.close
	c.out.Push(f)
}

func (c *gwConn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// payload encodes a gateway payload.
func payload(op int, d any, seq int, event string) []byte {
	p := struct {
		Op int     `json:"op"`
		D  any     `json:"d"`
		S  *int    `json:"s"`
		T  *string `json:"t"`
	}{Op: op, D: d}
	if event != "" {
		p.S, p.T = &seq, &event
	}
	data, err := json.Marshal(p)
	if err != nil {
		panic("discordtest: " + err.Error())
	}
	return data
}

var upgrader = websocket.Upgrader{
	CheckOrigin: func(*http.Request) bool { return true },
}

// serveGateway serves one gateway connection until it ends.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.recordLocked(Call{At: time.Now(), Method: r.Method, Route: "GET /gateway", Path: r.URL.Path, Status: http.StatusSwitchingProtocols})
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(maxPayload)
	c := &gwConn{ws: ws, done: make(chan struct{}), out: platformtest.NewOutbox[frame]()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.gw.conns[c] = true
	s.gw.connections++
	s.gw.version = r.URL.Query().Get("v")
	if v := s.gw.version; v != "" && v != "9" && v != "10" {
		c.send(frame{close: true, code: closeInvalidAPIVersion, text: "Invalid API version."})
	} else {
		c.send(frame{data: payload(10, map[string]int{"heartbeat_interval": int(s.opts.HeartbeatInterval / time.Millisecond)}, 0, "")})
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
			s.mu.Lock()
			s.connEndedLocked(c, err)
			s.mu.Unlock()
			break
		}
		s.handleFrame(c, data)
	}
	close(c.done)
	ws.Close()
	<-writer
}

// writeLoop writes what is queued for a connection until it ends; after a
// close frame it waits for the client to close, a while at most.
func (s *Server) writeLoop(c *gwConn) {
	for {
		q := c.out.Take()
		for _, f := range q {
			if f.close {
				_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(f.code, f.text))
				t := time.NewTimer(closeGrace)
				select {
				case <-c.done:
				case <-t.C:
				case <-s.quit:
				}
				t.Stop()
				c.ws.Close()
				return
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, f.data); err != nil {
				c.ws.Close()
				return
			}
		}
		if len(q) == 0 {
			select {
			case <-c.out.Wake():
			case <-c.done:
				return
			}
		}
	}
}

// connEndedLocked forgets a connection. Its session stays resumable,
// unless the client closed with 1000 or 1001: "your session will be
// invalidated" (discord.com/developers/docs/events/gateway#initiating-a-disconnect).
func (s *Server) connEndedLocked(c *gwConn, err error) {
	delete(s.gw.conns, c)
	if sess := c.sess; sess != nil {
		sess.conn, c.sess = nil, nil
		var ce *websocket.CloseError
		if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
			sess.invalid = true
		}
	}
	s.changes.Changed()
}

// handleFrame acts on one payload from the client.
func (s *Server) handleFrame(c *gwConn, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changes.Changed()
	if c.isClosing() {
		return
	}
	var p struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Op == nil {
		c.send(frame{close: true, code: closeDecodeError, text: "Error while decoding payload."})
		return
	}
	switch *p.Op {
	case 1: // Heartbeat
		s.gw.heartbeats++
		c.send(frame{data: payload(11, nil, 0, "")})
	case 2:
		s.identifyLocked(c, p.D)
	case 6:
		s.resumeLocked(c, p.D)
	case 3, 4, 8, 31: // presence, voice state, guild members, soundboard
		if c.sess == nil {
			c.send(frame{close: true, code: closeNotAuthenticated, text: "Not authenticated."})
		}
	default:
		c.send(frame{close: true, code: closeUnknownOpcode, text: "Unknown opcode."})
	}
}

// checkToken compares a gateway token with the bot's; Discord takes it
// with or without the "Bot " prefix.
func (s *Server) checkToken(token string) bool {
	return strings.TrimPrefix(token, "Bot ") == s.Token
}

// identifyLocked answers an IDENTIFY: READY and a GUILD_CREATE per guild,
// or the close code the token or the intents deserve.
func (s *Server) identifyLocked(c *gwConn, raw json.RawMessage) {
	s.gw.identifies++
	var d struct {
		Token   string `json:"token"`
		Intents *int   `json:"intents"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		c.send(frame{close: true, code: closeDecodeError, text: "Error while decoding payload."})
		return
	}
	if d.Intents != nil {
		s.gw.intents = *d.Intents
	}
	if f := s.gw.closeNext; f != nil {
		s.gw.closeNext = nil
		c.send(*f)
		return
	}
	switch {
	case c.sess != nil:
		c.send(frame{close: true, code: closeAlreadyAuthenticated, text: "Already authenticated."})
		return
	case !s.checkToken(d.Token):
		c.send(frame{close: true, code: closeAuthenticationFailed, text: "Authentication failed."})
		return
	case d.Intents == nil || *d.Intents&^knownIntents != 0:
		c.send(frame{close: true, code: closeInvalidIntents, text: "Invalid intent(s)."})
		return
	case s.opts.RefuseMessageContent && *d.Intents&IntentMessageContent != 0:
		c.send(frame{close: true, code: closeDisallowedIntents, text: "Disallowed intent(s)."})
		return
	}
	sess := &session{id: randomToken(16), intents: *d.Intents, conn: c}
	c.sess = sess
	s.gw.sessions[sess.id] = sess
	s.gw.current = sess
	s.sendDispatchLocked(sess, "READY", s.readyObjectLocked(sess))
	if sess.intents&IntentGuilds != 0 {
		for _, g := range s.guilds {
			s.sendDispatchLocked(sess, "GUILD_CREATE", s.guildObjectLocked(g))
		}
	}
}

// resumeLocked answers a RESUME: the dispatches after its seq again, in
// order and with their numbers, then RESUMED; INVALID_SESSION (d false)
// for a session it does not know.
func (s *Server) resumeLocked(c *gwConn, raw json.RawMessage) {
	s.gw.resumes++
	var d struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       *int   `json:"seq"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		c.send(frame{close: true, code: closeDecodeError, text: "Error while decoding payload."})
		return
	}
	if c.sess != nil {
		c.send(frame{close: true, code: closeAlreadyAuthenticated, text: "Already authenticated."})
		return
	}
	if !s.checkToken(d.Token) {
		c.send(frame{close: true, code: closeAuthenticationFailed, text: "Authentication failed."})
		return
	}
	sess := s.gw.sessions[d.SessionID]
	seq := 0
	if d.Seq != nil {
		seq = *d.Seq
	}
	if sess != nil && !sess.invalid && seq > sess.seq {
		c.send(frame{close: true, code: closeInvalidSeq, text: "Invalid seq."})
		return
	}
	if sess == nil || sess.invalid || (len(sess.events) > 0 && seq < sess.events[0].seq-1) {
		c.send(frame{data: payload(9, false, 0, "")})
		return
	}
	if old := sess.conn; old != nil && old != c {
		old.sess = nil
		old.ws.Close()
	}
	sess.conn, c.sess = c, sess
	s.gw.current = sess
	for _, e := range sess.events {
		if e.seq > seq {
			c.send(frame{data: e.data})
		}
	}
	s.sendDispatchLocked(sess, "RESUMED", map[string]any{})
}

// sendDispatchLocked numbers a dispatch, keeps it for a RESUME and sends
// it if a connection holds the session.
func (s *Server) sendDispatchLocked(sess *session, event string, d any) {
	sess.seq++
	data := payload(0, d, sess.seq, event)
	sess.events = append(sess.events, sentEvent{seq: sess.seq, data: data})
	if n := len(sess.events); n > maxReplay {
		sess.events = append([]sentEvent(nil), sess.events[n-maxReplay:]...)
	}
	if sess.conn != nil {
		sess.conn.send(frame{data: data})
	}
}

// dispatchLocked dispatches an event to the current session, if it is
// alive and has the intent (0: none needed); build makes its data for
// that session.
func (s *Server) dispatchLocked(intent int, event string, build func(*session) any) {
	sess := s.gw.current
	if sess == nil || sess.invalid || (intent != 0 && sess.intents&intent == 0) {
		return
	}
	s.sendDispatchLocked(sess, event, build(sess))
}

// ---- gateway faults ----

// SendReconnect sends RECONNECT (op 7) to the connected session: the
// client should reconnect and resume.
func (s *Server) SendReconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.gw.current; sess != nil && sess.conn != nil {
		sess.conn.send(frame{data: payload(7, nil, 0, "")})
	}
}

// InvalidateSession sends INVALID_SESSION (op 9) with d = resumable to the
// connected session, which leaves its connection; a non-resumable session
// is forgotten, so that a RESUME of it gets op 9 with d = false.
func (s *Server) InvalidateSession(resumable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.gw.current
	if sess == nil {
		return
	}
	if c := sess.conn; c != nil {
		c.send(frame{data: payload(9, resumable, 0, "")})
		sess.conn, c.sess = nil, nil
	}
	if !resumable {
		sess.invalid = true
	}
	s.changes.Changed()
}

// DropConnection closes the connected session's TCP connection without a
// close frame, as a network failure would; the session stays resumable.
func (s *Server) DropConnection() {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.gw.current
	if sess == nil || sess.conn == nil {
		return
	}
	c := sess.conn
	sess.conn, c.sess = nil, nil
	c.ws.Close()
	s.changes.Changed()
}

// CloseNextIdentify answers the next IDENTIFY with a close frame of this
// code and reason (4000 "Unknown error.", 4008 "Rate limited.", ...).
func (s *Server) CloseNextIdentify(code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gw.closeNext = &frame{close: true, code: code, text: reason}
}

// Connections is how many gateway connections were accepted in all.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.connections
}

// Identifies is how many IDENTIFY payloads were received, refused ones
// too.
func (s *Server) Identifies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.identifies
}

// Resumes is how many RESUME payloads were received, refused ones too.
func (s *Server) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.resumes
}

// Intents are the intents of the last IDENTIFY.
func (s *Server) Intents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.intents
}

// Heartbeats is how many heartbeats the clients sent.
func (s *Server) Heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.heartbeats
}

// SessionID is the id of the session identified or resumed last, and
// whether it is connected now.
func (s *Server) SessionID() (id string, connected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.gw.current; sess != nil {
		return sess.id, sess.conn != nil && !sess.invalid
	}
	return "", false
}

// GatewayVersion is the v query parameter of the last gateway connection.
func (s *Server) GatewayVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw.version
}
