package discordtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"github.com/herald-chat/herald/internal/memnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	discordgo.APIVersion = "10"
	goleak.VerifyTestMain(m)
}

var (
	alice = User{ID: "100000000000000001", Username: "alice", GlobalName: "Alice"}
	bob   = User{ID: "100000000000000002", Username: "bob"}
)

const intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages | discordgo.IntentMessageContent

// rewrite sends discordgo's https://discord.com/api/v9/ calls to the fake,
// as the adapter does with its base URL.
type rewrite struct {
	base http.RoundTripper
	url  string
}

func (t rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if rest, ok := strings.CutPrefix(r.URL.String(), "https://discord.com/api/v9/"); ok {
		if rest == "gateway" {
			rest = "gateway/bot"
		}
		u, err := url.Parse(t.url + "/api/v10/" + rest)
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.URL, r.Host = u, u.Host
	}
	return t.base.RoundTrip(r)
}

// events collects what a session receives.
type events struct {
	ready        chan *discordgo.Ready
	resumed      chan *discordgo.Resumed
	guilds       chan *discordgo.GuildCreate
	messages     chan *discordgo.MessageCreate
	threads      chan *discordgo.ThreadCreate
	interactions chan *discordgo.InteractionCreate
	disconnects  chan struct{}
}

// newSession makes a discordgo session for the fake over transport (nil:
// a loopback one of its own), as the adapter would: the token with
// "Bot ", no retries on 429 (the adapter paces itself), events in order.
func newSession(t *testing.T, srv *Server, transport http.RoundTripper) (*discordgo.Session, *events) {
	t.Helper()
	if transport == nil {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		transport = tr
	}
	dg, err := discordgo.New("Bot " + srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	dg.Client = &http.Client{Transport: rewrite{base: transport, url: srv.URL}}
	dg.ShouldRetryOnRateLimit = false
	dg.SyncEvents = true
	dg.LogLevel = -1
	// The test reconnects itself (see reopen), as the adapter does:
	// discordgo's own loop would outlive the test.
	dg.ShouldReconnectOnError = false
	// The state would write into the events the test reads.
	dg.StateEnabled = false
	dg.Identify.Intents = intents
	ev := &events{
		ready:        make(chan *discordgo.Ready, 10),
		resumed:      make(chan *discordgo.Resumed, 10),
		guilds:       make(chan *discordgo.GuildCreate, 10),
		messages:     make(chan *discordgo.MessageCreate, 100),
		threads:      make(chan *discordgo.ThreadCreate, 10),
		interactions: make(chan *discordgo.InteractionCreate, 10),
		disconnects:  make(chan struct{}, 10),
	}
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.Ready) { ev.ready <- e })
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.Resumed) { ev.resumed <- e })
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.GuildCreate) { ev.guilds <- e })
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.MessageCreate) { ev.messages <- e })
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.ThreadCreate) { ev.threads <- e })
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.InteractionCreate) { ev.interactions <- e })
	dg.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) { ev.disconnects <- struct{}{} })
	return dg, ev
}

// open connects a session; it is closed when the test ends.
func open(t *testing.T, dg *discordgo.Session) {
	t.Helper()
	if err := dg.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { dg.Close() })
}

// settle waits until a session's connection has sent its first heartbeat.
// discordgo's heartbeat goroutine sends one as soon as it starts, without
// looking whether its connection is still open; if that send fails it
// closes the session, which by then may hold the next connection. A test
// that closes a connection waits for that first heartbeat before.
func settle(t *testing.T, srv *Server, before int) {
	t.Helper()
	waitFor(t, srv, "the connection's first heartbeat", func() bool { return srv.Heartbeats() > before })
}

// reopen connects a session again once its connection closed, resuming
// it, as the adapter does (discordgo's own reconnection loop is off).
func reopen(t *testing.T, srv *Server, dg *discordgo.Session, ev *events) {
	t.Helper()
	recv(t, ev.disconnects, "the disconnection")
	hb := srv.Heartbeats()
	if err := dg.Open(); err != nil {
		t.Fatalf("Open again: %v", err)
	}
	settle(t, srv, hb)
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// nextMessage is the next MESSAGE_CREATE with this content; the bot's own
// messages come back too, and are skipped unless asked for.
func nextMessage(t *testing.T, ev *events, content string) *discordgo.MessageCreate {
	t.Helper()
	for {
		m := recv(t, ev.messages, "MESSAGE_CREATE "+strconv.Quote(content))
		if m.Content == content {
			return m
		}
	}
}

func waitFor(t *testing.T, srv *Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func newServer(t *testing.T, opts Options) *Server {
	srv := NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddGuild("200000000000000001", "Herald HQ",
		Channel{ID: "300000000000000001", Name: "general", Type: ChannelGuildText},
		Channel{ID: "300000000000000002", Name: "random", Type: ChannelGuildText})
	srv.AddChannel(Channel{ID: "300000000000000009", Type: ChannelDM, Recipient: &alice})
	return srv
}

const (
	general = "300000000000000001"
	random  = "300000000000000002"
	dm      = "300000000000000009"
	guildID = "200000000000000001"
)

// restError is the Discord error of a REST call, failing if it is not one.
func restError(t *testing.T, err error) *discordgo.RESTError {
	t.Helper()
	var re *discordgo.RESTError
	if !errors.As(err, &re) || re.Message == nil {
		t.Fatalf("want a REST error with a message, got %v", err)
	}
	return re
}

func pngOf(w, h int) []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)))
	return b.Bytes()
}

// raw makes an HTTP call to the fake and decodes its JSON answer.
func raw(t *testing.T, srv *Server, method, path, auth string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp, out
}

