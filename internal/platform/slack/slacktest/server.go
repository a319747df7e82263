// Package slacktest is a fake Slack for tests, in the manner of
// net/http/httptest: it serves the Web API under {URL} (".../api/"), Socket
// Mode's websocket at /link/ and users' files under /files-pri/ on one
// loopback port (or a memnet listener), keeps channels, users and messages
// in memory, and answers with the real API's shapes, limits and error
// codes, so that an adapter can be tested end to end without the network.
//
// Web API: auth.test, apps.connections.open, chat.postMessage, chat.update,
// chat.delete, chat.startStream, chat.appendStream, chat.stopStream,
// assistant.threads.setStatus, conversations.info and users.info, with form
// or JSON bodies. It checks the tokens and their kinds, text and block
// limits, threads and streaming states, and, with Options.Limits, enforces
// per-method rate limits with 429 and Retry-After. It records every call
// with its time, and the calls made during a penalty as violations.
//
// Socket Mode: tickets, hello, WebSocket pings, events_api envelopes with
// their acknowledgements, redelivery of what is not acknowledged in time
// or was outstanding on a connection that closed, disconnect warnings and
// dropped connections.
//
// Tests make users post with Inject and read what the channels show with
// Messages.
package slacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// Options configure a Server.
type Options struct {
	// TeamID and TeamName are the workspace's; default "T0HERALD01" and
	// "Herald".
	TeamID, TeamName string
	// BotUserID, BotID and BotName are the bot user's, the bot's and the
	// bot user's name; default "U0HERALDBOT", "B0HERALDBOT" and "herald".
	BotUserID, BotID, BotName string
	// AppID is the app's; default "A0HERALDAPP".
	AppID string
	// BotToken is the bot token (xoxb-) of the Web API calls; AppToken
	// the app-level token (xapp-) of apps.connections.open.
	BotToken, AppToken string
	// Limits, when set, are the rate limits enforced (normally
	// &DocumentedLimits).
	Limits *Limits
	// RefuseStreaming: chat.startStream is not available to the app, and
	// answers RefuseStreamingError.
	RefuseStreaming bool
	// RefuseStreamingError is the error code of a refused
	// chat.startStream; default "feature_not_enabled" (see
	// errStreamingRefused).
	RefuseStreamingError string
	// RefuseStatus: the app may not set assistant threads' status;
	// assistant.threads.setStatus answers missing_scope.
	RefuseStatus bool
	// EchoBotMessages: the bot's own chat.postMessage posts come back as
	// message events (with bot_id set), as they do in real Slack for an
	// app subscribed to message events. Off by default, so that tests
	// count only users' events.
	EchoBotMessages bool
	// Listener, when set, is where the server listens instead of a
	// loopback port: a memnet listener (internal/memnet) for a test in a
	// testing/synctest bubble.
	Listener net.Listener
	// PingInterval is how often the server pings each Socket Mode
	// connection; default 10 s.
	PingInterval time.Duration
	// AckTimeout is how long an envelope waits for its acknowledgement
	// before it is delivered again; default 3 s.
	AckTimeout time.Duration
	// DisconnectGrace is how long after a disconnect message the server
	// closes the connection, if the client has not; default 10 s.
	DisconnectGrace time.Duration
}

// The defaults of Options.
const (
	DefaultTeamID    = "T0HERALD01"
	DefaultBotUserID = "U0HERALDBOT"
	DefaultBotID     = "B0HERALDBOT"
	DefaultAppID     = "A0HERALDAPP"
	DefaultBotToken  = "xoxb-1-herald-slacktest-bot-token"
	DefaultAppToken  = "xapp-1-A0HERALDAPP-1-herald-slacktest-app-token"
)

// defaultPingInterval is the fake's own choice: Slack does not document how
// often it pings, and slack-go's Socket Mode client gives up on a
// connection that has not been pinged for 30 s, so pings come well inside
// that.
const defaultPingInterval = 10 * time.Second

