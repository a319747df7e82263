// Package discordtest is a fake Discord server for tests, in the manner of
// net/http/httptest: it serves the REST API v10 under /api/v10 and the
// gateway websocket at /gateway on one loopback port (or a memnet
// listener), keeps guilds, channels and messages in memory, and answers
// with the real API's shapes, limits and error texts, so that an adapter
// can be tested end to end without the network.
//
// REST: the bot user and application, channels, messages (create, edit,
// delete, list), typing, threads started from a message, the bot's
// reactions, application commands, interaction callbacks and their
// webhooks. It checks the token, the 2000 code point limit, empty messages,
// allowed mentions and replies, computes who a message pings, and, with
// Options.Limits, enforces per-route buckets and the global limit with
// Discord's headers and 429s. It records every call with its time.
//
// Gateway: HELLO, IDENTIFY (token and intents checked), READY and
// GUILD_CREATE, heartbeats, RESUME with the missed dispatches replayed,
// and the faults a client must survive: RECONNECT, INVALID_SESSION, a
// dropped connection, a closed IDENTIFY.
//
// Tests inject what users do with Inject and InjectInteraction, and read
// what the chats show with Messages.
package discordtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	_ "image/gif"  // attachment sizes
	_ "image/jpeg" // attachment sizes
	_ "image/png"  // attachment sizes
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// Options configure a Server.
type Options struct {
	// Token is the bot token; default
	// "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhErAl.test-token-for-herald-discordtest".
	// Calls carry it as "Authorization: Bot <token>".
	Token string
	// BotID and BotName are the bot user's; default "900000000000000001"
	// and "herald".
	BotID, BotName string
	// ApplicationID is the bot's application; default BotID (as for
	// every bot made in the developer portal).
	ApplicationID string
	// Limits, when set, are the rate limits enforced (normally
	// &DocumentedLimits).
	Limits *Limits
	// RefuseMessageContent: the MESSAGE_CONTENT privileged intent is not
	// switched on in the developer portal: an IDENTIFY asking for it is
	// closed with 4014 "Disallowed intent(s).".
	RefuseMessageContent bool
	// Listener, when set, is where the server listens instead of a
	// loopback port: a memnet listener (internal/memnet) for a test in a
	// testing/synctest bubble.
	Listener net.Listener
	// HeartbeatInterval is the interval HELLO asks for; default 41.25 s.
	HeartbeatInterval time.Duration
}

// Window is a rate limit as Discord's buckets enforce it: Limit calls in a
// fixed window of Per that starts with the first call after a reset.
type Window struct {
	Limit int
	Per   time.Duration
}

// Limits are the rate limits a Server enforces.
type Limits struct {
	// Route is every route's bucket: one per route (method and path
	// template) and top-level resource (the channel, the application, the
	// interaction's webhook).
	Route Window
	// Routes override Route for some routes, by Route name
	// (RouteAddReaction, ...).
	Routes map[string]Window
	// Global is the limit on all of the bot's requests together, but for
	// interactions' callbacks and webhooks, which it does not cover.
	Global Window
}

// DocumentedLimits are Discord's limits as far as it states them.
var DocumentedLimits = Limits{
	// What Discord's headers answer for creating, editing and deleting
	// messages in a channel: 5 in 5 s (the bucket of the example in
	// discord.com/developers/docs/topics/rate-limits#header-format is the
	// same 5).
	Route: Window{Limit: 5, Per: 5 * time.Second},
	// "All bots can make up to 50 requests per second to our API"
	// (discord.com/developers/docs/topics/rate-limits#global-rate-limit).
	Global: Window{Limit: 50, Per: time.Second},
}

// defaultHeartbeat is the heartbeat_interval of the HELLO example in
// discord.com/developers/docs/events/gateway#hello-event.
const defaultHeartbeat = 41250 * time.Millisecond

// interactionDeadline is how long after an interaction its first response
// may come: "you must send an initial response within 3 seconds of
// receiving the event" (discord.com/developers/docs/interactions/
// receiving-and-responding#responding-to-an-interaction).
const interactionDeadline = 3 * time.Second

// interactionTokenLife is how long an interaction's token stays valid for
// edits and follow-ups: "Interaction tokens are valid for 15 minutes"
// (same page).
const interactionTokenLife = 15 * time.Minute

// discordEpoch is the first millisecond of 2015, from which snowflakes
// count (discord.com/developers/docs/reference#snowflakes).
const discordEpoch = 1420070400000

