// Package telegramtest is a fake Telegram Bot API server for tests, in the
// manner of net/http/httptest: it serves /bot<token>/<method> and
// /file/bot<token>/<path> on a loopback port, keeps chats in memory, and
// answers with the real API's shapes, limits and error texts, so that an
// adapter can be tested end to end without the network.
//
// It implements getMe, getUpdates (offset confirmation and long polling;
// refused while a webhook is set, as Telegram does), getWebhookInfo,
// setWebhook, deleteWebhook,
// sendMessage, editMessageText, sendMessageDraft, deleteMessage,
// sendChatAction, setMyCommands, getFile and file downloads; it checks the
// HTML style for real (see ParseHTML), the 4096 UTF-16 unit limit, "message
// is not modified", and enforces a per-chat rate limit with 429 and
// retry_after. It records every call with its time. Tests inject user
// messages with Inject and read what the chats show with Messages.
package telegramtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// MaxMessageLength is the longest text, in UTF-16 code units after entity
// parsing, that sendMessage and editMessageText accept.
const MaxMessageLength = 4096

// MaxDownloadSize is the largest file getFile lets a bot download.
const MaxDownloadSize = 20 << 20

// Options configure a Server.
type Options struct {
	// Token is the bot token in the paths; default "123456789:TEST-token".
	// The bot's id is the number before the colon.
	Token string
	// BotUsername is the bot's username, without "@"; default "herald_bot".
	BotUsername string
	// Flood, when set, are the flood limits the server enforces (usually
	// &DocumentedFlood): a call over one gets 429 with the retry_after that
	// lets it through, the chat is penalised until then, and the call is
	// recorded as a violation, which a client that paces itself never makes.
	Flood *Flood
	// Listener, when set, is where the server listens instead of a
	// loopback port: a memnet listener, for a test in a synctest bubble.
	Listener net.Listener
	// Applied, when set, is told of every sendMessage, editMessageText
	// and sendMessageDraft the chat shows, and of every getUpdates that
	// hands out updates (chat 0), before the answer goes back: a crash
	// test kills the client there, inside the call.
	Applied func(method string, chatID int64)
}

// Flood is a set of flood limits, as token buckets: one per chat, one more
// per group, one for the whole bot. sendMessage, editMessageText,
// sendMessageDraft and deleteMessage count against all three;
// sendChatAction against the bot's only.
type Flood struct {
	Chat, Group, Bot platform.Bucket
}

// DocumentedFlood are Telegram's flood limits as its Bot API FAQ states
// them ("My bot is hitting limits, how do I avoid this?",
// core.telegram.org/bots/faq): about one message a second in a chat, with
// short bursts let through (taken here as 3); 20 messages a minute in a
// group; about 30 messages a second in all.
var DocumentedFlood = Flood{
	Chat:  platform.Bucket{Rate: 1, Burst: 3},
	Group: platform.Bucket{Rate: 20.0 / 60, Burst: 20},
	Bot:   platform.Bucket{Rate: 30, Burst: 30},
}

// Call is one request the server received.
type Call struct {
	Method string // the API method, or "download" for a file download
	ChatID int64  // the chat it addressed; 0 for none
	At     time.Time
	Params map[string]string // as sent; JSON values as their JSON text
	// Status is the HTTP status answered; Description and RetryAfter the
	// error's, if any.
	Status      int
	Description string
	RetryAfter  int
}

// Penalty is a time a chat was under a rate-limit penalty: every call to
// it from From until Until is refused with 429.
type Penalty struct {
	ChatID      int64
	From, Until time.Time
}

// Msg is a message as a chat shows it.
type Msg struct {
	ID       int
	From     User
	FromBot  bool
	Text     string   // the visible text (for a photo, its caption)
	Entities []Entity // its formatting
	// Raw and ParseMode are the text and parse_mode of the last send or
	// edit, as the bot sent them.
	Raw       string
	ParseMode string
	ThreadID  int
	ReplyTo   int
	Edits     int
	Photo     bool
	// Reaction is the bot's reaction on the message, "" for none.
	Reaction string
}

// Fault makes the server answer a chosen call with an error.
type Fault struct {
	ChatID int64  // 0: any chat
	Method string // "": any method
	// Nth is which matching call fails, counting from when the fault is
	// added: 1 (or 0) is the next one.
	Nth int
	// OnlyFormatted restricts the fault to calls with a parse_mode.
	OnlyFormatted bool
	// Code is the error code (400, 429, ...); Description the API's text.
	// With 429, RetryAfter starts a penalty on the chat.
	Code        int
	Description string
	RetryAfter  int
}

type fault struct {
	Fault
	seen int
}

