package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/matrix/matrixtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/postgres"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/stream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP client's connection pool may still be closing sockets
		// the homeserver closed.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// wait is the generous deadline for anything that involves the homeserver.
const wait = 60 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// password is every test user's password.
func password(localpart string) string { return "pw-" + localpart + "-0123456789" }

// user is a human on the homeserver: a mautrix client with encryption,
// syncing in the background, that records the messages it sees
// (decrypted).
type user struct {
	t      *testing.T
	id     id.UserID
	cli    *mautrix.Client
	crypto *cryptohelper.CryptoHelper

	mu      sync.Mutex
	events  []*event.Event
	changed chan struct{}
}

// newUser registers a user and starts its client.
func newUser(t *testing.T, srv *matrixtest.Server, localpart string) *user {
	t.Helper()
	userID, token, device := srv.Register(t, localpart, password(localpart))
	cli, err := mautrix.NewClient(srv.URL(), id.UserID(userID), token)
	if err != nil {
		t.Fatal(err)
	}
	cli.DeviceID = id.DeviceID(device)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	cli.Client = &http.Client{Transport: transport}
	raw, db, err := openStore(filepath.Join(t.TempDir(), localpart+".db"))
	if err != nil {
		t.Fatal(err)
	}
	helper, err := cryptohelper.NewCryptoHelper(cli, []byte("pickle-"+localpart), db)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := helper.Init(ctx); err != nil {
		t.Fatal(err)
	}
	cli.Crypto = helper
	u := &user{t: t, id: cli.UserID, cli: cli, crypto: helper, changed: make(chan struct{})}
	// Registered after the crypto helper's: state is stored and messages
	// decrypted before u records them.
	cli.Syncer.(mautrix.ExtensibleSyncer).OnEvent(u.record)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cli.SyncWithContext(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("%s's sync: %v", localpart, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		raw.Close()
		transport.CloseIdleConnections()
	})
	return u
}

func (u *user) record(_ context.Context, evt *event.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events = append(u.events, evt)
	close(u.changed)
	u.changed = make(chan struct{})
}

// waitFor waits until cond holds, checking it after every event.
func (u *user) waitFor(what string, cond func() bool) {
	u.t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		u.mu.Lock()
		changed := u.changed
		u.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			buf := make([]byte, 1<<20)
			u.t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			u.t.Fatalf("%s: timed out waiting for %s", u.id, what)
		}
	}
}

// answer is one message of the bot as the user sees it now.
type answer struct {
	id       id.EventID
	text     string // the latest text, edits applied
	html     string
	edits    int
	thread   id.EventID
	replyTo  id.EventID
	mentions []id.UserID // m.mentions of the message as first sent
}

// answersFrom returns a sender's messages in a room, edits applied, in
// the order they were sent.
func (u *user) answersFrom(room id.RoomID, sender id.UserID) []*answer {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*answer
	byID := map[id.EventID]*answer{}
	for _, evt := range u.events {
		if evt.RoomID != room || evt.Sender != sender || evt.Type != event.EventMessage {
			continue
		}
		c := evt.Content.AsMessage()
		if orig := c.RelatesTo.GetReplaceID(); orig != "" && c.NewContent != nil {
			if a := byID[orig]; a != nil {
				a.text, a.html = c.NewContent.Body, c.NewContent.FormattedBody
				a.edits++
			}
			continue
		}
		a := &answer{id: evt.ID, text: c.Body, html: c.FormattedBody, thread: c.RelatesTo.GetThreadParent(), replyTo: c.RelatesTo.GetReplyTo()}
		if c.Mentions != nil {
			a.mentions = c.Mentions.UserIDs
		}
		byID[evt.ID] = a
		out = append(out, a)
	}
	return out
}