// defaultAckTimeout: an app must acknowledge each envelope within 3 s, or
// Slack delivers it again (docs.slack.dev/apis/events-api/using-socket-mode,
// on acknowledging events; the same 3 s as for the Events API over HTTP,
// docs.slack.dev/apis/events-api/using-http-request-urls).
const defaultAckTimeout = 3 * time.Second

// defaultDisconnectGrace: Slack sends a "warning" or "refresh_requested"
// disconnect message a little before it closes the connection
// (docs.slack.dev/apis/events-api/using-socket-mode, on disconnect
// events) without giving the delay; 10 s is the fake's choice, ample for a client
// that reconnects at once.
const defaultDisconnectGrace = 10 * time.Second

// message is a message as the server keeps it.
type message struct {
	ts, threadTS    string
	user, botID     string
	text            string
	blocks          []byte
	streaming       bool
	streamed        bool
	edits, appends  int
	streamingEdits  int
	at              time.Time
	deleted         bool
	files           []*file
	mentions        []string // mass mentions it has ever contained
	broadcast       bool     // reply_broadcast
	recipientUserID string   // chat.startStream's
}

// file is a user's file.
type file struct {
	id   string
	user string
	at   time.Time
	File
}

// channelState is a channel and its messages.
type channelState struct {
	ch      Channel
	created time.Time
	msgs    []*message
	byTS    map[string]*message
}

// kind is a channel's channel_type: "im", "channel" or "group".
func (c *channelState) kind() string { return channelKind(c.ch.ID) }

func channelKind(id string) string {
	switch {
	case strings.HasPrefix(id, "D"):
		return "im"
	case strings.HasPrefix(id, "G"):
		return "group"
	default:
		return "channel"
	}
}

// threadKey names an assistant thread.
type threadKey struct{ channel, ts string }

// Server is a fake Slack. Its methods are safe for concurrent use.
type Server struct {
	// URL is the Web API's base, for the client's API URL: methods are
	// POSTed to URL + method.
	URL string
	// BaseURL is the server's root, where files are served.
	BaseURL string
	// The workspace's and the bot's identities and tokens.
	TeamID, BotUserID, BotID, AppID string
	BotToken, AppToken              string

	opts Options
	ts   *httptest.Server
	quit chan struct{}
	wg   sync.WaitGroup // Socket Mode connections' goroutines

	mu       sync.Mutex
	changes  *platformtest.Changes // of everything WaitFor may wait on
	closed   bool
	lastTS   int64 // microseconds of the last ts given
	seq      int   // for ids
	users    map[string]User
	channels map[string]*channelState
	files    map[string]*file
	calls    []Call
	viol     []Call
	limits   rateState
	statuses map[threadKey][]Status
	statusAt map[threadKey]time.Time // when the current status was set
	sock     socketState
}

// NewServer starts a server; Close it when done.
func NewServer(opts Options) *Server {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&opts.TeamID, DefaultTeamID)
	def(&opts.TeamName, "Herald")
	def(&opts.BotUserID, DefaultBotUserID)
	def(&opts.BotID, DefaultBotID)
	def(&opts.BotName, "herald")
	def(&opts.AppID, DefaultAppID)
	def(&opts.BotToken, DefaultBotToken)
	def(&opts.AppToken, DefaultAppToken)
	def(&opts.RefuseStreamingError, errStreamingRefused)
	if opts.PingInterval <= 0 {
		opts.PingInterval = defaultPingInterval
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = defaultAckTimeout
	}
	if opts.DisconnectGrace <= 0 {
		opts.DisconnectGrace = defaultDisconnectGrace
	}
	s := &Server{
		TeamID: opts.TeamID, BotUserID: opts.BotUserID, BotID: opts.BotID, AppID: opts.AppID,
		BotToken: opts.BotToken, AppToken: opts.AppToken,
		opts:     opts,
		quit:     make(chan struct{}),
		users:    map[string]User{},
		channels: map[string]*channelState{},
		files:    map[string]*file{},
		statuses: map[threadKey][]Status{},
		statusAt: map[threadKey]time.Time{},
	}
	s.changes = platformtest.NewChanges(&s.mu)
	s.users[opts.BotUserID] = User{ID: opts.BotUserID, Name: opts.BotName, RealName: opts.BotName}
	s.limits.init()
	s.sock.init()
	s.ts = platformtest.Serve(http.HandlerFunc(s.serveHTTP), opts.Listener)
	s.BaseURL = s.ts.URL
	s.URL = s.BaseURL + "/api/"
	return s
}