func TestOpenReadyAndGuilds(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	ready := recv(t, ev.ready, "READY")
	if ready.User == nil || ready.User.ID != srv.Bot.ID || !ready.User.Bot || ready.Version != 10 || ready.SessionID == "" {
		t.Errorf("READY %+v", ready)
	}
	if ready.Application == nil || ready.Application.ID != srv.ApplicationID || len(ready.Guilds) != 1 || !ready.Guilds[0].Unavailable {
		t.Errorf("READY application/guilds %+v %+v", ready.Application, ready.Guilds)
	}
	g := recv(t, ev.guilds, "GUILD_CREATE")
	if g.ID != guildID || g.Name != "Herald HQ" || len(g.Channels) != 2 || g.Channels[0].ID != general || g.Channels[0].Name != "general" {
		t.Errorf("GUILD_CREATE %+v", g.Guild)
	}
	if srv.Intents() != int(intents) || srv.GatewayVersion() != "10" || srv.Identifies() != 1 || srv.Connections() != 1 {
		t.Errorf("intents %d, v %q, identifies %d, connections %d", srv.Intents(), srv.GatewayVersion(), srv.Identifies(), srv.Connections())
	}
	if id, connected := srv.SessionID(); id != ready.SessionID || !connected {
		t.Errorf("session %q %v, READY said %q", id, connected, ready.SessionID)
	}
	waitFor(t, srv, "a heartbeat", func() bool { return srv.Heartbeats() > 0 })

	me, err := dg.User("@me")
	if err != nil || me.ID != srv.Bot.ID || me.Username != "herald" {
		t.Errorf("GET /users/@me: %+v %v", me, err)
	}
	app, err := dg.Application("@me")
	if err != nil || app.ID != srv.ApplicationID {
		t.Errorf("GET /oauth2/applications/@me: %+v %v", app, err)
	}
	ch, err := dg.Channel(dm)
	if err != nil || ch.Type != discordgo.ChannelTypeDM || len(ch.Recipients) != 1 || ch.Recipients[0].ID != alice.ID {
		t.Errorf("GET DM channel: %+v %v", ch, err)
	}
	_, err = dg.Channel("999")
	if re := restError(t, err); re.Response.StatusCode != 404 || re.Message.Code != 10003 || re.Message.Message != "Unknown Channel" {
		t.Errorf("unknown channel: %v", err)
	}
	// A guild the bot joins while connected comes at once.
	srv.AddGuild("200000000000000002", "Second", Channel{ID: "300000000000000021", Name: "lobby"})
	if g := recv(t, ev.guilds, "second GUILD_CREATE"); g.ID != "200000000000000002" || len(g.Channels) != 1 {
		t.Errorf("second GUILD_CREATE %+v", g.Guild)
	}
}

func TestInjectDelivers(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	recv(t, ev.ready, "READY")
	img := pngOf(3, 2)
	first := srv.Inject(Incoming{ChannelID: general, Author: bob, Content: "hello"})
	in := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "<@" + srv.Bot.ID + "> look <@" + bob.ID + "> <@555>",
		ReplyTo: first.ID, Attachments: []Attachment{{Filename: "a b.png", ContentType: "image/png", Data: img}}})
	m := nextMessage(t, ev, in.Content)
	if m.ID != in.ID || m.ChannelID != general || m.GuildID != guildID || m.Member == nil || m.Author.ID != alice.ID || m.Author.GlobalName != "Alice" {
		t.Errorf("MESSAGE_CREATE %+v", m.Message)
	}
	var mentioned []string
	for _, u := range m.Mentions {
		mentioned = append(mentioned, u.ID)
	}
	if !slices.Equal(mentioned, []string{srv.Bot.ID, bob.ID}) {
		t.Errorf("mentions %v, want the bot and bob (known), not 555", mentioned)
	}
	if m.Type != discordgo.MessageTypeReply || m.MessageReference == nil || m.MessageReference.MessageID != first.ID ||
		m.ReferencedMessage == nil || m.ReferencedMessage.Content != "hello" {
		t.Errorf("reply: type %d ref %+v referenced %+v", m.Type, m.MessageReference, m.ReferencedMessage)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments %+v", m.Attachments)
	}
	a := m.Attachments[0]
	if a.Filename != "a b.png" || a.ContentType != "image/png" || a.Size != len(img) || a.Width != 3 || a.Height != 2 || a.ID == "" {
		t.Errorf("attachment %+v", a)
	}
	resp, err := http.Get(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(data, img) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("attachment download: %d bytes, %s", len(data), resp.Header.Get("Content-Type"))
	}
	if !strings.HasPrefix(a.URL, srv.URL+"/attachments/"+general+"/") {
		t.Errorf("attachment url %s", a.URL)
	}
	// Snowflakes grow with time.
	if !snowflakeLess(first.ID, in.ID) {
		t.Errorf("ids %s then %s", first.ID, in.ID)
	}
	// A DM has no guild.
	d := srv.Inject(Incoming{ChannelID: dm, Author: alice, Content: "psst"})
	if got := nextMessage(t, ev, "psst"); got.GuildID != "" || got.Member != nil || got.ID != d.ID {
		t.Errorf("DM MESSAGE_CREATE %+v", got.Message)
	}
	// The messages are readable over REST too.
	msgs, err := dg.ChannelMessages(general, 10, "", "", "")
	if err != nil || len(msgs) != 2 || msgs[0].ID != in.ID || msgs[1].ID != first.ID {
		t.Errorf("GET messages: %v %v", msgs, err)
	}
}

// Without MESSAGE_CONTENT, guild messages arrive empty unless they mention
// the bot; DMs keep theirs.
func TestMessageContentIntent(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	dg.Identify.Intents = intents &^ discordgo.IntentMessageContent
	open(t, dg)
	recv(t, ev.ready, "READY")
	srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "secret", Attachments: []Attachment{{Filename: "x.txt", Data: []byte("x")}}})
	if m := recv(t, ev.messages, "MESSAGE_CREATE"); m.Content != "" || len(m.Attachments) != 0 {
		t.Errorf("content without the intent: %q %v", m.Content, m.Attachments)
	}
	srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "hey <@" + srv.Bot.ID + ">"})
	if m := recv(t, ev.messages, "MESSAGE_CREATE"); m.Content == "" {
		t.Error("a mention of the bot lost its content")
	}
	srv.Inject(Incoming{ChannelID: dm, Author: alice, Content: "dm text"})
	if m := recv(t, ev.messages, "MESSAGE_CREATE"); m.Content != "dm text" {
		t.Errorf("DM content %q", m.Content)
	}
}