// chatState is one chat as the server keeps it.
type chatState struct {
	chat      Chat
	msgs      []*stored
	nextID    int
	threads   map[int]bool
	drafts    map[string]string  // draft_id → visible text
	flood     []*platform.Tokens // the chat's flood buckets (and its group's), once used
	blocked   time.Time          // penalised until
	penalties []Penalty
	movedTo   int64 // the supergroup a group became
}

// stored is a message with what the server needs besides.
type stored struct {
	msg      Message
	raw      string
	mode     string
	edits    int
	deleted  bool
	reaction string // the bot's reaction on it, "" for none
}

// file is a downloadable file.
type file struct {
	id, uniqueID, path string
	data               []byte
}

// Server is a fake Bot API server. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL, for TELEGRAM_BASE_URL.
	URL string
	// Token is the bot token.
	Token string
	// Bot is the bot's user.
	Bot User

	opts Options
	ts   *httptest.Server
	quit chan struct{}

	mu         sync.Mutex
	changes    *platformtest.Changes // of everything WaitFor may wait on
	queue      []Update              // updates not confirmed yet
	history    map[int64]Update
	nextUpdate int64
	confirmed  int64
	pollGen    int
	chats      map[int64]*chatState
	files      map[string]*file // by file_id
	paths      map[string]*file // by file_path
	calls      []Call
	violations []Call
	botFlood   *platform.Tokens // the bot's flood bucket, once used
	faults     []*fault
	commands   []BotCommand
	webhook    string        // the URL setWebhook set; "" without one
	outage     chan struct{} // closed when the outage ends; nil without one
	outageCode int           // 0: requests hang
}

// NewServer starts a server; Close it when done.
func NewServer(opts Options) *Server {
	if opts.Token == "" {
		opts.Token = "123456789:TEST-token"
	}
	if opts.BotUsername == "" {
		opts.BotUsername = "herald_bot"
	}
	id, _ := strconv.ParseInt(strings.SplitN(opts.Token, ":", 2)[0], 10, 64)
	s := &Server{
		Token: opts.Token,
		Bot: User{ID: id, IsBot: true, FirstName: "Herald", Username: opts.BotUsername,
			CanJoinGroups: true},
		opts:       opts,
		quit:       make(chan struct{}),
		history:    map[int64]Update{},
		nextUpdate: 700000001,
		chats:      map[int64]*chatState{},
		files:      map[string]*file{},
		paths:      map[string]*file{},
	}
	s.changes = platformtest.NewChanges(&s.mu)
	s.ts = platformtest.Serve(http.HandlerFunc(s.serveHTTP), opts.Listener)
	s.URL = s.ts.URL
	return s
}

// Close stops the server, ending any long poll.
func (s *Server) Close() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	s.ts.Close()
}

// WaitFor waits until cond, called after each change to the server's
// state, returns true, or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	return s.changes.WaitFor(ctx, cond)
}

// ---- what tests inject ----

// Incoming is a message a user sends to the bot.
type Incoming struct {
	Chat Chat
	From User
	// Text is the message's text, or a photo's caption. Mentions
	// (@username) and commands (/cmd, /cmd@bot) get their entities.
	Text string
	// ThreadID puts the message in a forum topic.
	ThreadID int
	// ReplyTo is the id of the message this one answers.
	ReplyTo int
	// Photo, if set, makes this a photo: Telegram's sizes are made of it,
	// the largest holding Photo itself and smaller ones other bytes.
	Photo []byte
}

// Injected tells what Inject created.
type Injected struct {
	UpdateID  int64
	MessageID int
	// PhotoFileID is the largest size's file_id, for a photo.
	PhotoFileID string
}

// Inject queues the update of a user's message, as if the user had sent it.
func (s *Server) Inject(in Incoming) Injected {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(in.Chat)
	c.nextID++
	from := in.From
	m := Message{
		MessageID: c.nextID,
		From:      &from,
		Chat:      c.chat,
		Date:      time.Now().Unix(),
	}
	if in.ThreadID != 0 {
		m.MessageThreadID = in.ThreadID
		m.IsTopicMessage = c.chat.IsForum
		c.threads[in.ThreadID] = true
	}
	if in.ReplyTo != 0 {
		for _, st := range c.msgs {
			if st.msg.MessageID == in.ReplyTo {
				replied := st.msg
				replied.ReplyToMessage = nil
				m.ReplyToMessage = &replied
			}
		}
	}
	var out Injected
	if in.Photo != nil {
		sizes := []struct {
			w, h int
			data []byte
		}{
			{90, 60, []byte("small thumbnail of " + strconv.Itoa(m.MessageID))},
			{320, 213, []byte("medium size of " + strconv.Itoa(m.MessageID) + " " + strings.Repeat("m", 64))},
			{1280, 853, in.Photo},
		}
		for _, sz := range sizes {
			f := s.addFileLocked(sz.data, "photos")
			m.Photo = append(m.Photo, PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: sz.w, Height: sz.h, FileSize: len(sz.data)})
			out.PhotoFileID = f.id
		}
		m.Caption, m.CaptionEntities = in.Text, detectEntities(in.Text)
	} else {
		m.Text, m.Entities = in.Text, detectEntities(in.Text)
	}
	c.msgs = append(c.msgs, &stored{msg: m, raw: in.Text})
	u := Update{UpdateID: s.nextUpdate, Message: &m}
	s.nextUpdate++
	s.queue = append(s.queue, u)
	s.history[u.UpdateID] = u
	s.changes.Changed()
	out.UpdateID, out.MessageID = u.UpdateID, m.MessageID
	return out
}

