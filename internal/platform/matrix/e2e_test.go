package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/crypto/cryptohelper"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/matrix/matrixtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
)

// The integration tests run a real Dendrite (see matrixtest) with
// mautrix-go clients, encryption on, as the human users.

// An encrypted DM: the user invites the bot, the bot joins, the answer
// streams in as a message and edits that the user decrypts, and nothing
// the bot sent is in plaintext on the homeserver. Then the gateway
// restarts on the same home: the device, its keys and the session stay.
func TestEncryptedDMAndRestart(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	s, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)

	g := startGateway(t, opts, home, simURL)
	room := alice.createRoom(true, true, bot)
	alice.waitJoined(room, bot)

	hello := alice.say(room, "hello")
	first := alice.waitAnswer(room, bot, sim.Answer(1, "hello", answerTokens))
	if first.replyTo != hello {
		t.Errorf("the answer replies to %q, want the asking message %s", first.replyTo, hello)
	}
	if first.edits == 0 {
		t.Errorf("the answer came as one message, want a message and m.replace edits")
	}
	if !strings.Contains(first.html, "Hermes simulator") {
		t.Errorf("formatted_body = %q, want the rendered answer", first.html)
	}
	checkNoPlaintext(t, alice, room, bot)
	session := readSessionFile(t, opts.deps.Dir)

	// A message while the gateway is down is answered after its restart
	// on the same home (its sync token says what is new, not a clock).
	g.stop()
	alice.say(room, "are you still there")
	startGateway(t, opts, home, simURL)
	if again := readSessionFile(t, opts.deps.Dir); again.DeviceID != session.DeviceID || again.AccessToken != session.AccessToken {
		t.Errorf("after a restart the bot is device %s, want the kept device %s and its token", again.DeviceID, session.DeviceID)
	}
	alice.waitAnswer(room, bot, sim.Answer(2, "are you still there", answerTokens)) // turn 2: the same session
	checkNoPlaintext(t, alice, room, bot)
	if got := s.Stats().Requests; got != 2 {
		t.Errorf("the simulator got %d requests, want 2", got)
	}
	if n := len(alice.answersFrom(room, bot)); n != 2 {
		t.Errorf("the bot sent %d messages, want 2 (nothing answered twice)", n)
	}
}