// message is a message as the server keeps it.
type message struct {
	id, channelID string
	author        User
	content       string
	at, edited    time.Time
	typ, flags    int
	replyTo       string // message_reference.message_id
	replyKnown    bool   // it referenced a message of the channel
	allowed       *AllowedMentions
	mentions      []User // for users' messages; bot messages compute them
	attachments   []*attachment
	reactions     []string
	thread        string
	interaction   *interaction
	webhook       bool
	edits         int
	deleted       bool
	nonce         string // as created, for enforce_nonce
}

// attachment is a stored file.
type attachment struct {
	id string
	Attachment
}

// channelState is a channel and its messages.
type channelState struct {
	ch        Channel
	msgs      []*message
	autoArch  int
	createdAt time.Time
}

// guild is a guild the bot is in.
type guild struct {
	id, name string
	joined   time.Time
	channels []string // ids, in the order added
}

// interaction is an injected interaction.
type interaction struct {
	Interaction
	id, token, commandID string
	at                   time.Time
	acked                bool
	original             *message
	responses            []InteractionResponse
}

// Server is a fake Discord server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL, for DISCORD_BASE_URL.
	URL string
	// Token is the bot token.
	Token string
	// Bot is the bot's user.
	Bot User
	// ApplicationID is the bot's application.
	ApplicationID string

	opts  Options
	ts    *httptest.Server
	wsURL string
	quit  chan struct{}
	wg    sync.WaitGroup // gateway connections

	mu           sync.Mutex
	changes      *platformtest.Changes // of everything WaitFor may wait on
	closed       bool
	lastID       uint64
	users        map[string]User
	guilds       []*guild
	channels     map[string]*channelState
	messages     map[string]*message // by id
	attachments  map[string]*attachment
	interactions map[string]*interaction // by id
	commands     []*apiCommand
	typing       map[string][]time.Time
	calls        []Call
	violations   []Call
	limits       rateLimits

	gw gatewayState
}

// NewServer starts a server; Close it when done.
func NewServer(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhErAl.test-token-for-herald-discordtest"
	}
	if opts.BotID == "" {
		opts.BotID = "900000000000000001"
	}
	if opts.BotName == "" {
		opts.BotName = "herald"
	}
	if opts.ApplicationID == "" {
		opts.ApplicationID = opts.BotID
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = defaultHeartbeat
	}
	s := &Server{
		Token:         opts.Token,
		Bot:           User{ID: opts.BotID, Username: opts.BotName, Bot: true},
		ApplicationID: opts.ApplicationID,
		opts:          opts,
		quit:          make(chan struct{}),
		lastID:        1 << 32,
		users:         map[string]User{},
		channels:      map[string]*channelState{},
		messages:      map[string]*message{},
		attachments:   map[string]*attachment{},
		interactions:  map[string]*interaction{},
		typing:        map[string][]time.Time{},
	}
	s.changes = platformtest.NewChanges(&s.mu)
	s.users[s.Bot.ID] = s.Bot
	s.limits.init()
	s.gw.init()
	s.ts = platformtest.Serve(http.HandlerFunc(s.serveHTTP), opts.Listener)
	s.URL = s.ts.URL
	s.wsURL = "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway"
	return s
}

// Close closes the gateway connections and the HTTP server, and returns
// once every goroutine of the server has ended.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.quit)
	conns := s.gw.allConns()
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

// snowflakeLocked returns a new id, greater than every earlier one, made
// of the time as Discord's are. s.mu is held.
func (s *Server) snowflakeLocked(now time.Time) string {
	var id uint64
	if ms := now.UnixMilli() - discordEpoch; ms > 0 {
		id = uint64(ms) << 22
	}
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id
	return strconv.FormatUint(id, 10)
}

// randomToken returns n random bytes in hex.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- the world ----

// AddGuild makes the bot a member of a guild with these channels (their
// GuildID is set to id). A session identified later gets the guild in a
// GUILD_CREATE after READY; a session connected now gets one at once.
func (s *Server) AddGuild(id, name string, channels ...Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guildLocked(id)
	g.name = name
	for _, c := range channels {
		c.GuildID = id
		s.addChannelLocked(c, false)
	}
	s.dispatchLocked(IntentGuilds, "GUILD_CREATE", func(*session) any { return s.guildObjectLocked(g) })
	s.changes.Changed()
}

// AddChannel makes a channel known: a guild text channel (its guild is
// created if needed), a DM (Type ChannelDM, with Recipient) or a thread
// (Type ChannelPublicThread, with ParentID). A thread the bot starts
// through the API is added by the server itself.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addChannelLocked(c, true)
	s.changes.Changed()
}

func (s *Server) guildLocked(id string) *guild {
	for _, g := range s.guilds {
		if g.id == id {
			return g
		}
	}
	g := &guild{id: id, name: "Guild " + id, joined: time.Now()}
	s.guilds = append(s.guilds, g)
	return g
}