func TestSendEditDeleteReact(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	recv(t, ev.ready, "READY")
	q := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "question"})
	sent, err := dg.ChannelMessageSendComplex(general, &discordgo.MessageSend{Content: "answer", Reference: &discordgo.MessageReference{MessageID: q.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Author.ID != srv.Bot.ID || sent.MessageReference == nil || sent.MessageReference.MessageID != q.ID || sent.Type != discordgo.MessageTypeReply {
		t.Errorf("sent %+v", sent)
	}
	// The bot's own message comes back on the gateway.
	if echo := nextMessage(t, ev, "answer"); echo.Author.ID != srv.Bot.ID {
		t.Errorf("echo author %s", echo.Author.ID)
	}
	bm := srv.BotMessages(general)
	if len(bm) != 1 || bm[0].Content != "answer" || bm[0].ReplyTo != q.ID || bm[0].AllowedMentions != nil {
		t.Fatalf("bot messages %+v", bm)
	}
	if !slices.Equal(bm[0].Pings, []string{alice.ID}) {
		t.Errorf("a reply without allowed_mentions pings its author: %v", bm[0].Pings)
	}
	edited, err := dg.ChannelMessageEdit(general, sent.ID, "answer, edited")
	if err != nil || edited.Content != "answer, edited" || edited.EditedTimestamp == nil {
		t.Fatalf("edit: %+v %v", edited, err)
	}
	if bm := srv.BotMessages(general); bm[0].Content != "answer, edited" || bm[0].Edits != 1 {
		t.Errorf("after the edit %+v", bm)
	}
	_, err = dg.ChannelMessageEdit(general, q.ID, "not mine")
	if re := restError(t, err); re.Response.StatusCode != 403 || re.Message.Code != 50005 {
		t.Errorf("editing a user's message: %v", err)
	}
	_, err = dg.ChannelMessageEdit(general, "12345", "x")
	if re := restError(t, err); re.Response.StatusCode != 404 || re.Message.Code != 10008 || re.Message.Message != "Unknown Message" {
		t.Errorf("editing an unknown message: %v", err)
	}
	_, err = dg.ChannelMessageSend(general, "  ")
	if re := restError(t, err); re.Response.StatusCode != 400 || re.Message.Code != 50006 || re.Message.Message != "Cannot send an empty message" {
		t.Errorf("empty message: %v", err)
	}
	_, err = dg.ChannelMessageSendComplex(general, &discordgo.MessageSend{Content: "x", Reference: &discordgo.MessageReference{MessageID: "777"}})
	if re := restError(t, err); re.Message.Code != 50035 || !strings.Contains(string(re.ResponseBody), "message_reference") {
		t.Errorf("reply to an unknown message: %v", err)
	}
	no := false
	if m, err := dg.ChannelMessageSendComplex(general, &discordgo.MessageSend{Content: "x", Reference: &discordgo.MessageReference{MessageID: "777", FailIfNotExists: &no}}); err != nil || m.MessageReference != nil {
		t.Errorf("fail_if_not_exists false: %+v %v", m, err)
	}

	// 2000 code points pass (8000 bytes, 4000 UTF-16 units), 2001 do not.
	long := strings.Repeat("😀", 2000)
	if _, err := dg.ChannelMessageSend(general, long); err != nil {
		t.Errorf("2000 code points: %v", err)
	}
	_, err = dg.ChannelMessageSend(general, long+"x")
	re := restError(t, err)
	var body map[string]any
	_ = json.Unmarshal(re.ResponseBody, &body)
	want := `{"code":50035,"errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}},"message":"Invalid Form Body"}`
	if got, _ := json.Marshal(body); re.Response.StatusCode != 400 || string(got) != want {
		t.Errorf("2001 code points: %d %s", re.Response.StatusCode, got)
	}
	_, err = dg.ChannelMessageEdit(general, sent.ID, long+"x")
	if re := restError(t, err); re.Message.Code != 50035 {
		t.Errorf("editing to 2001 code points: %v", err)
	}

	// Reactions, URL-escaped, and typing.
	if err := dg.MessageReactionAdd(general, q.ID, "👀"); err != nil {
		t.Fatal(err)
	}
	if err := dg.MessageReactionAdd(general, q.ID, "✅"); err != nil {
		t.Fatal(err)
	}
	if err := dg.MessageReactionRemove(general, q.ID, "👀", "@me"); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(general)[0]; !slices.Equal(m.Reactions, []string{"✅"}) {
		t.Errorf("reactions %v", m.Reactions)
	}
	if err := dg.ChannelTyping(general); err != nil || len(srv.Typing(general)) != 1 {
		t.Errorf("typing: %v %v", err, srv.Typing(general))
	}

	if err := dg.ChannelMessageDelete(general, sent.ID); err != nil {
		t.Fatal(err)
	}
	for _, m := range srv.Messages(general) {
		if m.ID == sent.ID {
			t.Error("deleted message still shown")
		}
	}
	err = dg.ChannelMessageDelete(general, sent.ID)
	if re := restError(t, err); re.Message.Code != 10008 {
		t.Errorf("second delete: %v", err)
	}
	calls := srv.CallsTo(general)
	if len(calls) == 0 || calls[0].Route != RouteCreateMessage || calls[0].Status != 200 || calls[0].At.IsZero() || !strings.Contains(string(calls[0].Body), `"answer"`) {
		t.Errorf("first call %+v", calls[0])
	}
}

func TestAllowedMentionsPings(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, _ := newSession(t, srv, nil)
	send := func(ms *discordgo.MessageSend) Message {
		t.Helper()
		m, err := dg.ChannelMessageSendComplex(general, ms)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range srv.Messages(general) {
			if x.ID == m.ID {
				return x
			}
		}
		t.Fatal("sent message not shown")
		return Message{}
	}
	content := "@everyone hi <@123> and <@&456>"
	if m := send(&discordgo.MessageSend{Content: content}); !slices.Equal(m.Pings, []string{"everyone", "123", "456"}) {
		t.Errorf("without allowed_mentions: %v", m.Pings)
	}
	m := send(&discordgo.MessageSend{Content: content, AllowedMentions: &discordgo.MessageAllowedMentions{
		Parse: []discordgo.AllowedMentionType{}, Users: []string{"123"}}})
	if !slices.Equal(m.Pings, []string{"123"}) || m.AllowedMentions == nil || !slices.Equal(m.AllowedMentions.Users, []string{"123"}) {
		t.Errorf("users [123]: %v %+v", m.Pings, m.AllowedMentions)
	}
	if m := send(&discordgo.MessageSend{Content: content, AllowedMentions: &discordgo.MessageAllowedMentions{}}); len(m.Pings) != 0 {
		t.Errorf("empty allowed_mentions: %v", m.Pings)
	}
	if m := send(&discordgo.MessageSend{Content: content, AllowedMentions: &discordgo.MessageAllowedMentions{
		Parse: []discordgo.AllowedMentionType{discordgo.AllowedMentionTypeEveryone, discordgo.AllowedMentionTypeRoles}}}); !slices.Equal(m.Pings, []string{"everyone", "456"}) {
		t.Errorf("parse everyone, roles: %v", m.Pings)
	}
	q := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "q"})
	if m := send(&discordgo.MessageSend{Content: "a", Reference: &discordgo.MessageReference{MessageID: q.ID},
		AllowedMentions: &discordgo.MessageAllowedMentions{RepliedUser: true}}); !slices.Equal(m.Pings, []string{alice.ID}) {
		t.Errorf("replied_user: %v", m.Pings)
	}
	if m := send(&discordgo.MessageSend{Content: "a", Reference: &discordgo.MessageReference{MessageID: q.ID},
		AllowedMentions: &discordgo.MessageAllowedMentions{}}); len(m.Pings) != 0 {
		t.Errorf("reply with replied_user false: %v", m.Pings)
	}
	_, err := dg.ChannelMessageSendComplex(general, &discordgo.MessageSend{Content: "x", AllowedMentions: &discordgo.MessageAllowedMentions{
		Parse: []discordgo.AllowedMentionType{discordgo.AllowedMentionTypeUsers}, Users: []string{"1"}}})
	if re := restError(t, err); re.Message.Code != 50035 || !strings.Contains(string(re.ResponseBody), "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE") {
		t.Errorf("users in parse and listed: %v", err)
	}
}