// Close closes the Socket Mode connections and the HTTP server, and
// returns once every goroutine and timer of the server has ended.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.quit)
	s.sock.stopTimers()
	conns := slices.Clone(s.sock.conns)
	s.changes.Changed()
	s.mu.Unlock()
	for _, c := range conns {
		c.ws.Close()
	}
	s.wg.Wait()
	s.ts.Close()
}

// WaitFor waits until cond, called after each change to the server's
// state, returns true, or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	return s.changes.WaitFor(ctx, cond)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/api/"):
		s.serveAPI(w, r)
	case p == "/link" || p == "/link/":
		s.serveLink(w, r)
	case strings.HasPrefix(p, "/files-pri/"):
		s.serveFile(w, r)
	default:
		http.NotFound(w, r)
	}
}

// newTSLocked returns a new message ts, "<unix seconds>.<6 digits>" of
// the server's clock, greater than every earlier one.
func (s *Server) newTSLocked(now time.Time) string {
	us := now.UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// newIDLocked returns an id with a prefix ("F", "Ev"), in Slack's
// uppercase style.
func (s *Server) newIDLocked(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%09X", prefix, s.seq)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random version 4 UUID, as envelope ids and
// client_msg_ids are.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- the workspace ----

// AddChannel makes the bot a member of a channel (or IM, whose other user
// is ch.User).
func (s *Server) AddChannel(ch Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[ch.ID]
	if cs == nil {
		cs = &channelState{created: time.Now(), byTS: map[string]*message{}}
		s.channels[ch.ID] = cs
	}
	cs.ch = ch
	if ch.User != "" {
		s.knowUserLocked(ch.User)
	}
	s.changes.Changed()
}

// AddUser adds a member to the workspace.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	s.changes.Changed()
}

// knowUserLocked adds a user not added yet, named after its id.
func (s *Server) knowUserLocked(id string) {
	if _, ok := s.users[id]; !ok {
		s.users[id] = User{ID: id, Name: strings.ToLower(id)}
	}
}

// Inject stores a user's message, as if the user had posted it, and
// delivers its events over Socket Mode: a message event, and in a channel
// that mentions the bot an app_mention event besides. Events wait for a
// connection if none is open. The channel must have been added.
func (s *Server) Inject(in Incoming) (ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[in.Channel]
	if cs == nil {
		panic(fmt.Sprintf("slacktest: Inject into unknown channel %q; add it with AddChannel", in.Channel))
	}
	if in.User == "" {
		panic("slacktest: Inject without a User")
	}
	s.knowUserLocked(in.User)
	now := time.Now()
	m := &message{ts: s.newTSLocked(now), user: in.User, text: in.Text, at: now}
	if in.ThreadTS != "" {
		m.threadTS = s.threadRootLocked(cs, in.ThreadTS)
	}
	for _, f := range in.Files {
		st := &file{id: s.newIDLocked("F"), user: in.User, at: now, File: f}
		s.files[st.id] = st
		m.files = append(m.files, st)
	}
	s.addMessageLocked(cs, m)
	s.deliverLocked(s.userMessageEventLocked(cs, m))
	if cs.kind() != "im" && strings.Contains(in.Text, "<@"+s.BotUserID+">") {
		s.deliverLocked(s.appMentionEventLocked(cs, m))
	}
	s.changes.Changed()
	return m.ts
}

// InjectEvent delivers an arbitrary event (a message_changed, another
// app's bot_message, ...) in an events_api envelope, and returns its
// event_id. The event is sent as given.
func (s *Server) InjectEvent(event map[string]any) (eventID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.eventCallbackLocked(event)
	s.deliverLocked(ev)
	s.changes.Changed()
	return ev.eventID
}

// threadRootLocked is the thread a reply to ts joins: ts's own thread
// when ts is itself a reply, else ts.
func (s *Server) threadRootLocked(cs *channelState, ts string) string {
	if m := cs.byTS[ts]; m != nil && m.threadTS != "" {
		return m.threadTS
	}
	return ts
}

// addMessageLocked stores a message in its channel.
func (s *Server) addMessageLocked(cs *channelState, m *message) {
	cs.msgs = append(cs.msgs, m)
	cs.byTS[m.ts] = m
}

// ---- what tests read ----

func (s *Server) exportLocked(m *message) Message {
	out := Message{TS: m.ts, ThreadTS: m.threadTS, User: m.user, BotID: m.botID, Text: m.text,
		Streaming: m.streaming, Streamed: m.streamed, Edits: m.edits, StreamingEdits: m.streamingEdits,
		Appends: m.appends, At: m.at}
	if m.blocks != nil {
		out.Blocks = slices.Clone(m.blocks)
	}
	for _, f := range m.files {
		out.Files = append(out.Files, f.File)
	}
	return out
}

// Messages returns the messages a channel shows, in order, thread replies
// included, deleted ones not.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[channel]
	if cs == nil {
		return nil
	}
	var out []Message
	for _, m := range cs.msgs {
		if !m.deleted {
			out = append(out, s.exportLocked(m))
		}
	}
	return out
}