func (s *Server) addChannelLocked(c Channel, announce bool) *channelState {
	if c.Type == ChannelPublicThread && c.GuildID == "" {
		if p := s.channels[c.ParentID]; p != nil {
			c.GuildID = p.ch.GuildID
		}
	}
	if c.Recipient != nil {
		s.users[c.Recipient.ID] = *c.Recipient
	}
	cs := s.channels[c.ID]
	if cs == nil {
		cs = &channelState{autoArch: 1440, createdAt: time.Now()}
		s.channels[c.ID] = cs
	}
	cs.ch = c
	if c.GuildID != "" {
		g := s.guildLocked(c.GuildID)
		if !slices.Contains(g.channels, c.ID) {
			g.channels = append(g.channels, c.ID)
		}
	}
	if announce && c.GuildID != "" {
		event := "CHANNEL_CREATE"
		if c.Type == ChannelPublicThread {
			event = "THREAD_CREATE"
		}
		s.dispatchLocked(IntentGuilds, event, func(*session) any { return s.channelObjectLocked(cs) })
	}
	return cs
}

// Inject stores a user's message, as if the user had sent it, and
// dispatches MESSAGE_CREATE to the connected session; with no session
// connected, the dispatch waits for a RESUME of the last one, as Discord
// replays missed events. The message is readable through the REST API
// either way. The channel must be known.
func (s *Server) Inject(in Incoming) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[in.ChannelID]
	if cs == nil {
		panic(fmt.Sprintf("discordtest: Inject into unknown channel %q; add it with AddGuild or AddChannel", in.ChannelID))
	}
	now := time.Now()
	s.users[in.Author.ID] = in.Author
	m := &message{id: s.snowflakeLocked(now), channelID: in.ChannelID, author: in.Author,
		content: in.Content, at: now, replyTo: in.ReplyTo}
	for _, u := range in.Mentions {
		s.users[u.ID] = u
		m.mentions = appendUser(m.mentions, u)
	}
	for _, id := range userMentions(in.Content) {
		if u, ok := s.users[id]; ok {
			m.mentions = appendUser(m.mentions, u)
		}
	}
	if in.ReplyTo != "" {
		m.typ = 19 // REPLY
		if r := s.messages[in.ReplyTo]; r != nil && r.channelID == in.ChannelID {
			m.replyKnown = true
		}
	}
	for _, a := range in.Attachments {
		st := &attachment{id: s.snowflakeLocked(now), Attachment: a}
		s.attachments[st.id] = st
		m.attachments = append(m.attachments, st)
	}
	s.addMessageLocked(cs, m)
	s.changes.Changed()
	return s.exportLocked(m)
}

func appendUser(list []User, u User) []User {
	for _, x := range list {
		if x.ID == u.ID {
			return list
		}
	}
	return append(list, u)
}

// addMessageLocked stores a message and dispatches its MESSAGE_CREATE
// (none for an ephemeral one).
func (s *Server) addMessageLocked(cs *channelState, m *message) {
	cs.msgs = append(cs.msgs, m)
	s.messages[m.id] = m
	if m.flags&flagEphemeral != 0 {
		return
	}
	s.dispatchLocked(s.messageIntent(cs), "MESSAGE_CREATE", func(sess *session) any {
		return s.messageEventLocked(m, sess)
	})
}

// messageIntent is the intent a channel's message events need.
func (s *Server) messageIntent(cs *channelState) int {
	if cs.ch.Type == ChannelDM {
		return IntentDirectMessages
	}
	return IntentGuildMessages
}

// InjectInteraction dispatches an INTERACTION_CREATE of a slash command
// (type 2, APPLICATION_COMMAND) run by a user, and returns its id. Its
// first response must come within 3 s (server clock); a later callback
// gets 404 "Unknown interaction" (10062).
func (s *Server) InjectInteraction(in Interaction) (id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if in.GuildID == "" {
		if cs := s.channels[in.ChannelID]; cs != nil {
			in.GuildID = cs.ch.GuildID
		}
	}
	s.users[in.User.ID] = in.User
	it := &interaction{Interaction: in, id: s.snowflakeLocked(now), at: now,
		token: "aW50ZXJhY3Rpb246" + randomToken(24)}
	for _, c := range s.commands {
		if c.Name == in.Name {
			it.commandID = c.ID
		}
	}
	if it.commandID == "" {
		it.commandID = s.snowflakeLocked(now)
	}
	s.interactions[it.id] = it
	s.dispatchLocked(0, "INTERACTION_CREATE", func(*session) any { return s.interactionObjectLocked(it) })
	s.changes.Changed()
	return it.id
}