// The headers, the 429 and the global limit, seen over plain HTTP.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{Limits: &DocumentedLimits})
	auth := "Bot " + srv.Token
	var bucket string
	for i := 1; i <= 5; i++ {
		resp, _ := raw(t, srv, "POST", "/api/v10/channels/"+general+"/messages", auth, `{"content":"m"}`)
		h := resp.Header
		after, _ := strconv.ParseFloat(h.Get("X-RateLimit-Reset-After"), 64)
		reset, _ := strconv.ParseFloat(h.Get("X-RateLimit-Reset"), 64)
		if resp.StatusCode != 200 || h.Get("X-RateLimit-Limit") != "5" || h.Get("X-RateLimit-Remaining") != strconv.Itoa(5-i) ||
			after <= 0 || after > 5.001 || reset < float64(time.Now().Unix()) || h.Get("X-RateLimit-Bucket") == "" {
			t.Errorf("call %d: %d %v", i, resp.StatusCode, h)
		}
		if bucket != "" && h.Get("X-RateLimit-Bucket") != bucket {
			t.Errorf("bucket changed: %s, %s", bucket, h.Get("X-RateLimit-Bucket"))
		}
		bucket = h.Get("X-RateLimit-Bucket")
	}
	// Another channel has its own bucket.
	if resp, _ := raw(t, srv, "POST", "/api/v10/channels/"+random+"/messages", auth, `{"content":"m"}`); resp.StatusCode != 200 {
		t.Errorf("other channel: %d", resp.StatusCode)
	}
	resp, body := raw(t, srv, "POST", "/api/v10/channels/"+general+"/messages", auth, `{"content":"m"}`)
	retry, _ := body["retry_after"].(float64)
	if resp.StatusCode != 429 || body["message"] != "You are being rate limited." || body["global"] != false || retry <= 0 || retry > 5.001 ||
		resp.Header.Get("X-RateLimit-Scope") != "user" || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("6th call: %d %v %v", resp.StatusCode, body, resp.Header)
	}
	if v := srv.Violations(); len(v) != 1 || v[0].Status != 429 || v[0].RetryAfter <= 0 || v[0].ChannelID != general {
		t.Errorf("violations %+v", v)
	}
	if p := srv.Penalties(general); len(p) != 1 || p[0].Route != RouteCreateMessage || !p[0].Until.After(p[0].From) || p[0].Global {
		t.Errorf("penalties %+v", p)
	}
	if len(srv.Penalties(random)) != 0 {
		t.Errorf("the other channel was penalised")
	}

	g := newServer(t, Options{Limits: &Limits{Route: Window{Limit: 100, Per: time.Second}, Global: Window{Limit: 3, Per: time.Hour}}})
	for range 3 {
		raw(t, g, "GET", "/api/v10/users/@me", "Bot "+g.Token, "")
	}
	resp, body = raw(t, g, "GET", "/api/v10/channels/"+general, "Bot "+g.Token, "")
	if resp.StatusCode != 429 || body["global"] != true || resp.Header.Get("X-RateLimit-Global") != "true" || resp.Header.Get("X-RateLimit-Scope") != "global" {
		t.Errorf("over the global limit: %d %v %v", resp.StatusCode, body, resp.Header)
	}
	// Interactions' webhooks are not under the global limit.
	if resp, _ := raw(t, g, "POST", "/api/v10/interactions/1/x/callback", "", `{"type":4}`); resp.StatusCode != 404 {
		t.Errorf("interaction callback under the global limit: %d", resp.StatusCode)
	}
	if p := g.Penalties(general); len(p) != 1 || !p[0].Global {
		t.Errorf("global penalty %+v", p)
	}
}

