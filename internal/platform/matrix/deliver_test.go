package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform/matrix/matrixtest"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/store"
)

// The agent's own messages (a scheduled job's report), delivered through
// the real gateway's outbox and the Matrix adapter into encrypted rooms.

// A report to the configured home room, by "matrix" and by "home", and
// one to the chat of a session, "origin:<session id>": the user's client
// decrypts each, the homeserver never holds their text in plaintext, and
// the deliveries are recorded as sent with the events that show them.
func TestDeliveryToAnEncryptedHomeRoom(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, token := registerBot(t, srv, home, alice.id)

	// The home room is one the bot's account is in before the gateway's
	// first start, as a configured home room would be.
	room := alice.createRoom(true, false, bot)
	joinAsAccount(t, srv, bot, token, room)
	alice.waitJoined(room, bot)
	g := startGatewayWith(t, opts, home, simURL, withHome(chat.Target{ChatID: string(room)}))

	const report = "**scheduled** report"
	d1 := platformtest.Deliver(t, g.runner, "k1", "matrix", report)
	checkSends(t, d1, room, "")
	got1 := alice.waitDelivered(room, bot, report)
	if !strings.Contains(got1.html, "<strong>scheduled</strong> report") {
		t.Errorf("formatted_body = %q, want the report rendered", got1.html)
	}
	checkSent(t, g, d1, got1.id)

	// The same key again sends nothing: the next report, queued after it
	// for the same room, is the only other message the room gets.
	again, created, err := g.runner.Deliver(context.Background(), "k1", "matrix", report)
	if err != nil || created || again.ID != d1.ID {
		t.Errorf("the key k1 again: delivery %d, created %v, %v; want delivery %d, not created", again.ID, created, err, d1.ID)
	}
	const report2 = "the second **scheduled** report, to home"
	d2 := platformtest.Deliver(t, g.runner, "k2", "home", report2)
	checkSends(t, d2, room, "")
	got2 := alice.waitDelivered(room, bot, report2)
	checkSent(t, g, d2, got2.id)
	if texts := textsOf(alice.answersFrom(room, bot)); !slices.Equal(texts, []string{report, report2}) {
		t.Errorf("the home room shows %q from the bot, want the two reports once each, in order", texts)
	}
	checkNoPlaintext(t, alice, room, bot)
	checkNoText(t, alice, room, bot, "scheduled")

	// A conversation alice started in a DM: its session's chat is where
	// origin:<session id> goes.
	dm := alice.createRoom(true, true, bot)
	alice.waitJoined(dm, bot)
	alice.say(dm, "hello")
	alice.waitAnswer(dm, bot, sim.Answer(1, "hello", answerTokens))
	c, err := g.store.FindChat(context.Background(), "matrix", string(dm), "")
	if err != nil {
		t.Fatalf("the DM is not a known chat: %v", err)
	}
	sessionID, ok, err := g.store.SessionID(context.Background(), c.SessionKey)
	if err != nil || !ok {
		t.Fatalf("the DM's conversation %q has no session: %v", c.SessionKey, err)
	}
	const report3 = "a **scheduled** report for this conversation"
	d3 := platformtest.Deliver(t, g.runner, "k3", "origin:"+sessionID, report3)
	checkSends(t, d3, dm, "")
	got3 := alice.waitDelivered(dm, bot, report3)
	checkSent(t, g, d3, got3.id)
	if got3.replyTo != "" || got3.thread != "" {
		t.Errorf("the report to the DM replies to %q in thread %q, want a message of its own", got3.replyTo, got3.thread)
	}
	checkNoPlaintext(t, alice, dm, bot)
	checkNoText(t, alice, dm, bot, "scheduled")
	if n := len(alice.answersFrom(room, bot)); n != 2 {
		t.Errorf("the home room has %d messages of the bot, want the 2 reports (the DM's went to the DM)", n)
	}
}