// Redeliver queues an update again, in update order, as Telegram does
// for a bot that did not confirm it.
func (s *Server) Redeliver(updateID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.history[updateID]
	if !ok {
		panic(fmt.Sprintf("telegramtest: no update %d to redeliver", updateID))
	}
	s.queue = append(s.queue, u)
	slices.SortStableFunc(s.queue, func(a, b Update) int { return cmp.Compare(a.UpdateID, b.UpdateID) })
	if s.confirmed > updateID {
		s.confirmed = updateID
	}
	s.changes.Changed()
}

// AddFile stores a file and returns its file_id, for getFile.
func (s *Server) AddFile(data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFileLocked(data, "documents").id
}

func (s *Server) addFileLocked(data []byte, dir string) *file {
	n := len(s.files) + 1
	f := &file{
		id:       fmt.Sprintf("AgAC%s-%d", rand.Text()[:12], n),
		uniqueID: fmt.Sprintf("AQAD%d", n),
		path:     fmt.Sprintf("%s/file_%d.jpg", dir, n),
		data:     data,
	}
	s.files[f.id] = f
	s.paths[f.path] = f
	return f
}

// AddFault makes a chosen call fail (see Fault).
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Nth < 1 {
		f.Nth = 1
	}
	s.faults = append(s.faults, &fault{Fault: f})
}

// RateLimitNth answers the nth call of method to a chat (counting from
// now, 1 being the next; an empty method counts every call to the chat)
// with 429 and retry_after seconds, penalising the chat: until the time
// has passed, every call to it gets 429 too.
func (s *Server) RateLimitNth(chatID int64, method string, nth, retryAfter int) {
	s.AddFault(Fault{ChatID: chatID, Method: method, Nth: nth, Code: 429,
		Description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), RetryAfter: retryAfter})
}

// ParseErrorNext answers the next formatted call of method to a chat with
// "can't parse entities".
func (s *Server) ParseErrorNext(chatID int64, method string) {
	s.AddFault(Fault{ChatID: chatID, Method: method, OnlyFormatted: true, Code: 400,
		Description: "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0"})
}

// ---- what tests read ----

// Messages returns the messages a chat shows now, in order: users' and the
// bot's, without deleted ones, with their last edits.
func (s *Server) Messages(chatID int64) []Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	var out []Msg
	for _, st := range c.msgs {
		if st.deleted {
			continue
		}
		m := Msg{ID: st.msg.MessageID, FromBot: st.msg.From != nil && st.msg.From.ID == s.Bot.ID,
			Text: st.msg.Text, Entities: st.msg.Entities, Raw: st.raw, ParseMode: st.mode,
			ThreadID: st.msg.MessageThreadID, Edits: st.edits, Photo: st.msg.Photo != nil, Reaction: st.reaction}
		if st.msg.From != nil {
			m.From = *st.msg.From
		}
		if st.msg.Photo != nil {
			m.Text, m.Entities = st.msg.Caption, st.msg.CaptionEntities
		}
		if st.msg.ReplyToMessage != nil {
			m.ReplyTo = st.msg.ReplyToMessage.MessageID
		}
		out = append(out, m)
	}
	return out
}

// BotMessages returns the bot's messages a chat shows now, in order.
func (s *Server) BotMessages(chatID int64) []Msg {
	var out []Msg
	for _, m := range s.Messages(chatID) {
		if m.FromBot {
			out = append(out, m)
		}
	}
	return out
}

// BotTexts returns the visible texts of the bot's messages in a chat.
func (s *Server) BotTexts(chatID int64) []string {
	var out []string
	for _, m := range s.BotMessages(chatID) {
		out = append(out, m.Text)
	}
	return out
}

// Drafts returns the drafts a private chat shows now, by draft id.
func (s *Server) Drafts(chatID int64) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range c.drafts {
		out[k] = v
	}
	return out
}