// discordgo sees the 429 of an exhausted bucket as a RateLimitError.
func TestRateLimitWithDiscordgo(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{Limits: &DocumentedLimits})
	a, _ := newSession(t, srv, nil)
	for i := range 5 {
		if _, err := a.ChannelMessageSend(general, "a"+strconv.Itoa(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if len(srv.Violations()) != 0 {
		t.Fatalf("violations within the limit: %+v", srv.Violations())
	}
	// A second client does not know the bucket is spent.
	b, _ := newSession(t, srv, nil)
	_, err := b.ChannelMessageSend(general, "b")
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > 5*time.Second+time.Millisecond || rl.Message != "You are being rate limited." {
		t.Fatalf("6th call: %v", err)
	}
	if v := srv.Violations(); len(v) != 1 || v[0].Route != RouteCreateMessage {
		t.Errorf("violations %+v", v)
	}
}

func TestRateLimitNth(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, _ := newSession(t, srv, nil)
	srv.RateLimitNth(general, RouteCreateMessage, 2, 2*time.Second)
	if _, err := dg.ChannelMessageSend(general, "one"); err != nil {
		t.Fatal(err)
	}
	// Other routes and channels are not affected.
	if err := dg.ChannelTyping(general); err != nil {
		t.Fatal(err)
	}
	if _, err := dg.ChannelMessageSend(random, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	_, err := dg.ChannelMessageSend(general, "two")
	var rl *discordgo.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("second send: %v", err)
	}
	if len(srv.Violations()) != 0 {
		t.Errorf("a forced 429 is no violation: %+v", srv.Violations())
	}
	// During the penalty, a call that ignores it is a violation.
	resp, _ := raw(t, srv, "POST", "/api/v10/channels/"+general+"/messages", "Bot "+srv.Token, `{"content":"three"}`)
	if resp.StatusCode != 429 || len(srv.Violations()) != 1 {
		t.Errorf("call during the penalty: %d, violations %+v", resp.StatusCode, srv.Violations())
	}
	p := srv.Penalties(general)
	if len(p) != 1 || p[0].Until.Sub(p[0].From) != 2*time.Second || p[0].Route != RouteCreateMessage {
		t.Errorf("penalties %+v", p)
	}
	calls := srv.CallsTo(general)
	if c := calls[len(calls)-2]; c.Status != 429 || c.RetryAfter != 2*time.Second {
		t.Errorf("the forced call %+v", c)
	}
}

// RECONNECT makes discordgo resume; a message injected while the
// connection is down arrives after the resume, once.
func TestReconnectAndResume(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	ready := recv(t, ev.ready, "READY")
	settle(t, srv, 0)
	srv.SendReconnect()
	reopen(t, srv, dg, ev)
	recv(t, ev.resumed, "RESUMED after op 7")
	if srv.Resumes() != 1 || srv.Identifies() != 1 || srv.Connections() != 2 {
		t.Errorf("resumes %d identifies %d connections %d", srv.Resumes(), srv.Identifies(), srv.Connections())
	}
	if id, _ := srv.SessionID(); id != ready.SessionID {
		t.Errorf("session %s after the resume, was %s", id, ready.SessionID)
	}

	srv.DropConnection()
	if _, connected := srv.SessionID(); connected {
		t.Error("still connected after DropConnection")
	}
	away := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "while away"})
	reopen(t, srv, dg, ev)
	waitFor(t, srv, "the second resume", func() bool { return srv.Resumes() == 2 })
	after := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "after"})
	seen := 0
	for {
		m := recv(t, ev.messages, "the messages")
		if m.ID == away.ID {
			seen++
		}
		if m.ID == after.ID {
			break
		}
	}
	if seen != 1 {
		t.Errorf("the message sent while away arrived %d times", seen)
	}
	if srv.Identifies() != 1 || srv.Connections() != 3 {
		t.Errorf("identifies %d connections %d", srv.Identifies(), srv.Connections())
	}
}

// INVALID_SESSION with d false: discordgo identifies again, a new session.
func TestInvalidSession(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	first := recv(t, ev.ready, "READY")
	srv.InvalidateSession(false)
	second := recv(t, ev.ready, "READY after op 9")
	if second.SessionID == first.SessionID || srv.Identifies() != 2 || srv.Connections() != 1 {
		t.Errorf("sessions %s, %s; identifies %d, connections %d", first.SessionID, second.SessionID, srv.Identifies(), srv.Connections())
	}
	srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "new session"})
	nextMessage(t, ev, "new session")
}

// wsConn is a bare gateway client, for what discordgo does not do.
type wsConn struct {
	t *testing.T
	*websocket.Conn
}

func dialGateway(t *testing.T, srv *Server) *wsConn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(srv.wsURL+"?v=10&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wsConn{t, c}
	if p := w.read(); p.Op != 10 {
		t.Fatalf("first payload op %d", p.Op)
	}
	return w
}