// Thread returns the replies in a thread, in order, without its parent.
func (s *Server) Thread(channel, threadTS string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.ThreadTS == threadTS && m.TS != threadTS {
			out = append(out, m)
		}
	}
	return out
}

// BotMessages returns the bot's messages a channel shows, in order.
func (s *Server) BotMessages(channel string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.BotID == s.BotID {
			out = append(out, m)
		}
	}
	return out
}

// Message returns one message of a channel, deleted or not.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.channels[channel]; cs != nil {
		if m := cs.byTS[ts]; m != nil {
			return s.exportLocked(m), true
		}
	}
	return Message{}, false
}

// Mentions returns the mass mentions (<!channel>, <!here>, <!everyone>,
// as written) that the bot's messages in a channel contain or contained,
// in their text or blocks, as Slack would render them: none, for an
// adapter that escapes what it relays.
func (s *Server) Mentions(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[channel]
	if cs == nil {
		return nil
	}
	var out []string
	for _, m := range cs.msgs {
		if m.botID != "" {
			out = append(out, m.mentions...)
		}
	}
	return out
}

// Calls returns every Web API call and file download, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsOf returns the calls of one method, in order.
func (s *Server) CallsOf(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Violations returns the calls made while their method was penalised:
// none, for a client that honours Retry-After.
func (s *Server) Violations() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.viol)
}

// Penalties returns the times a method refused calls with 429, in order.
func (s *Server) Penalties() []Penalty {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.limits.penalties)
}

// Statuses returns the status changes of an assistant thread, in order.
func (s *Server) Statuses(channel, threadTS string) []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses[threadKey{channel, threadTS}])
}

// CurrentStatus is the status an assistant thread shows now: the last one
// set, unless it was cleared or its two minutes are over ("A two minute
// timeout applies, which will cause the status to be removed if no message
// has been sent", docs.slack.dev/reference/methods/assistant.threads.setStatus).
func (s *Server) CurrentStatus(channel, threadTS string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := threadKey{channel, threadTS}
	list := s.statuses[k]
	if len(list) == 0 || time.Since(s.statusAt[k]) >= statusLifetime {
		return ""
	}
	return list[len(list)-1].Text
}

// statusLifetime: see CurrentStatus.
const statusLifetime = 2 * time.Minute

// recordLocked adds a call to the log.
func (s *Server) recordLocked(c Call) {
	s.calls = append(s.calls, c)
	s.changes.Changed()
}