// ---- attachments ----

// attachmentURL is where an attachment is served.
func (s *Server) attachmentURL(channelID string, a *attachment) string {
	return s.URL + "/attachments/" + channelID + "/" + a.id + "/" + url.PathEscape(a.Filename)
}

// imageSize tells an image's size, if it is one the standard library
// decodes; other images get a plausible size.
func imageSize(a *attachment) (w, h int, ok bool) {
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(a.Data)); err == nil {
		return cfg.Width, cfg.Height, true
	}
	if strings.HasPrefix(a.ContentType, "image/") {
		return 640, 480, true
	}
	return 0, 0, false
}

func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 3)
	s.mu.Lock()
	call := Call{At: time.Now(), Method: r.Method, Route: "GET /attachments/{channel.id}/{attachment.id}/{filename}", Path: r.URL.Path, Status: 200}
	var a *attachment
	if len(parts) == 3 {
		call.ChannelID = parts[0]
		a = s.attachments[parts[1]]
		if a != nil && a.Filename != parts[2] {
			a = nil
		}
	}
	if a == nil {
		call.Status = 404
	}
	s.recordLocked(call)
	s.mu.Unlock()
	if a == nil {
		http.Error(w, "404: Not Found", http.StatusNotFound)
		return
	}
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Data)))
	_, _ = w.Write(a.Data)
}

// ---- what tests read ----

// exportLocked is a message as Messages shows it.
func (s *Server) exportLocked(m *message) Message {
	out := Message{ID: m.id, ChannelID: m.channelID, Author: m.author, Content: m.content, At: m.at,
		ReplyTo: m.replyTo, Pings: s.pingsLocked(m), Edits: m.edits, Reactions: slices.Clone(m.reactions),
		Thread: m.thread, Flags: m.flags}
	if m.allowed != nil {
		a := *m.allowed
		a.Parse, a.Users, a.Roles = slices.Clone(a.Parse), slices.Clone(a.Users), slices.Clone(a.Roles)
		out.AllowedMentions = &a
	}
	for _, a := range m.attachments {
		out.Attachments = append(out.Attachments, Attachment{Filename: a.Filename, ContentType: a.ContentType, Data: a.Data})
	}
	if m.interaction != nil {
		out.Interaction = m.interaction.id
	}
	return out
}

// Messages returns the messages a channel shows now, in order: users' and
// the bot's, with their last edits, without deleted and ephemeral ones.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[channelID]
	if cs == nil {
		return nil
	}
	var out []Message
	for _, m := range cs.msgs {
		if !m.deleted && m.flags&flagEphemeral == 0 {
			out = append(out, s.exportLocked(m))
		}
	}
	return out
}

// BotMessages returns the bot's messages a channel shows now, in order.
func (s *Server) BotMessages(channelID string) []Message {
	var out []Message
	for _, m := range s.Messages(channelID) {
		if m.Author.ID == s.Bot.ID {
			out = append(out, m)
		}
	}
	return out
}

// Calls returns every HTTP request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls that addressed a channel, in order.
func (s *Server) CallsTo(channelID string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.ChannelID == channelID {
			out = append(out, c)
		}
	}
	return out
}

// Violations returns the calls made while their bucket was exhausted or
// penalised, or over the global limit: none, for a client that honours
// the headers and the 429s.
func (s *Server) Violations() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Penalties returns the times a channel's buckets refused calls with 429
// (and the global ones, which cover every channel), in order.
func (s *Server) Penalties(channelID string) []Penalty {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Penalty
	for _, p := range s.limits.penalties {
		if p.ChannelID == channelID || p.Global {
			out = append(out, p)
		}
	}
	return out
}

// Commands returns the bot's global application commands, as registered
// with PUT (bulk overwrite) or POST /applications/{id}/commands.
func (s *Server) Commands() []ApplicationCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ApplicationCommand
	for _, c := range s.commands {
		out = append(out, ApplicationCommand{ID: c.ID, Name: c.Name, Description: c.Description, Type: c.Type})
	}
	return out
}

// Typing returns when the bot triggered the typing indicator in a channel.
func (s *Server) Typing(channelID string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.typing[channelID])
}

// InteractionResponses returns the answers to an interaction, in order:
// callbacks (refused ones too), edits of @original and follow-ups.
func (s *Server) InteractionResponses(id string) []InteractionResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.interactions[id]; it != nil {
		return slices.Clone(it.responses)
	}
	return nil
}

// recordLocked adds a call to the log. s.mu is held.
func (s *Server) recordLocked(c Call) {
	s.calls = append(s.calls, c)
	s.changes.Changed()
}