// Calls returns every call received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls that addressed a chat, in order.
func (s *Server) CallsTo(chatID int64) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.ChatID == chatID {
			out = append(out, c)
		}
	}
	return out
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

// Penalties returns the rate-limit penalties a chat got.
func (s *Server) Penalties(chatID int64) []Penalty {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[chatID]; c != nil {
		return slices.Clone(c.penalties)
	}
	return nil
}

// Commands returns the bot's commands as last set with setMyCommands.
func (s *Server) Commands() []BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// Confirmed returns the update offset the bot confirmed last: every update
// below it is gone from the server.
func (s *Server) Confirmed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// ---- chats ----

// chatLocked returns a chat's state, creating it. s.mu is held.
func (s *Server) chatLocked(chat Chat) *chatState {
	c := s.chats[chat.ID]
	if c == nil {
		c = &chatState{chat: chat, threads: map[int]bool{}, drafts: map[string]string{}}
		if chat.Type == "" {
			c.chat.Type = Private
		}
		s.chats[chat.ID] = c
	}
	return c
}

// AddChat makes a chat known, as if the bot had been added to it.
func (s *Server) AddChat(chat Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(chat)
}

// Upgrade turns a group into a supergroup with a new id, as Telegram does
// when a group grows: calls to the old id then fail with its new id in
// migrate_to_chat_id.
func (s *Server) Upgrade(groupID int64, supergroup Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(Chat{ID: groupID, Type: Group}).movedTo = supergroup.ID
	s.chatLocked(supergroup)
	s.changes.Changed()
}

// mentionRE finds @usernames and /commands, as Telegram's entity parser does.
var mentionRE = regexp.MustCompile(`(^|[^\p{L}\p{N}_/@])(@[A-Za-z0-9_]{5,32}|/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{5,32})?)`)

// detectEntities finds the mention and bot_command entities of a user's text.
func detectEntities(text string) []Entity {
	var out []Entity
	for _, m := range mentionRE.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[4], m[5]
		typ := "mention"
		if text[start] == '/' {
			typ = "bot_command"
		}
		out = append(out, Entity{Type: typ, Offset: UTF16Len(text[:start]), Length: UTF16Len(text[start:end])})
	}
	return out
}

// ---- HTTP ----

// apiError is an error answer.
type apiError struct {
	code        int
	description string
	retryAfter  int
	migrateTo   int64
	violation   bool // over a flood limit or during a penalty
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: 400, description: "Bad Request: " + fmt.Sprintf(format, args...)}
}

// params are a request's parameters.
type params map[string]string

func (p params) int64(name string) (int64, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(p[name]), 10, 64)
	return v, err == nil
}

// Down starts an outage of the whole Bot API, as when Telegram's front
// fails: every request is answered with status (502 Bad Gateway is
// nginx's page, as api.telegram.org answers then), or with status 0 is
// held without an answer until the outage ends or the client gives up.
// Up ends it.
func (s *Server) Down(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage == nil {
		s.outage = make(chan struct{})
	}
	s.outageCode = status
}

// Up ends an outage.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outage != nil {
		close(s.outage)
		s.outage = nil
	}
}

// down answers a request during an outage; it reports false without one.
func (s *Server) down(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	outage, code := s.outage, s.outageCode
	s.mu.Unlock()
	switch {
	case outage == nil:
		return false
	case code == 0:
		select {
		case <-outage:
		case <-r.Context().Done():
		case <-s.quit:
		}
		http.Error(w, "", http.StatusGatewayTimeout)
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n",
			code, http.StatusText(code), code, http.StatusText(code))
	}
	return true
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down(w, r) {
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.serveFile(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	if !ok {
		writeJSON(w, http.StatusNotFound, response{ErrorCode: 404, Description: "Not Found"})
		return
	}
	token, method, _ := strings.Cut(rest, "/")
	if token != s.Token {
		writeJSON(w, http.StatusUnauthorized, response{ErrorCode: 401, Description: "Unauthorized"})
		return
	}
	p, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, response{ErrorCode: 400, Description: "Bad Request: " + err.Error()})
		return
	}
	var result any
	var aerr *apiError
	switch strings.ToLower(method) {
	case "getme":
		result = s.Bot
		s.record(Call{Method: "getMe", Params: p})
	case "getupdates":
		var updates []Update
		updates, aerr = s.getUpdates(r.Context(), p)
		if applied := s.opts.Applied; len(updates) > 0 && applied != nil {
			applied("getUpdates", 0)
		}
		result = updates
	case "setmycommands":
		result, aerr = s.setMyCommands(p)
	case "getwebhookinfo", "setwebhook", "deletewebhook":
		result = s.webhookMethod(canonical(method), p)
	case "getfile":
		result, aerr = s.getFile(p)
	case "sendmessage", "editmessagetext", "sendmessagedraft", "deletemessage", "sendchataction", "setmessagereaction":
		method = canonical(method)
		result, aerr = s.chatMethod(method, p)
		if applied := s.opts.Applied; aerr == nil && applied != nil && method != "deleteMessage" && method != "sendChatAction" && method != "setMessageReaction" {
			chatID, _ := strconv.ParseInt(p["chat_id"], 10, 64)
			applied(method, chatID)
		}
	default:
		s.record(Call{Method: method, Params: p, Status: 404, Description: "Not Found"})
		writeJSON(w, http.StatusNotFound, response{ErrorCode: 404, Description: "Not Found"})
		return
	}
	if aerr != nil {
		resp := response{ErrorCode: aerr.code, Description: aerr.description}
		if aerr.retryAfter > 0 || aerr.migrateTo != 0 {
			resp.Parameters = &responseParameters{RetryAfter: aerr.retryAfter, MigrateToChatID: aerr.migrateTo}
		}
		writeJSON(w, aerr.code, resp)
		return
	}
	writeJSON(w, http.StatusOK, response{OK: true, Result: result})
}