// Replicas on one PostgreSQL: the crypto store, the session and the pickle
// key are in the database, so a replica with a home of its own takes the
// bot over as the same device, decrypts what the users send, and answers
// encrypted; its home holds none of them.
func TestEncryptedRoomMovesToAnotherReplica(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	s, simURL := newSim(t)
	first := t.TempDir()
	opts, bot, _ := registerBot(t, srv, first, alice.id)
	opts.deps.Database = pgtest.NewDatabase(t)

	g := startGateway(t, opts, first, simURL)
	room := alice.createRoom(true, true, bot)
	alice.waitJoined(room, bot)
	alice.say(room, "hello")
	alice.waitAnswer(room, bot, sim.Answer(1, "hello", answerTokens))
	c, err := g.adapter.connection()
	if err != nil {
		t.Fatal(err)
	}
	device := c.cli.DeviceID
	g.stop()

	// The replica taking over: another home, the same database.
	second := t.TempDir()
	opts.deps.Dir = filepath.Join(second, "matrix")
	alice.say(room, "are you still there")
	g2 := startGateway(t, opts, second, simURL)
	c2, err := g2.adapter.connection()
	if err != nil {
		t.Fatal(err)
	}
	if c2.cli.DeviceID != device {
		t.Errorf("the replica taking over is device %s, want the same device %s", c2.cli.DeviceID, device)
	}
	alice.waitAnswer(room, bot, sim.Answer(2, "are you still there", answerTokens))
	checkNoPlaintext(t, alice, room, bot)
	if got := s.Stats().Requests; got != 2 {
		t.Errorf("the simulator got %d requests, want 2", got)
	}
	for _, home := range []string{first, second} {
		for _, name := range []string{sessionFile, pickleKeyFile, storeFile} {
			if _, err := os.Stat(filepath.Join(home, "matrix", name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is in a replica's home (%v), want it in the database", name, err)
			}
		}
	}
}

// checkNoPlaintext reads the room on the homeserver: every message event
// the bot sent is m.room.encrypted.
func checkNoPlaintext(t *testing.T, u *user, room id.RoomID, bot id.UserID) {
	t.Helper()
	n := 0
	for _, e := range u.rawMessages(room) {
		if e["sender"] != string(bot) {
			continue
		}
		if _, state := e["state_key"]; state {
			continue
		}
		if e["type"] == "m.room.redaction" {
			continue // redactions cannot be encrypted and carry no content
		}
		n++
		if e["type"] != "m.room.encrypted" {
			t.Errorf("the bot sent a %v event in plaintext into an encrypted room: %v", e["type"], e["content"])
		}
	}
	if n == 0 {
		t.Error("the homeserver has no event of the bot in the room")
	}
}

func readSessionFile(t *testing.T, dir string) session {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, sessionFile))
	if err != nil {
		t.Fatal(err)
	}
	var s session
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// In a group room the bot answers only when mentioned, and a user who is
// not allowed gets nothing: no request reaches the agent. Threads are
// sessions of their own, and a thread the bot answered in needs no mention.
func TestGroupRoomMentionsAndThreads(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	mallory := newUser(t, srv, "mallory")
	s, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)
	startGateway(t, opts, home, simURL)

	// An invite from a user who is not allowed is ignored; the invite
	// that follows it, from alice, is taken, so by then the first was seen.
	// (The bot is invited once the room is complete: Dendrite's sync can
	// miss a join that races the room's creation.)
	malloryRoom := mallory.createRoom(false, true, bot)
	room := alice.createRoom(true, false, mallory.id)
	mallory.join(room)
	alice.waitJoined(room, mallory.id)
	alice.invite(room, bot)
	alice.waitJoined(room, bot)
	if !mallory.cli.StateStore.IsInvited(context.Background(), malloryRoom, bot) {
		t.Errorf("the bot is not left invited in the room of a user not allowed")
	}

	alice.say(room, "just chatting among humans")
	mallory.mention(room, bot, "do my homework")
	alice.mention(room, bot, "what do you think")
	// Messages are taken in order: once this answer is there, the two
	// before it were seen and dropped.
	alice.waitAnswer(room, bot, sim.Answer(1, "what do you think", answerTokens))
	if got := s.Stats().Requests; got != 1 {
		t.Fatalf("the simulator got %d requests, want 1: only the mention of an allowed user", got)
	}

	// Two threads, two sessions.
	rootA := alice.say(room, "topic A")
	rootB := alice.say(room, "topic B")
	alice.sayInThread(room, rootA, "herald: first thread")
	a1 := alice.waitAnswer(room, bot, sim.Answer(1, "first thread", answerTokens))
	alice.sayInThread(room, rootB, "herald: second thread")
	b1 := alice.waitAnswer(room, bot, sim.Answer(1, "second thread", answerTokens))
	if a1.thread != rootA || b1.thread != rootB {
		t.Errorf("answers in threads %s and %s, want %s and %s", a1.thread, b1.thread, rootA, rootB)
	}
	// The bot answered in thread A: no mention needed there any more.
	alice.sayInThread(room, rootA, "and a follow-up")
	a2 := alice.waitAnswer(room, bot, sim.Answer(2, "and a follow-up", answerTokens))
	if a2.thread != rootA {
		t.Errorf("the follow-up's answer is in thread %q, want %s", a2.thread, rootA)
	}
	if got := s.Stats().Requests; got != 4 {
		t.Errorf("the simulator got %d requests, want 4", got)
	}
	checkNoPlaintext(t, alice, room, bot)
}