// Reports into threads: the home room's configured thread, another thread
// of the home room named by "matrix:<room>:<thread>", and a thread of
// another room that alice talked to the bot in. Each arrives decrypted as
// an m.thread relation to its root, kept in the clear for the homeserver.
func TestDeliveryIntoAThread(t *testing.T) {
	srv := startHomeserver(t, testBudget)
	alice := newUser(t, srv, "alice")
	_, simURL := newSim(t)
	home := t.TempDir()
	opts, bot, token := registerBot(t, srv, home, alice.id)

	room := alice.createRoom(true, false, bot)
	joinAsAccount(t, srv, bot, token, room)
	alice.waitJoined(room, bot)
	root := alice.say(room, "the reports go in this thread")
	g := startGatewayWith(t, opts, home, simURL, withHome(chat.Target{ChatID: string(room), ThreadID: string(root)}))

	const report = "a **scheduled** report in the home thread"
	d1 := platformtest.Deliver(t, g.runner, "t1", "matrix", report)
	checkSends(t, d1, room, root)
	got1 := alice.waitDelivered(room, bot, report)
	checkSent(t, g, d1, got1.id)
	alice.checkThread(room, got1.id, root)

	// Another thread of the home room, by name.
	root2 := alice.say(room, "another topic")
	const report2 = "a **scheduled** report in another thread"
	d2 := platformtest.Deliver(t, g.runner, "t2", "matrix:"+string(room)+":"+string(root2), report2)
	checkSends(t, d2, room, root2)
	got2 := alice.waitDelivered(room, bot, report2)
	checkSent(t, g, d2, got2.id)
	alice.checkThread(room, got2.id, root2)
	checkNoPlaintext(t, alice, room, bot)
	checkNoText(t, alice, room, bot, "scheduled")

	// A thread of another room, where alice asked the bot something.
	other := alice.createRoom(true, false)
	alice.invite(other, bot)
	alice.waitJoined(other, bot)
	root3 := alice.say(other, "a topic of its own")
	alice.sayInThread(other, root3, "herald: what do you think")
	answer := alice.waitAnswer(other, bot, sim.Answer(1, "what do you think", answerTokens))
	if answer.thread != root3 {
		t.Fatalf("the answer is in thread %q, want %s", answer.thread, root3)
	}
	const report3 = "a **scheduled** report where we talked"
	d3 := platformtest.Deliver(t, g.runner, "t3", "matrix:"+string(other)+":"+string(root3), report3)
	checkSends(t, d3, other, root3)
	got3 := alice.waitDelivered(other, bot, report3)
	checkSent(t, g, d3, got3.id)
	alice.checkThread(other, got3.id, root3)
	checkNoPlaintext(t, alice, other, bot)
	checkNoText(t, alice, other, bot, "scheduled")

	// A thread of that room no message came from is not a place to
	// deliver to: it is neither a known chat nor the home room.
	unknown := alice.say(other, "not a thread the bot was in")
	if _, _, err := g.runner.Deliver(context.Background(), "t4", "matrix:"+string(other)+":"+string(unknown), "x"); !errors.Is(err, gateway.ErrUnknownTarget) {
		t.Errorf("a delivery to an unknown thread of a room that is not home: %v, want ErrUnknownTarget", err)
	}
}

// withHome configures the gateway's Matrix home chat.
func withHome(t chat.Target) func(*gateway.Options) {
	return func(o *gateway.Options) { o.Homes = map[string]chat.Target{"matrix": t} }
}