func (w *wsConn) send(op int, d any) {
	w.t.Helper()
	if err := w.WriteJSON(map[string]any{"op": op, "d": d}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsConn) read() gatewayPayload {
	w.t.Helper()
	_ = w.SetReadDeadline(time.Now().Add(10 * time.Second))
	var p gatewayPayload
	if err := w.ReadJSON(&p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *wsConn) readUntil(event string) gatewayPayload {
	w.t.Helper()
	for {
		if p := w.read(); p.T != nil && *p.T == event {
			return p
		}
	}
}

// RESUME replays what was missed, after a connection lost without a close
// frame; after a close with 1000, or of a session unknown, it gets op 9.
func TestResumeRaw(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	auth := "Bot " + srv.Token
	c := dialGateway(t, srv)
	c.send(2, map[string]any{"token": auth, "intents": intents, "properties": map[string]string{"os": "linux"}})
	var ready struct {
		SessionID string `json:"session_id"`
	}
	p := c.readUntil("READY")
	_ = json.Unmarshal(p.D, &ready)
	c.readUntil("GUILD_CREATE")
	c.Close()
	waitFor(t, srv, "the connection to end", func() bool { _, up := srv.SessionID(); return !up })
	m1 := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "one"})
	srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "two"})

	c2 := dialGateway(t, srv)
	c2.send(6, map[string]any{"token": auth, "session_id": ready.SessionID, "seq": 2})
	var got []string
	for {
		p := c2.read()
		if *p.T == "RESUMED" {
			if *p.S != 5 {
				t.Errorf("RESUMED seq %d, want 5", *p.S)
			}
			break
		}
		var m struct {
			ID      string `json:"id"`
			Content string `json:"content"`
		}
		_ = json.Unmarshal(p.D, &m)
		got = append(got, *p.T+" "+strconv.Itoa(*p.S)+" "+m.Content)
		if *p.S == 3 && m.ID != m1.ID {
			t.Errorf("seq 3 is %s", m.ID)
		}
	}
	if !slices.Equal(got, []string{"MESSAGE_CREATE 3 one", "MESSAGE_CREATE 4 two"}) {
		t.Errorf("replayed %v", got)
	}
	// Closing with 1000 ends the session.
	_ = c2.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	waitFor(t, srv, "the close", func() bool { _, up := srv.SessionID(); return !up })
	c3 := dialGateway(t, srv)
	c3.send(6, map[string]any{"token": auth, "session_id": ready.SessionID, "seq": 5})
	if p := c3.read(); p.Op != 9 || string(p.D) != "false" {
		t.Errorf("resume after 1000: op %d d %s", p.Op, p.D)
	}
	c3.send(6, map[string]any{"token": auth, "session_id": "nope", "seq": 1})
	if p := c3.read(); p.Op != 9 || string(p.D) != "false" {
		t.Errorf("resume of an unknown session: op %d d %s", p.Op, p.D)
	}
	c3.send(1, nil)
	if p := c3.read(); p.Op != 11 {
		t.Errorf("heartbeat answered with op %d", p.Op)
	}
	c3.send(42, nil)
	_, _, err := c3.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Errorf("unknown opcode: %v", err)
	}
}

// A wrong token, a refused intent, a chosen close: Open fails with the
// close code.
func TestIdentifyRefused(t *testing.T) {
	t.Parallel()
	closeCode := func(err error) (int, string) {
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want a close error, got %v", err)
		}
		return ce.Code, ce.Text
	}
	srv := newServer(t, Options{RefuseMessageContent: true})
	dg, _ := newSession(t, srv, nil)
	if code, text := closeCode(dg.Open()); code != 4014 || text != "Disallowed intent(s)." {
		t.Errorf("MESSAGE_CONTENT refused: %d %q", code, text)
	}
	if srv.Intents() != int(intents) {
		t.Errorf("intents %d", srv.Intents())
	}

	dg, _ = newSession(t, srv, nil)
	dg.Identify.Intents = intents &^ discordgo.IntentMessageContent
	dg.Identify.Token = "Bot wrong"
	if code, text := closeCode(dg.Open()); code != 4004 || text != "Authentication failed." {
		t.Errorf("wrong token: %d %q", code, text)
	}

	srv.CloseNextIdentify(4000, "Unknown error.")
	dg, ev := newSession(t, srv, nil)
	dg.Identify.Intents = intents &^ discordgo.IntentMessageContent
	if code, _ := closeCode(dg.Open()); code != 4000 {
		t.Errorf("chosen close: %d", code)
	}
	open(t, dg) // the next one works
	recv(t, ev.ready, "READY")
	if srv.Identifies() != 4 || srv.Connections() != 4 {
		t.Errorf("identifies %d connections %d", srv.Identifies(), srv.Connections())
	}
}

func TestAuthRoutesAndBodies(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	resp, body := raw(t, srv, "GET", "/api/v10/users/@me", "", "")
	if resp.StatusCode != 401 || body["message"] != "401: Unauthorized" || body["code"] != 0.0 {
		t.Errorf("no token: %d %v", resp.StatusCode, body)
	}
	resp, _ = raw(t, srv, "GET", "/api/v10/users/@me", srv.Token, "")
	if resp.StatusCode != 401 {
		t.Errorf("token without \"Bot \": %d", resp.StatusCode)
	}
	resp, body = raw(t, srv, "GET", "/api/v10/nowhere", "Bot "+srv.Token, "")
	if resp.StatusCode != 404 || body["message"] != "404: Not Found" || body["code"] != 0.0 {
		t.Errorf("unknown route: %d %v", resp.StatusCode, body)
	}
	resp, body = raw(t, srv, "POST", "/api/v10/channels/"+general+"/messages", "Bot "+srv.Token, `{"content":`)
	if resp.StatusCode != 400 || body["code"] != 50109.0 || body["message"] != "The request body contains invalid JSON." {
		t.Errorf("malformed JSON: %d %v", resp.StatusCode, body)
	}
	resp, body = raw(t, srv, "POST", "/api/v10/channels/"+general+"/messages", "Bot "+srv.Token, `{"content":5}`)
	if resp.StatusCode != 400 || body["code"] != 50035.0 {
		t.Errorf("content of the wrong type: %d %v", resp.StatusCode, body)
	}
	resp, body = raw(t, srv, "GET", "/api/v10/gateway", "Bot "+srv.Token, "")
	if resp.StatusCode != 200 || body["url"] != srv.wsURL || body["shards"] != 1.0 || body["session_start_limit"] == nil {
		t.Errorf("gateway: %d %v", resp.StatusCode, body)
	}
	// Webhooks need no token.
	resp, body = raw(t, srv, "PATCH", "/api/v10/webhooks/"+srv.ApplicationID+"/nope/messages/@original", "", `{"content":"x"}`)
	if resp.StatusCode != 404 || body["code"] != 10015.0 {
		t.Errorf("unknown webhook: %d %v", resp.StatusCode, body)
	}
	if c := srv.Calls(); len(c) != 7 || c[0].Status != 401 || c[2].Route != "GET /api/v10/nowhere" {
		t.Errorf("calls %+v", c)
	}
}