// A turn cut off by a crash before anything was shown is run again after
// the restart, and its answer goes where the first attempt's would have:
// into the thread it was asked in (the room scope keys one session per
// room, so only the journalled target knows the thread) as a reply that
// mentions the asker.
func TestResumedAnswerStaysInItsThread(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	bob := newUser(t, srv, "bob")
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)
	opts.SessionScope = ScopeRoom

	// The first run's agent thinks for an hour: the crash comes first.
	slow := sim.New(sim.Options{AllowSessionWithoutKey: true, FirstTokenDelay: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	g := startGateway(t, opts, home, slowSrv.URL)
	room := alice.createRoom(true, false, bob.id)
	bob.join(room)
	alice.waitJoined(room, bob.id)
	alice.invite(room, bot)
	alice.waitJoined(room, bot)

	root := alice.say(room, "a topic of its own")
	asked := alice.sayInThread(room, root, "herald: what do you make of it")
	alice.waitFor("the agent to start on the question", func() bool { return slow.Stats().Requests == 1 })
	g.crash()
	if got := alice.answersFrom(room, bot); len(got) != 0 {
		t.Fatalf("the crashed gateway showed %d messages", len(got))
	}

	s, simURL := newSim(t)
	startGateway(t, opts, home, simURL)
	a := alice.waitAnswer(room, bot, sim.Answer(1, "what do you make of it", answerTokens))
	if a.thread != root {
		t.Errorf("the resumed answer is in thread %q, want the asking thread %s", a.thread, root)
	}
	if a.replyTo != asked {
		t.Errorf("the resumed answer replies to %q, want the asking message %s", a.replyTo, asked)
	}
	if !slices.Contains(a.mentions, alice.id) {
		t.Errorf("the resumed answer mentions %v, want the asker %s", a.mentions, alice.id)
	}
	if n := s.Stats().Requests; n != 1 {
		t.Errorf("the turn ran %d times after the restart, want once", n)
	}
	if n := len(alice.answersFrom(room, bot)); n != 1 {
		t.Errorf("the bot sent %d messages, want the one answer", n)
	}
	checkNoPlaintext(t, alice, room, bot)
}

// With Synapse's default budget (0.2 events a second, bursts of 10), a
// short answer's first text goes out while the agent still writes, and its
// final text right after the agent's end, on a token held back for it:
// nothing waits for an interval or a refill. Told by the order of the
// bot's events and the tokens its budget held, not by a clock.
func TestShortAnswerGoesOutAtOnce(t *testing.T) {
	srv := startHomeserver(t, MessageBudget)
	alice := newUser(t, srv, "alice")
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)
	opts.Budget = MessageBudget

	s := sim.New(sim.Options{AllowSessionWithoutKey: true, TokensPerSecond: 6, AnswerTokens: 12, Logger: slog.New(slog.DiscardHandler)})
	var agentEnd atomic.Pointer[time.Time]
	simSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/chat/completions") {
			now := time.Now()
			agentEnd.Store(&now)
		}
	}))
	defer simSrv.Close()
	startGateway(t, opts, home, simSrv.URL)
	room := alice.createRoom(false, true, bot)
	alice.waitJoined(room, bot)
	asked := alice.say(room, "hello")
	alice.waitAnswer(room, bot, sim.Answer(1, "hello", 12))
	alice.waitFor("the done marker", func() bool { return slices.Equal(alice.reactionsOn(room, asked, bot), []string{"✅"}) })

	end := *agentEnd.Load()
	var texts []matrixtest.Event
	for _, e := range srv.Events() {
		if e.Type == "m.room.message" {
			texts = append(texts, e)
		}
	}
	if len(texts) < 2 {
		t.Fatalf("the bot sent %d text events, want a message and its final edit at least", len(texts))
	}
	if first := texts[0]; !first.At.Before(end) {
		t.Errorf("the first text went out %v after the agent's end, want while it wrote", first.At.Sub(end))
	}
	final := texts[len(texts)-1]
	if final.Level < 3 {
		t.Errorf("the budget held %.2f tokens at the final text, want the 3 intermediate edits leave: its own and the next answer's first and final", final.Level)
	}
	var after []string
	for _, e := range srv.Events() {
		if e.At.After(end) {
			after = append(after, e.Kind+" "+e.Type)
		}
	}
	// The final text comes first, unless the last edit, made once the
	// last words came and before the agent's [DONE], showed it already.
	want := []string{"send m.room.message", "redact ", "send m.reaction"}
	if len(after) < len(want) {
		want = want[1:]
	}
	if !slices.Equal(after, want) {
		t.Errorf("after the agent's end the bot sent %q, want the final text at once (if not shown yet), then the marker", after)
	}
}