// waitAnswer waits until the sender's answer that starts as prefix says
// exactly want, and returns it.
func (u *user) waitAnswer(room id.RoomID, sender id.UserID, want string) *answer {
	u.t.Helper()
	var found *answer
	u.waitFor(fmt.Sprintf("the answer %q", want), func() bool {
		for _, a := range u.answersFrom(room, sender) {
			if a.text == want {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// reactionsOn lists the keys of a sender's reactions on an event that
// are still there (not redacted).
func (u *user) reactionsOn(room id.RoomID, target id.EventID, sender id.UserID) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	redacted := map[id.EventID]bool{}
	for _, evt := range u.events {
		if evt.RoomID == room && evt.Type == event.EventRedaction {
			redacted[evt.Redacts] = true
			if r := evt.Content.AsRedaction(); r.Redacts != "" {
				redacted[r.Redacts] = true
			}
		}
	}
	var keys []string
	for _, evt := range u.events {
		if evt.RoomID != room || evt.Sender != sender || evt.Type != event.EventReaction || redacted[evt.ID] {
			continue
		}
		if rel := evt.Content.AsReaction().RelatesTo; rel.EventID == target {
			keys = append(keys, rel.Key)
		}
	}
	return keys
}

// createRoom creates a room, encrypted or not, inviting others.
func (u *user) createRoom(encrypted, direct bool, invite ...id.UserID) id.RoomID {
	u.t.Helper()
	req := &mautrix.ReqCreateRoom{Invite: invite, IsDirect: direct, Preset: "private_chat"}
	if encrypted {
		req.InitialState = []*event.Event{{
			Type:     event.StateEncryption,
			StateKey: new(string),
			Content:  event.Content{Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}},
		}}
	}
	resp, err := u.cli.CreateRoom(context.Background(), req)
	if err != nil {
		u.t.Fatal(err)
	}
	if encrypted {
		u.waitFor("the room's encryption", func() bool {
			enc, _ := u.cli.StateStore.IsEncrypted(context.Background(), resp.RoomID)
			return enc
		})
	}
	return resp.RoomID
}

// waitJoined waits until member has joined the room.
func (u *user) waitJoined(room id.RoomID, member id.UserID) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%s to join %s", member, room), func() bool {
		return u.cli.StateStore.IsInRoom(context.Background(), room, member)
	})
}

// invite invites a user into a room.
func (u *user) invite(room id.RoomID, who id.UserID) {
	u.t.Helper()
	if _, err := u.cli.InviteUser(context.Background(), room, &mautrix.ReqInviteUser{UserID: who}); err != nil {
		u.t.Fatal(err)
	}
}

// join accepts an invite.
func (u *user) join(room id.RoomID) {
	u.t.Helper()
	if _, err := u.cli.JoinRoomByID(context.Background(), room); err != nil {
		u.t.Fatal(err)
	}
}

// send sends a message (encrypted when the room is) and returns its id.
func (u *user) send(room id.RoomID, content *event.MessageEventContent) id.EventID {
	u.t.Helper()
	resp, err := u.cli.SendMessageEvent(context.Background(), room, event.EventMessage, content)
	if err != nil {
		u.t.Fatal(err)
	}
	return resp.EventID
}

// say sends a text message.
func (u *user) say(room id.RoomID, text string) id.EventID {
	u.t.Helper()
	return u.send(room, &event.MessageEventContent{MsgType: event.MsgText, Body: text})
}

// sayInThread sends a text message into a thread.
func (u *user) sayInThread(room id.RoomID, root id.EventID, text string) id.EventID {
	u.t.Helper()
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: text}
	content.RelatesTo = (&event.RelatesTo{}).SetThread(root, root)
	return u.send(room, content)
}

// mention sends a message that mentions another user the way Element
// does: a pill in the HTML and an m.mentions entry.
func (u *user) mention(room id.RoomID, who id.UserID, text string) id.EventID {
	u.t.Helper()
	local, _, _ := strings.Cut(strings.TrimPrefix(string(who), "@"), ":")
	return u.send(room, &event.MessageEventContent{
		MsgType:       event.MsgText,
		Body:          local + ": " + text,
		Format:        event.FormatHTML,
		FormattedBody: fmt.Sprintf(`<a href="https://matrix.to/#/%s">%s</a>: %s`, who, local, text),
		Mentions:      &event.Mentions{UserIDs: []id.UserID{who}},
	})
}