// joinAsAccount joins a room as the bot's account, with the access token
// of its registration, not through Herald.
func joinAsAccount(t *testing.T, srv *matrixtest.Server, bot id.UserID, token string, room id.RoomID) {
	t.Helper()
	cli, err := mautrix.NewClient(srv.URL(), bot, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.JoinRoomByID(context.Background(), room); err != nil {
		t.Fatal(err)
	}
}

// checkSends checks that a delivery has one send, to the room (and
// thread) on Matrix.
func checkSends(t *testing.T, d store.Delivery, room id.RoomID, thread id.EventID) {
	t.Helper()
	if len(d.Sends) != 1 {
		t.Fatalf("delivery %q to %q has sends %+v, want one to %s", d.Key, d.Target, d.Sends, room)
	}
	if s := d.Sends[0]; s.Platform != "matrix" || s.Target.ChatID != string(room) || s.Target.ThreadID != string(thread) {
		t.Errorf("delivery %q to %q goes to %s %s thread %q, want matrix %s thread %q", d.Key, d.Target, s.Platform, s.Target.ChatID, s.Target.ThreadID, room, thread)
	}
}

// checkSent waits until a delivery's send is settled, and checks that it
// was sent to the room (and thread) as the event shown.
func checkSent(t *testing.T, g *gw, d store.Delivery, shown id.EventID) {
	t.Helper()
	settled := platformtest.Settled(t, g.runner, d.ID)
	var to chat.Target // checked by checkSends
	if len(settled.Sends) > 0 {
		to = settled.Sends[0].Target
	}
	platformtest.CheckSent(t, settled, "matrix", to.ChatID, to.ThreadID, string(shown))
}

// waitDelivered waits for the sender's message that says text, checks
// that it came encrypted and was decrypted, and returns it.
func (u *user) waitDelivered(room id.RoomID, sender id.UserID, text string) *answer {
	u.t.Helper()
	a := u.waitAnswer(room, sender, text)
	evt := u.event(a.id)
	if evt == nil || !evt.Mautrix.WasEncrypted {
		u.t.Errorf("the message %q (%s) did not come encrypted", text, a.id)
	}
	if a.edits != 0 {
		u.t.Errorf("the message %q was edited %d times, want it sent whole", text, a.edits)
	}
	return a
}

// event returns the message the user received with that id, decrypted
// if it came encrypted (the user records both forms).
func (u *user) event(evID id.EventID) *event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, evt := range u.events {
		if evt.ID == evID && evt.Type == event.EventMessage {
			return evt
		}
	}
	return nil
}

// checkThread checks that a message is in the thread of root, as its
// decrypted content says and as the homeserver sees it (a relation is
// left out of the encryption, for the homeserver to list threads).
func (u *user) checkThread(room id.RoomID, msg, root id.EventID) {
	u.t.Helper()
	if evt := u.event(msg); evt == nil {
		u.t.Errorf("%s was not received", msg)
	} else if rel := evt.Content.AsMessage().RelatesTo; rel == nil || rel.Type != event.RelThread || rel.EventID != root {
		u.t.Errorf("%s relates to %+v, want rel_type m.thread to %s", msg, rel, root)
	}
	for _, e := range u.rawMessages(room) {
		if e["event_id"] != string(msg) {
			continue
		}
		content, _ := e["content"].(map[string]any)
		rel, _ := content["m.relates_to"].(map[string]any)
		if rel["rel_type"] != string(event.RelThread) || rel["event_id"] != string(root) {
			u.t.Errorf("on the homeserver %s (a %v) relates to %v, want rel_type m.thread to %s", msg, e["type"], content["m.relates_to"], root)
		}
		return
	}
	u.t.Errorf("the homeserver has no event %s in %s", msg, room)
}

// checkNoText checks that no event the bot sent into the room holds s in
// the clear.
func checkNoText(t *testing.T, u *user, room id.RoomID, bot id.UserID, s string) {
	t.Helper()
	for _, e := range u.rawMessages(room) {
		if e["sender"] != string(bot) {
			continue
		}
		data, err := json.Marshal(e["content"])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), s) {
			t.Errorf("the bot's %v event %v holds %q in the clear: %s", e["type"], e["event_id"], s, data)
		}
	}
}

func textsOf(answers []*answer) []string {
	var out []string
	for _, a := range answers {
		out = append(out, a.text)
	}
	return out
}