// canonical spells the chat methods as the API documents them.
func canonical(method string) string {
	for _, m := range []string{"sendMessage", "editMessageText", "sendMessageDraft", "deleteMessage", "sendChatAction", "setMessageReaction", "getWebhookInfo", "setWebhook", "deleteWebhook"} {
		if strings.EqualFold(m, method) {
			return m
		}
	}
	return method
}

func writeJSON(w http.ResponseWriter, status int, v response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readParams reads the parameters as the API takes them: from the query
// string, a URL-encoded or multipart form, or a JSON object.
func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return p, nil
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("can't parse JSON object")
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(raw)
			}
		}
	case "multipart/form-data":
		// Clients send an empty body, not even a closing boundary, for a
		// method without parameters; the API takes that.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(body) == 0 {
			return p, nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	}
	return p, nil
}

// record adds a call to the log.
func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(c)
}

func (s *Server) recordLocked(c Call) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	if c.Status == 0 {
		c.Status = 200
	}
	s.calls = append(s.calls, c)
	s.changes.Changed()
}

// ---- getUpdates ----

func (s *Server) getUpdates(ctx context.Context, p params) ([]Update, *apiError) {
	offset, _ := p.int64("offset")
	limit, ok := p.int64("limit")
	if !ok || limit < 1 || limit > 100 {
		limit = 100
	}
	timeout, _ := p.int64("timeout")
	deadline := time.Now().Add(time.Duration(max(timeout, 0)) * time.Second)

	s.mu.Lock()
	if s.webhook != "" {
		// The Bot API's text for getUpdates while a webhook is set.
		const conflict = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
		s.recordLocked(Call{Method: "getUpdates", Params: p, Status: 409, Description: conflict})
		s.mu.Unlock()
		return nil, &apiError{code: 409, description: conflict}
	}
	s.pollGen++
	gen := s.pollGen
	s.recordLocked(Call{Method: "getUpdates", Params: p})
	if offset > 0 {
		if offset > s.confirmed {
			s.confirmed = offset
		}
		s.queue = slices.DeleteFunc(s.queue, func(u Update) bool { return u.UpdateID < offset })
	}
	s.changes.Changed() // wakes an older poll, which then ends with a conflict
	s.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.pollGen != gen {
			s.mu.Unlock()
			return nil, &apiError{code: 409, description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		}
		var out []Update
		for _, u := range s.queue {
			if u.UpdateID >= offset && len(out) < int(limit) {
				out = append(out, u)
			}
		}
		ch := s.changes.Next()
		s.mu.Unlock()
		if len(out) > 0 || !time.Now().Before(deadline) {
			if out == nil {
				out = []Update{}
			}
			return out, nil
		}
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			return []Update{}, nil
		case <-s.quit:
			return []Update{}, nil
		}
	}
}

// ---- commands and files ----

var commandRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// webhookMethod serves getWebhookInfo (the WebhookInfo object, its url
// empty without a webhook), setWebhook and deleteWebhook (true).
func (s *Server) webhookMethod(method string, p params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(Call{Method: method, Params: p})
	switch method {
	case "setWebhook":
		s.webhook = p["url"]
	case "deleteWebhook":
		s.webhook = ""
	default:
		return map[string]any{"url": s.webhook, "has_custom_certificate": false, "pending_update_count": len(s.queue)}
	}
	return true
}