// The first start skips the history of the rooms the bot is in: only what
// comes after it is answered.
func TestFirstStartSkipsHistory(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	s, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, token := registerBot(t, srv, home, alice.id)

	// The bot's account is in a DM with alice before Herald ever ran.
	room := alice.createRoom(false, true, bot)
	botCli, err := mautrix.NewClient(srv.URL(), bot, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := botCli.JoinRoomByID(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	alice.waitJoined(room, bot)
	alice.say(room, "said before the first start")

	startGateway(t, opts, home, simURL)
	alice.say(room, "said after the start")
	alice.waitAnswer(room, bot, sim.Answer(1, "said after the start", answerTokens))
	if got := s.Stats().Requests; got != 1 {
		t.Errorf("the simulator got %d requests, want 1: the history is not answered", got)
	}
}

// With a recovery key, the gateway fetches the cross-signing keys from
// secret storage and signs its device, so others see it as verified.
func TestCrossSigningWithRecoveryKey(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home)

	// The bot's owner sets up cross-signing and secret storage from
	// another device of the account, as Element would.
	owner := loginDevice(t, srv, "herald", opts.Password)
	recoveryKey, _, err := owner.Machine().GenerateAndUploadCrossSigningKeysWithPassword(context.Background(), opts.Password, "")
	if err != nil {
		t.Fatalf("setting up cross-signing: %v", err)
	}

	opts.RecoveryKey = recoveryKey
	g := startGateway(t, opts, home, simURL)
	c, err := g.adapter.connection()
	if err != nil {
		t.Fatal(err)
	}
	assertSigned(t, srv, bot, c.cli.DeviceID)
}

// With MATRIX_RECOVERY_KEY_OUTPUT_FILE and an account without
// cross-signing, the gateway sets it up, signs its device, and writes the
// recovery key to the file (mode 0600); the key then signs a new device
// as MATRIX_RECOVERY_KEY, and a second start makes no second key.
func TestCrossSigningSetUpWithARecoveryKeyFile(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home)
	opts.RecoveryKeyFile = filepath.Join(t.TempDir(), "keys", "recovery-key.txt")

	g := startGateway(t, opts, home, simURL)
	c, err := g.adapter.connection()
	if err != nil {
		t.Fatal(err)
	}
	assertSigned(t, srv, bot, c.cli.DeviceID)
	g.stop()
	info, err := os.Stat(opts.RecoveryKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("the recovery key file has mode %v, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(opts.RecoveryKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSuffix(string(data), "\n")
	if key == string(data) || strings.Count(key, " ") != 11 {
		t.Fatalf("the file holds %q, want a recovery key (12 groups) and a newline", data)
	}

	// The same file on a second start: nothing new is made; herald
	// doctor sees the device signed.
	g = startGateway(t, opts, home, simURL)
	g.stop()
	platformtest.ExpectFinding(t, diagnosis(t, opts, home), "matrix: cross-signing", platform.OK, "set up; device "+string(c.cli.DeviceID)+" is signed")
	if again, err := os.ReadFile(opts.RecoveryKeyFile); err != nil || string(again) != string(data) {
		t.Errorf("a second start changed the recovery key file: %q, %v", again, err)
	}

	// The key signs another device of the account, as MATRIX_RECOVERY_KEY.
	other := loginDevice(t, srv, "herald", opts.Password)
	if err := other.Machine().VerifyWithRecoveryKey(context.Background(), key); err != nil {
		t.Fatalf("the written key does not open the secret storage: %v", err)
	}
	assertSigned(t, srv, bot, other.Machine().Client.DeviceID)
}

// assertSigned checks that the homeserver shows a device of bot signed by
// the account's self-signing key.
func assertSigned(t *testing.T, srv *matrixtest.Server, bot id.UserID, device id.DeviceID) {
	t.Helper()
	viewer := loginDevice(t, srv, "herald", password("herald"))
	keys, err := viewer.Machine().Client.QueryKeys(context.Background(), &mautrix.ReqQueryKeys{
		DeviceKeys: map[id.UserID]mautrix.DeviceIDList{bot: {device}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ssk, ok := keys.SelfSigningKeys[bot]
	if !ok || len(ssk.Keys) == 0 {
		t.Fatalf("the bot has no self-signing key on the homeserver: %+v", keys.SelfSigningKeys)
	}
	dev, ok := keys.DeviceKeys[bot][device]
	if !ok {
		t.Fatalf("device %s not found", device)
	}
	for keyID := range ssk.Keys {
		if _, ok := dev.Signatures[bot][keyID]; ok {
			return
		}
	}
	t.Errorf("device %s is not signed by the self-signing key %v: signatures %v", device, ssk.Keys, dev.Signatures)
}

// loginDevice logs an account in as a new device with encryption.
func loginDevice(t *testing.T, srv *matrixtest.Server, localpart, pw string) *cryptohelper.CryptoHelper {
	t.Helper()
	token, device := srv.Login(t, localpart, pw)
	cli, err := mautrix.NewClient(srv.URL(), id.UserID("@"+localpart+":"+matrixtest.ServerName), token)
	if err != nil {
		t.Fatal(err)
	}
	cli.DeviceID = id.DeviceID(device)
	raw, db, err := openStore(filepath.Join(t.TempDir(), "owner.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	helper, err := cryptohelper.NewCryptoHelper(cli, []byte("owner pickle key"), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return helper
}

// An image sent into an encrypted room reaches the gateway decrypted, as
// an image attachment with its caption.
func TestEncryptedImage(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)

	var mu sync.Mutex
	var got []chat.Inbound
	arrived := make(chan struct{}, 10)
	a := runAdapter(t, opts, home, func(_ context.Context, in chat.Inbound) error {
		mu.Lock()
		got = append(got, in)
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	})
	room := alice.createRoom(true, true, bot)
	alice.waitJoined(room, bot)

	img := testPNG(t)
	file := attachment.NewEncryptedFile()
	ciphertext := bytes.Clone(img) // encrypted in place; img stays the plaintext to compare
	file.EncryptInPlace(ciphertext)
	upload, err := alice.cli.UploadBytes(context.Background(), ciphertext, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	alice.send(room, &event.MessageEventContent{
		MsgType:  event.MsgImage,
		Body:     "what is on this picture?",
		FileName: "dot.png",
		File:     &event.EncryptedFileInfo{EncryptedFile: *file, URL: upload.ContentURI.CUString()},
		Info:     &event.FileInfo{MimeType: "image/png", Size: len(img)},
	})
	waitChan(t, arrived, "the image message")
	mu.Lock()
	in := got[0]
	if in.Text != "what is on this picture?" || !in.Mentioned || in.Source.ChatType != chat.DM {
		t.Errorf("inbound = text %q, mentioned %v, type %s", in.Text, in.Mentioned, in.Source.ChatType)
	}
	if len(in.Attachments) != 1 {
		mu.Unlock()
		t.Fatalf("%d attachments, want the image", len(in.Attachments))
	}
	att := in.Attachments[0]
	if att.Kind != "image" || att.MIMEType != "image/png" || att.Name != "dot.png" || !bytes.Equal(att.Data, img) {
		t.Errorf("attachment = %s %s %s (%d bytes), want the decrypted image/png dot.png (%d bytes)", att.Kind, att.MIMEType, att.Name, len(att.Data), len(img))
	}
	mu.Unlock()

	// Reactions: 👀 while working, then ✅ in its place.
	target := chat.TargetOf(in.Source)
	if calls, err := a.TurnStatus(context.Background(), target, platform.TurnWorking); err != nil || calls != 1 {
		t.Fatalf("👀: %d calls, %v; want a reaction", calls, err)
	}
	if calls, err := a.TurnStatus(context.Background(), target, platform.TurnDone); err != nil || calls != 2 {
		t.Fatalf("✅: %d calls, %v; want a redaction and a reaction", calls, err)
	}
	alice.waitFor("✅ on the image, 👀 removed", func() bool {
		keys := alice.reactionsOn(room, id.EventID(in.EventID), bot)
		return len(keys) == 1 && keys[0] == "✅"
	})
	checkNoPlaintext(t, alice, room, bot)
}

func testPNG(t *testing.T) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, 2, 2))
	m.Set(0, 0, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func waitChan(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A crypto store that no longer matches the device is reported with what
// to do, rather than the bot silently failing to decrypt; in optional mode
// the bot runs on without encryption but never writes plaintext into an
// encrypted room.
func TestCryptoStoreMismatch(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)
	g := startGateway(t, opts, home, simURL)
	room := alice.createRoom(true, true, bot)
	alice.waitJoined(room, bot)
	g.stop()

	start := func(opts setup) error {
		opts.deps.State = platformtest.MemState{}
		a, err := New(opts.Options, opts.deps)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return a.Run(ctx, func(context.Context, chat.Inbound) error { return nil })
	}

	// The session file was lost: the bot logs in again as the device the
	// crypto store holds.
	sessionPath := filepath.Join(opts.deps.Dir, sessionFile)
	old := readSessionFile(t, opts.deps.Dir).DeviceID
	os.Remove(sessionPath)
	g = startGateway(t, opts, home, simURL)
	if now := readSessionFile(t, opts.deps.Dir).DeviceID; now != old {
		t.Errorf("after losing the session file the bot is device %s, want the store's device %s", now, old)
	}
	g.stop()

	// The device changed: the store belongs to another device.
	kept, err := os.ReadFile(sessionPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := opts
	changed.DeviceID = "ANOTHERDEVICE"
	err = start(changed)
	if err == nil || !strings.Contains(err.Error(), "belongs to device "+old) || !strings.Contains(err.Error(), "MATRIX_DEVICE_ID="+old) {
		t.Errorf("with a new device: %v; want the store's device named and what to do", err)
	}

	// Back to the old device: its kept session is used again.
	g = startGateway(t, opts, home, simURL)
	if now := readSessionFile(t, opts.deps.Dir).DeviceID; now != old {
		t.Errorf("without MATRIX_DEVICE_ID the bot is device %s, want the store's device %s", now, old)
	}
	g.stop()
	if err := os.WriteFile(sessionPath, kept, 0o600); err != nil {
		t.Fatal(err)
	}

	// The store was lost while the device's keys are on the homeserver.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(opts.deps.Dir, storeFile+suffix))
	}
	err = start(opts)
	if err == nil || !strings.Contains(err.Error(), "already has encryption keys") || !strings.Contains(err.Error(), "required") {
		t.Errorf("with the store lost: %v; want the lost store reported and start-up refused", err)
	}

	// Optional mode: the bot runs, and refuses to send into the encrypted room.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(opts.deps.Dir, storeFile+suffix))
	}
	opts.E2EE = E2EEOptional
	a := runAdapter(t, opts, t.TempDir(), func(context.Context, chat.Inbound) error { return nil })
	if _, err := a.Send(context.Background(), chat.Target{ChatID: string(room)}, "must not be sent in plaintext"); !errors.Is(err, ErrEncryptedRoom) {
		t.Errorf("Send into an encrypted room without encryption: %v, want ErrEncryptedRoom", err)
	}
	for _, e := range alice.rawMessages(room) {
		if e["sender"] == string(bot) && e["type"] == "m.room.message" {
			t.Errorf("plaintext from the bot: %v", e["content"])
		}
	}
}

// The homeserver's rate limit reaches the delivery layer as a
// platform.RateLimitError with the wait the homeserver asked for (mautrix
// does not wait it out by itself). Dendrite limits typing notices, not
// sends, so those are what is sent here.
func TestRateLimitFromTheHomeserver(t *testing.T) {
	srv := matrixtest.StartWith(t, matrixtest.Options{RateLimit: true})
	home := t.TempDir()
	opts, _, token := registerBot(t, srv, home)
	opts.UserID, opts.Password, opts.AccessToken, opts.E2EE = "", "", token, E2EEOff
	a := runAdapter(t, opts, home, func(context.Context, chat.Inbound) error { return nil })
	c, err := a.connection()
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.cli.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	target := chat.Target{ChatID: string(created.RoomID)}
	var rl *platform.RateLimitError
	for i := 0; i < 50 && rl == nil; i++ {
		if err := a.Typing(context.Background(), target); err != nil && !errors.As(err, &rl) {
			t.Fatalf("typing %d: %v, want success or a rate limit", i, err)
		}
	}
	if rl == nil {
		t.Fatal("50 typing notices in a row were never rate limited")
	}
	if rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Errorf("retry after %s, want the homeserver's wait", rl.RetryAfter)
	}
}