func TestInteractions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	recv(t, ev.ready, "READY")
	cmds, err := dg.ApplicationCommandBulkOverwrite(srv.ApplicationID, "", []*discordgo.ApplicationCommand{
		{Name: "new", Description: "Start a new conversation"}, {Name: "stop", Description: "Stop the answer"}})
	if err != nil || len(cmds) != 2 || cmds[0].ID == "" || cmds[0].Name != "new" {
		t.Fatalf("bulk overwrite: %+v %v", cmds, err)
	}
	again, err := dg.ApplicationCommandBulkOverwrite(srv.ApplicationID, "", []*discordgo.ApplicationCommand{{Name: "new", Description: "New"}})
	if err != nil || len(again) != 1 || again[0].ID != cmds[0].ID {
		t.Errorf("second overwrite keeps the id: %+v %v", again, err)
	}
	if c := srv.Commands(); len(c) != 1 || c[0].Name != "new" || c[0].Description != "New" || c[0].Type != 1 {
		t.Errorf("commands %+v", c)
	}
	_, err = dg.ApplicationCommandBulkOverwrite(srv.ApplicationID, "", []*discordgo.ApplicationCommand{{Name: "New Thing", Description: "x"}})
	if re := restError(t, err); re.Message.Code != 50035 {
		t.Errorf("invalid name: %v", err)
	}

	id := srv.InjectInteraction(Interaction{Name: "new", ChannelID: general, User: alice})
	ic := recv(t, ev.interactions, "INTERACTION_CREATE")
	data := ic.ApplicationCommandData()
	if ic.ID != id || ic.Type != discordgo.InteractionApplicationCommand || data.Name != "new" || data.ID != cmds[0].ID ||
		ic.GuildID != guildID || ic.Member == nil || ic.Member.User.ID != alice.ID || ic.AppID != srv.ApplicationID || ic.Token == "" {
		t.Fatalf("interaction %+v", ic.Interaction)
	}
	if err := dg.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}); err != nil {
		t.Fatal(err)
	}
	err = dg.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
	if re := restError(t, err); re.Message.Code != 40060 {
		t.Errorf("second callback: %v", err)
	}
	done := "Started a new conversation."
	m, err := dg.InteractionResponseEdit(ic.Interaction, &discordgo.WebhookEdit{Content: &done})
	if err != nil || m.Content != done || m.Flags&discordgo.MessageFlagsLoading != 0 {
		t.Fatalf("edit @original: %+v %v", m, err)
	}
	f, err := dg.FollowupMessageCreate(ic.Interaction, true, &discordgo.WebhookParams{Content: "more"})
	if err != nil || f.Content != "more" || f.ChannelID != general {
		t.Fatalf("follow-up: %+v %v", f, err)
	}
	var kinds []string
	for _, r := range srv.InteractionResponses(id) {
		kinds = append(kinds, r.Kind+" "+strconv.Itoa(r.Status))
	}
	if !slices.Equal(kinds, []string{"callback 204", "callback 400", "edit 200", "followup 200"}) {
		t.Errorf("responses %v", kinds)
	}
	bm := srv.BotMessages(general)
	if len(bm) != 2 || bm[0].Content != done || bm[0].Interaction != id || bm[1].Content != "more" {
		t.Errorf("bot messages %+v", bm)
	}

	// A DM interaction carries the user, not a member; type 4 answers at once.
	id2 := srv.InjectInteraction(Interaction{Name: "stop", ChannelID: dm, User: alice})
	ic2 := recv(t, ev.interactions, "second INTERACTION_CREATE")
	if ic2.ID != id2 || ic2.User == nil || ic2.User.ID != alice.ID || ic2.Member != nil || ic2.GuildID != "" {
		t.Errorf("DM interaction %+v", ic2.Interaction)
	}
	if err := dg.InteractionRespond(ic2.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: "stopped", Flags: discordgo.MessageFlagsEphemeral}}); err != nil {
		t.Fatal(err)
	}
	if r := srv.InteractionResponses(id2); len(r) != 1 || r[0].Content != "stopped" || r[0].Flags != 64 || r[0].Type != 4 {
		t.Errorf("ephemeral response %+v", r)
	}
	for _, m := range srv.Messages(dm) {
		if m.Content == "stopped" {
			t.Error("an ephemeral response shows in the channel")
		}
	}
}