func (s *Server) setMyCommands(p params) (any, *apiError) {
	var cmds []BotCommand
	err := json.Unmarshal([]byte(p["commands"]), &cmds)
	var aerr *apiError
	switch {
	case err != nil:
		aerr = badRequest("can't parse commands JSON object")
	case len(cmds) > 100:
		aerr = badRequest("too many commands")
	}
	for _, c := range cmds {
		if aerr != nil {
			break
		}
		if !commandRE.MatchString(c.Command) {
			aerr = badRequest("BOT_COMMAND_INVALID")
		} else if n := utf8.RuneCountInString(c.Description); n < 1 || n > 256 {
			aerr = badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "setMyCommands", Params: p}
	if aerr != nil {
		call.Status, call.Description = aerr.code, aerr.description
		s.recordLocked(call)
		return nil, aerr
	}
	s.commands = cmds
	s.recordLocked(call)
	return true, nil
}

func (s *Server) getFile(p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "getFile", Params: p}
	f := s.files[p["file_id"]]
	var aerr *apiError
	switch {
	case f == nil:
		aerr = badRequest("invalid file_id")
	case len(f.data) > MaxDownloadSize:
		aerr = badRequest("file is too big")
	}
	if aerr != nil {
		call.Status, call.Description = aerr.code, aerr.description
		s.recordLocked(call)
		return nil, aerr
	}
	s.recordLocked(call)
	return File{FileID: f.id, FileUniqueID: f.uniqueID, FileSize: int64(len(f.data)), FilePath: f.path}, nil
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rest string) {
	token, path, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	f := s.paths[path]
	call := Call{Method: "download", Params: params{"file_path": path}}
	if token != s.Token || f == nil {
		call.Status, call.Description = 404, "Not Found"
	}
	s.recordLocked(call)
	s.mu.Unlock()
	if call.Status == 404 {
		writeJSON(w, http.StatusNotFound, response{ErrorCode: 404, Description: "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	_, _ = w.Write(f.data)
}

// ---- chat methods ----

// counted are the methods the flood limits count as messages.
var counted = map[string]bool{"sendMessage": true, "editMessageText": true, "sendMessageDraft": true, "deleteMessage": true}

// chatMethod runs a method that addresses a chat, after the rate limits
// and faults.
func (s *Server) chatMethod(method string, p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	call := Call{Method: method, At: now, Params: p}
	result, aerr := s.chatMethodLocked(method, p, now, &call)
	if aerr != nil {
		call.Status, call.Description, call.RetryAfter = aerr.code, aerr.description, aerr.retryAfter
		if aerr.violation {
			s.violations = append(s.violations, call)
		}
	}
	s.recordLocked(call)
	return result, aerr
}

func (s *Server) chatMethodLocked(method string, p params, now time.Time, call *Call) (any, *apiError) {
	c, aerr := s.findChatLocked(p["chat_id"])
	if aerr != nil {
		return nil, aerr
	}
	call.ChatID = c.chat.ID
	if c.movedTo != 0 {
		return nil, &apiError{code: 400, description: "Bad Request: group chat was upgraded to a supergroup chat", migrateTo: c.movedTo}
	}
	if now.Before(c.blocked) {
		aerr := tooMany(c.blocked.Sub(now))
		aerr.violation = true
		return nil, aerr
	}
	for i, f := range s.faults {
		if (f.ChatID != 0 && f.ChatID != c.chat.ID) || (f.Method != "" && f.Method != method) ||
			(f.OnlyFormatted && p["parse_mode"] == "") {
			continue
		}
		if f.seen++; f.seen < f.Nth {
			continue
		}
		s.faults = slices.Delete(s.faults, i, i+1)
		if f.Code == 429 {
			s.penaliseLocked(c, now, time.Duration(f.RetryAfter)*time.Second)
		}
		return nil, &apiError{code: f.Code, description: f.Description, retryAfter: f.RetryAfter}
	}
	if aerr := s.floodLocked(c, method, now); aerr != nil {
		return nil, aerr
	}
	switch method {
	case "sendMessage":
		return s.sendMessageLocked(c, p, now)
	case "editMessageText":
		return s.editMessageTextLocked(c, p, now)
	case "sendMessageDraft":
		return s.sendMessageDraftLocked(c, p)
	case "deleteMessage":
		return s.deleteMessageLocked(c, p)
	case "setMessageReaction":
		return s.setMessageReactionLocked(c, p)
	default:
		return s.sendChatActionLocked(c, p)
	}
}

// floodLocked takes a call's tokens from the flood buckets it counts
// against; when one is empty it takes none and answers 429 with the
// whole seconds until all hold a token, penalising the chat until then.
func (s *Server) floodLocked(c *chatState, method string, now time.Time) *apiError {
	fl := s.opts.Flood
	if fl == nil || (!counted[method] && method != "sendChatAction") {
		return nil
	}
	if s.botFlood == nil {
		s.botFlood = fl.Bot.Full(now)
	}
	buckets := []*platform.Tokens{s.botFlood}
	if counted[method] {
		if c.flood == nil {
			c.flood = []*platform.Tokens{fl.Chat.Full(now)}
			if c.chat.Type == Group || c.chat.Type == Supergroup {
				c.flood = append(c.flood, fl.Group.Full(now))
			}
		}
		buckets = append(buckets, c.flood...)
	}
	var wait time.Duration
	for _, b := range buckets {
		wait = max(wait, b.When(now, 1).Sub(now))
	}
	if wait <= 0 {
		for _, b := range buckets {
			b.Take(now, 1)
		}
		return nil
	}
	retry := time.Duration(math.Ceil(wait.Seconds())) * time.Second
	s.penaliseLocked(c, now, retry)
	aerr := tooMany(retry)
	aerr.violation = true
	return aerr
}

// Violations are the calls made over a flood limit or during a penalty:
// none, for a client that paces itself.
func (s *Server) Violations() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// tooMany is the 429 answer for a wait of d.
func tooMany(d time.Duration) *apiError {
	secs := max(int(math.Ceil(d.Seconds())), 1)
	return &apiError{code: 429, description: fmt.Sprintf("Too Many Requests: retry after %d", secs), retryAfter: secs}
}

func (s *Server) penaliseLocked(c *chatState, now time.Time, d time.Duration) {
	until := now.Add(d)
	if until.After(c.blocked) {
		c.blocked = until
	}
	c.penalties = append(c.penalties, Penalty{ChatID: c.chat.ID, From: now, Until: until})
}

func (s *Server) findChatLocked(v string) (*chatState, *apiError) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, badRequest("chat_id is empty")
	}
	if name, ok := strings.CutPrefix(v, "@"); ok {
		for _, c := range s.chats {
			if strings.EqualFold(c.chat.Username, name) {
				return c, nil
			}
		}
		return nil, badRequest("chat not found")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, badRequest("chat not found")
	}
	c := s.chats[id]
	if c == nil {
		return nil, badRequest("chat not found")
	}
	return c, nil
}

// parseText checks and parses a text as the API does: its visible text and
// entities.
func parseText(text, mode string, allowEmpty bool) (string, []Entity, *apiError) {
	if !utf8.ValidString(text) {
		return "", nil, badRequest("strings must be encoded in UTF-8")
	}
	visible, entities := text, []Entity(nil)
	switch strings.ToLower(mode) {
	case "":
	case "html":
		var err error
		visible, entities, err = ParseHTML(text)
		if err != nil {
			return "", nil, badRequest("%s", err.Error())
		}
	default:
		return "", nil, badRequest("unsupported parse_mode")
	}
	if !allowEmpty && strings.TrimSpace(visible) == "" {
		return "", nil, badRequest("message text is empty")
	}
	if UTF16Len(visible) > MaxMessageLength {
		return "", nil, badRequest("message is too long")
	}
	return visible, entities, nil
}

func (s *Server) findMessageLocked(c *chatState, id int) *stored {
	for _, st := range c.msgs {
		if st.msg.MessageID == id && !st.deleted {
			return st
		}
	}
	return nil
}

func (s *Server) threadLocked(c *chatState, p params) (int, *apiError) {
	v, ok := p.int64("message_thread_id")
	if !ok || v == 0 {
		return 0, nil
	}
	if c.chat.IsForum && !c.threads[int(v)] {
		return 0, badRequest("message thread not found")
	}
	return int(v), nil
}

func (s *Server) sendMessageLocked(c *chatState, p params, now time.Time) (any, *apiError) {
	visible, entities, aerr := parseText(p["text"], p["parse_mode"], false)
	if aerr != nil {
		return nil, aerr
	}
	thread, aerr := s.threadLocked(c, p)
	if aerr != nil {
		return nil, aerr
	}
	var reply *Message
	if raw := p["reply_parameters"]; raw != "" {
		var rp struct {
			MessageID                int  `json:"message_id"`
			AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
		}
		if err := json.Unmarshal([]byte(raw), &rp); err != nil {
			return nil, badRequest("can't parse reply parameters JSON object")
		}
		if st := s.findMessageLocked(c, rp.MessageID); st != nil {
			m := st.msg
			m.ReplyToMessage = nil
			reply = &m
		} else if !rp.AllowSendingWithoutReply {
			return nil, badRequest("message to be replied not found")
		}
	}
	c.nextID++
	bot := s.Bot
	m := Message{MessageID: c.nextID, From: &bot, Chat: c.chat, Date: now.Unix(),
		Text: visible, Entities: entities, ReplyToMessage: reply}
	if thread != 0 {
		m.MessageThreadID = thread
		m.IsTopicMessage = c.chat.IsForum
	}
	c.msgs = append(c.msgs, &stored{msg: m, raw: p["text"], mode: p["parse_mode"]})
	clear(c.drafts) // a sent message replaces the drafts
	return m, nil
}

func (s *Server) editMessageTextLocked(c *chatState, p params, now time.Time) (any, *apiError) {
	id, ok := p.int64("message_id")
	if !ok {
		return nil, badRequest("message identifier is not specified")
	}
	visible, entities, aerr := parseText(p["text"], p["parse_mode"], false)
	if aerr != nil {
		return nil, aerr
	}
	st := s.findMessageLocked(c, int(id))
	switch {
	case st == nil:
		return nil, badRequest("message to edit not found")
	case st.msg.From == nil || st.msg.From.ID != s.Bot.ID:
		return nil, badRequest("message can't be edited")
	case st.msg.Text == visible && slices.Equal(st.msg.Entities, entities):
		return nil, badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	st.msg.Text, st.msg.Entities, st.msg.EditDate = visible, entities, now.Unix()
	st.raw, st.mode = p["text"], p["parse_mode"]
	st.edits++
	return st.msg, nil
}

func (s *Server) sendMessageDraftLocked(c *chatState, p params) (any, *apiError) {
	if c.chat.Type != Private {
		return nil, badRequest("TEXTDRAFT_PEER_INVALID")
	}
	id, ok := p.int64("draft_id")
	if !ok || id == 0 || id > math.MaxInt32 || id < math.MinInt32 {
		return nil, badRequest("invalid draft_id")
	}
	visible, _, aerr := parseText(p["text"], p["parse_mode"], true)
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := s.threadLocked(c, p); aerr != nil {
		return nil, aerr
	}
	c.drafts[strconv.FormatInt(id, 10)] = visible
	return true, nil
}

func (s *Server) deleteMessageLocked(c *chatState, p params) (any, *apiError) {
	id, ok := p.int64("message_id")
	if !ok {
		return nil, badRequest("message identifier is not specified")
	}
	st := s.findMessageLocked(c, int(id))
	switch {
	case st == nil:
		return nil, badRequest("message to delete not found")
	case c.chat.Type != Private && (st.msg.From == nil || st.msg.From.ID != s.Bot.ID):
		return nil, badRequest("message can't be deleted")
	}
	st.deleted = true
	return true, nil
}

// reactionEmoji are the emoji a reaction may be, as the Bot API's
// ReactionTypeEmoji lists them (core.telegram.org/bots/api#reactiontypeemoji).
var reactionEmoji = map[string]bool{}

func init() {
	for _, e := range strings.Fields("👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡") {
		reactionEmoji[e] = true
	}
}

// setMessageReactionLocked sets the bot's reaction on a message: one emoji
// of the allowed ones (a bot may set one), or none to clear it.
func (s *Server) setMessageReactionLocked(c *chatState, p params) (any, *apiError) {
	id, ok := p.int64("message_id")
	if !ok {
		return nil, badRequest("message identifier is not specified")
	}
	st := s.findMessageLocked(c, int(id))
	if st == nil {
		return nil, badRequest("message to react not found")
	}
	var reactions []struct {
		Type  string `json:"type"`
		Emoji string `json:"emoji"`
	}
	if raw := p["reaction"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &reactions); err != nil {
			return nil, badRequest("can't parse reaction types JSON object")
		}
	}
	switch {
	case len(reactions) > 1:
		return nil, badRequest("REACTIONS_TOO_MANY")
	case len(reactions) == 1 && (reactions[0].Type != "emoji" || !reactionEmoji[reactions[0].Emoji]):
		return nil, badRequest("REACTION_INVALID")
	case len(reactions) == 1:
		st.reaction = reactions[0].Emoji
	default:
		st.reaction = ""
	}
	return true, nil
}

var chatActions = map[string]bool{"typing": true, "upload_photo": true, "record_video": true, "upload_video": true,
	"record_voice": true, "upload_voice": true, "upload_document": true, "choose_sticker": true,
	"find_location": true, "record_video_note": true, "upload_video_note": true}

func (s *Server) sendChatActionLocked(c *chatState, p params) (any, *apiError) {
	if !chatActions[p["action"]] {
		return nil, badRequest("wrong parameter action in request")
	}
	if _, aerr := s.threadLocked(c, p); aerr != nil {
		return nil, aerr
	}
	return true, nil
}