// rawMessages reads a room's timeline through the client-server API as
// the homeserver stores it, without any decryption.
func (u *user) rawMessages(room id.RoomID) []map[string]any {
	u.t.Helper()
	q := url.Values{"dir": {"b"}, "limit": {"500"}}
	req, _ := http.NewRequest(http.MethodGet, u.cli.HomeserverURL.String()+"/_matrix/client/v3/rooms/"+url.PathEscape(string(room))+"/messages?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+u.cli.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		u.t.Fatalf("/messages: %s: %s", resp.Status, data)
	}
	var out struct {
		Chunk []map[string]any `json:"chunk"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		u.t.Fatal(err)
	}
	return out.Chunk
}

// answerTokens is the simulator's filler length in these tests.
const answerTokens = 12

// newSim starts a simulator that streams an answer over about a second,
// so that it arrives as a message and edits.
func newSim(t *testing.T) (*sim.Server, string) {
	t.Helper()
	s := sim.New(sim.Options{AllowSessionWithoutKey: true, TokensPerSecond: 20, AnswerTokens: answerTokens, Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// gw is a running gateway with the Matrix adapter.
type gw struct {
	adapter *killable
	runner  *gateway.Runner
	store   store.Store
	stop    func()
	ready   func() error // the gateway's readiness, as /readyz reports it
}

// crash ends the gateway as kill -9 would: from now on it sends nothing
// and writes nothing, so what it was doing stays as the journal says.
func (g *gw) crash() {
	g.adapter.dead.Store(true)
	g.store.Close()
	g.stop()
}

// killable is the adapter of a gateway that a test can crash: once dead,
// it sends nothing to the homeserver.
type killable struct {
	*Adapter
	dead atomic.Bool
}

var errKilled = errors.New("the gateway was killed")

func (k *killable) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	if k.dead.Load() {
		return "", errKilled
	}
	return k.Adapter.Send(ctx, t, text)
}

func (k *killable) Edit(ctx context.Context, t chat.Target, msgID, text string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Adapter.Edit(ctx, t, msgID, text)
}

func (k *killable) Delete(ctx context.Context, t chat.Target, msgID string) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Adapter.Delete(ctx, t, msgID)
}

func (k *killable) Typing(ctx context.Context, t chat.Target) error {
	if k.dead.Load() {
		return errKilled
	}
	return k.Adapter.Typing(ctx, t)
}

func (k *killable) TurnStatus(ctx context.Context, t chat.Target, state platform.TurnState) (int, error) {
	if k.dead.Load() {
		return 0, errKilled
	}
	return k.Adapter.TurnStatus(ctx, t, state)
}

// botID is the test bot's user id.
const botID = "@herald:" + matrixtest.ServerName

// testBudget is the bot's budget in the tests: faster than Synapse's
// default (0.2/s, burst 10), so that their many turns stream without long
// waits; the homeserver holds the bot to it.
var testBudget = platform.Bucket{Rate: 4, Burst: 10}

// startHomeserver runs a Dendrite that holds the bot to budget as Synapse
// holds a user to rc_message, and fails the test for every event the bot
// sent over it.
func startHomeserver(t *testing.T, budget platform.Bucket) *matrixtest.Server {
	t.Helper()
	srv := matrixtest.StartWith(t, matrixtest.Options{Limit: &matrixtest.Limit{Users: []string{botID}, Bucket: budget}})
	t.Cleanup(func() {
		for _, e := range srv.Violations() {
			t.Errorf("the bot sent a %s %s into %s at %s over its budget", e.Kind, e.Type, e.Room, e.At.Format("15:04:05.000"))
		}
	})
	return srv
}

// setup is a test bot: the adapter's options and what the gateway gives
// it, less the state store, which newAdapter opens.
type setup struct {
	Options
	deps    platform.Deps
	allowed []string // the users the gateway's allowlist names
}

// registerBot registers the bot's account, @herald, and returns its setup
// (encryption required, mentions and reactions on, alloweds may invite
// it), its user id and its access token.
func registerBot(t *testing.T, srv *matrixtest.Server, home string, allowed ...id.UserID) (setup, id.UserID, string) {
	t.Helper()
	const bot = "herald"
	s := setup{
		Options: Options{
			Homeserver:     srv.URL(),
			UserID:         botID,
			Password:       password(bot),
			E2EE:           E2EERequired,
			RequireMention: true,
			Reactions:      true,
			Budget:         testBudget,
		},
		deps: platform.Deps{Dir: filepath.Join(home, "matrix"), Logger: testLogger(t)},
	}
	for _, u := range allowed {
		s.allowed = append(s.allowed, string(u))
	}
	s.deps.Allows = func(user string) bool { return slices.Contains(s.allowed, user) }
	_, token, _ := srv.Register(t, bot, s.Password)
	return s, id.UserID(s.UserID), token
}

// startGateway runs the gateway with a Matrix adapter made of opts, on the
// state database in home, until the test ends or stop is called; it
// returns once the adapter is ready.
func startGateway(t *testing.T, opts setup, home, simURL string) *gw {
	t.Helper()
	return startGatewayWith(t, opts, home, simURL, nil)
}

// startGatewayWith is startGateway with the gateway's options changed by
// tune, if not nil, before it starts.
func startGatewayWith(t *testing.T, opts setup, home, simURL string, tune func(*gateway.Options)) *gw {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	raw, st := newAdapter(t, opts, home)
	a := &killable{Adapter: raw}
	backend := hermes.New(hermes.Config{URL: simURL, ConnectTimeout: time.Second, IdleTimeout: time.Minute})
	allow := gateway.Allowlist{Users: opts.allowed}
	gopts := gateway.Options{
		SessionKeys: chat.SessionKeyOptions{GroupPerUser: true},
		BusyMode:    "interrupt",
		Access:      gateway.Access{All: allow, Platforms: map[string]gateway.Allowlist{}},
		Streaming: stream.Options{
			Enabled: true, Transport: "auto", EditInterval: 300 * time.Millisecond, BufferThreshold: 24, Cursor: " ▉",
		},
		ShutdownGrace: time.Second,
		Logger:        opts.deps.Logger,
	}
	if tune != nil {
		tune(&gopts)
	}
	runner := gateway.New(gopts, backend, st, a)
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	g := &gw{adapter: a, runner: runner, store: st, ready: runner.Ready}
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway: %v", err)
			}
			st.Close()
		})
	}
	t.Cleanup(g.stop)
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("the gateway stopped before Matrix was ready: %v", err)
	case <-time.After(wait):
		t.Fatal("Matrix did not become ready")
	}
	return g
}

// newAdapter makes an adapter of opts on the state database in home, or
// on the PostgreSQL database opts.deps.Database names; the caller closes
// the store.
func newAdapter(t *testing.T, opts setup, home string) (*Adapter, store.Store) {
	t.Helper()
	var (
		st  store.Store
		err error
	)
	if opts.deps.Database != "" {
		st, err = postgres.Open(context.Background(), opts.deps.Database, postgres.Options{})
	} else {
		st, err = sqlite.Open(context.Background(), filepath.Join(home, "state.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	opts.deps.State = st
	a, err := New(opts.Options, opts.deps)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return a, st
}

// runAdapter runs the adapter alone with h as the handler, for tests that
// look at what it hands over.
func runAdapter(t *testing.T, opts setup, home string, h platform.Handler) *Adapter {
	t.Helper()
	a, st := newAdapter(t, opts, home)
	t.Cleanup(func() { st.Close() }) // after the adapter stops
	platformtest.Run(t, a, h, wait)
	return a
}