func TestThreads(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, ev := newSession(t, srv, nil)
	open(t, dg)
	recv(t, ev.ready, "READY")
	q := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "start here"})
	th, err := dg.MessageThreadStartComplex(general, q.ID, &discordgo.ThreadStart{Name: "Answer", AutoArchiveDuration: 60})
	if err != nil {
		t.Fatal(err)
	}
	if th.ID != q.ID || th.Type != discordgo.ChannelTypeGuildPublicThread || th.ParentID != general || th.GuildID != guildID ||
		th.ThreadMetadata == nil || th.ThreadMetadata.AutoArchiveDuration != 60 {
		t.Errorf("thread %+v", th)
	}
	if e := recv(t, ev.threads, "THREAD_CREATE"); e.ID != q.ID || !e.NewlyCreated {
		t.Errorf("THREAD_CREATE %+v", e.Channel)
	}
	if m := srv.Messages(general)[0]; m.Thread != q.ID {
		t.Errorf("message's thread %q", m.Thread)
	}
	if _, err := dg.ChannelMessageSend(th.ID, "in the thread"); err != nil {
		t.Fatal(err)
	}
	if bm := srv.BotMessages(th.ID); len(bm) != 1 || bm[0].Content != "in the thread" {
		t.Errorf("thread messages %+v", bm)
	}
	got, err := dg.Channel(th.ID)
	if err != nil || got.ParentID != general || got.Type != discordgo.ChannelTypeGuildPublicThread || got.MessageCount != 1 {
		t.Errorf("GET thread: %+v %v", got, err)
	}
	srv.Inject(Incoming{ChannelID: th.ID, Author: alice, Content: "thanks"})
	if m := nextMessage(t, ev, "thanks"); m.ChannelID != th.ID || m.GuildID != guildID {
		t.Errorf("thread message %+v", m.Message)
	}
	_, err = dg.MessageThreadStart(general, q.ID, "Again", 60)
	if re := restError(t, err); re.Message.Code != 160004 {
		t.Errorf("second thread: %v", err)
	}
	q2 := srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "another"})
	_, err = dg.MessageThreadStart(general, q2.ID, "x", 61)
	if re := restError(t, err); re.Message.Code != 50035 {
		t.Errorf("auto_archive_duration 61: %v", err)
	}
	d := srv.Inject(Incoming{ChannelID: dm, Author: alice, Content: "dm"})
	_, err = dg.MessageThreadStart(dm, d.ID, "x", 60)
	if re := restError(t, err); re.Message.Code != 50024 {
		t.Errorf("thread in a DM: %v", err)
	}
}

func TestGetMessagesPaging(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{})
	dg, _ := newSession(t, srv, nil)
	var ids []string
	for _, c := range []string{"a", "b", "c"} {
		m, err := dg.ChannelMessageSend(general, c)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	contents := func(after, before string, limit int) []string {
		t.Helper()
		msgs, err := dg.ChannelMessages(general, limit, before, after, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			out = append(out, m.Content)
		}
		return out
	}
	if got := contents(ids[0], "", 100); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("after a: %v", got)
	}
	if got := contents(ids[0], "", 1); !slices.Equal(got, []string{"b"}) {
		t.Errorf("after a, limit 1: %v", got)
	}
	if got := contents("", ids[2], 0); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("before c: %v", got)
	}
	if got := contents("", "", 2); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("newest 2: %v", got)
	}
	_, err := dg.ChannelMessages(general, 101, "", "", "")
	if re := restError(t, err); re.Message.Code != 50035 {
		t.Errorf("limit 101: %v", err)
	}
}

// In a synctest bubble over memnet: the gateway and REST work, discordgo's
// own limiter waits out a spent bucket (5 s of fake time) without a
// violation, and an interaction answered after 3 s is refused.
//
// The server closes first: discordgo's Close sleeps a second holding the
// session's lock, and a reader that waits on that lock is not durably
// blocked, so the bubble's clock would stop. When the server closes,
// discordgo's reader is the goroutine that closes, and nobody waits.
func TestInABubble(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var network memnet.Network
		srv := NewServer(Options{Listener: network.Listen(), Limits: &DocumentedLimits})
		srv.AddGuild(guildID, "Herald HQ", Channel{ID: general, Name: "general"})
		client := network.Client()
		defer client.CloseIdleConnections()

		dg, ev := newSession(t, srv, client.Transport)
		dg.Dialer = &websocket.Dialer{NetDialContext: network.Dial}
		dg.ShouldRetryOnRateLimit = true
		if err := dg.Open(); err != nil {
			t.Fatal(err)
		}
		if r := recv(t, ev.ready, "READY"); r.User.ID != srv.Bot.ID {
			t.Errorf("READY user %+v", r.User)
		}
		srv.Inject(Incoming{ChannelID: general, Author: alice, Content: "in the bubble"})
		nextMessage(t, ev, "in the bubble")

		start := time.Now()
		for i := range 5 {
			if _, err := dg.ChannelMessageSend(general, "a"+strconv.Itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
		other, _ := newSession(t, srv, client.Transport)
		_, err := other.ChannelMessageSend(general, "over")
		var rl *discordgo.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != 5*time.Second {
			t.Fatalf("over the limit: %v", err)
		}
		if _, err := dg.ChannelMessageSend(general, "waited"); err != nil {
			t.Fatal(err)
		}
		if since := time.Since(start); since != 5*time.Second {
			t.Errorf("the sixth message went after %v of fake time, want the 5 s window", since)
		}
		if v := srv.Violations(); len(v) != 1 {
			t.Errorf("violations %+v, want only the other client's", v)
		}

		id := srv.InjectInteraction(Interaction{Name: "new", ChannelID: general, User: alice})
		ic := recv(t, ev.interactions, "INTERACTION_CREATE")
		time.Sleep(interactionDeadline + time.Millisecond) // moves the fake clock past the deadline
		err = dg.InteractionRespond(ic.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource})
		if re := restError(t, err); re.Response.StatusCode != 404 || re.Message.Code != 10062 || re.Message.Message != "Unknown interaction" {
			t.Errorf("late callback: %v", err)
		}
		if r := srv.InteractionResponses(id); len(r) != 1 || r[0].Status != 404 {
			t.Errorf("responses %+v", r)
		}

		srv.Close()
		recv(t, ev.disconnects, "the disconnection")
		dg.Close()
	})
}
