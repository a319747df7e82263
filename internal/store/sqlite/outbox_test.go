package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

func TestReceiveRecordsChats(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	dm := inbound("telegram", "e1", "hi")
	dm.Source.MessageID = "m1"
	receive(t, s, "telegram:dm:c1", dm)
	topic := inbound("telegram", "e2", "hi")
	topic.Source.ChatID, topic.Source.ChatType, topic.Source.ThreadID = "-100", chat.Thread, "7"
	receive(t, s, "telegram:thread:-100:7", topic)
	c.Add(time.Minute)
	later := inbound("telegram", "e3", "again")
	later.Source.ChatID, later.Source.ChatType, later.Source.UserID = "-100", chat.Group, "u2"
	receive(t, s, "telegram:group:-100:u2", later)

	got, err := s.FindChat(ctx, "telegram", "c1", "")
	want := store.Chat{SessionKey: "telegram:dm:c1", Source: dm.Source, SeenAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	want.Source.MessageID = ""
	if err != nil || got != want {
		t.Errorf("FindChat(c1) = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.FindChat(ctx, "telegram", "-100", ""); err != nil || got.SessionKey != "telegram:group:-100:u2" {
		t.Errorf("FindChat(-100) = %+v, %v; want the latest conversation there", got, err)
	}
	if got, err := s.FindChat(ctx, "telegram", "-100", "7"); err != nil || got.SessionKey != "telegram:thread:-100:7" {
		t.Errorf("FindChat(-100, 7) = %+v, %v; want the topic's conversation", got, err)
	}
	for _, miss := range [][3]string{{"telegram", "-100", "8"}, {"matrix", "c1", ""}, {"telegram", "c2", ""}} {
		if _, err := s.FindChat(ctx, miss[0], miss[1], miss[2]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindChat(%q) = %v, want ErrNotFound", miss, err)
		}
	}

	if _, err := s.ChatOfSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChatOfSession before the session exists: %v, want ErrNotFound", err)
	}
	if err := s.SetSessionID(ctx, "telegram:thread:-100:7", "s1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ChatOfSession(ctx, "s1"); err != nil || got.Source.ThreadID != "7" || got.Source.ChatID != "-100" {
		t.Errorf("ChatOfSession(s1) = %+v, %v; want the topic", got, err)
	}
	// A session replaced by /new no longer names the chat.
	if err := s.SetSessionID(ctx, "telegram:thread:-100:7", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChatOfSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChatOfSession of a replaced session: %v, want ErrNotFound", err)
	}
}

// TestMigrationRecordsEarlierChats: a store journalled before the chats
// table existed knows the chats of its turns after the upgrade.
func TestMigrationRecordsEarlierChats(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m migration) bool { return m.name == "0004_outbox.sql" })
	if i < 0 {
		t.Fatal("no 0004_outbox.sql migration")
	}
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openAt(t, path)
	ctx := context.Background()
	first := inbound("matrix", "e1", "x")
	first.Source.ChatID, first.Source.ChatType = "!room:hs", chat.Group
	receive(t, s, "matrix:group:!room:hs:u1", first)
	second := first
	second.Source.ThreadID, second.EventID = "$root", "e2"
	receive(t, s, "matrix:group:!room:hs:u1", second)
	// Back to the schema before 0004, with its turns kept.
	for _, table := range []string{"delivery_sends", "deliveries", "chats"} {
		if _, err := s.w.Exec("DROP TABLE " + table); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.Exec("PRAGMA user_version = " + strconv.Itoa(i)); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, s.w, ms); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindChat(ctx, "matrix", "!room:hs", "")
	if err != nil || got.SessionKey != "matrix:group:!room:hs:u1" || got.Source.ThreadID != "$root" || got.Source.UserID != "u1" {
		t.Errorf("after the upgrade FindChat = %+v, %v; want the later turn's chat", got, err)
	}
}

// delivery is a delivery to two chats.
func delivery(key string) store.Delivery {
	return store.Delivery{Key: key, Target: "all", Text: "the report", Sends: []store.Send{
		{Platform: "telegram", Target: chat.Target{ChatID: "-100", ThreadID: "7"}},
		{Platform: "matrix", Target: chat.Target{ChatID: "!home:hs"}},
	}}
}

func TestOutbox(t *testing.T) {
	s, c, path := newStore(t)
	ctx := context.Background()
	d, err := s.Enqueue(ctx, delivery("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == 0 || len(d.Sends) != 2 || d.Sends[0].Status != store.Queued || d.Sends[1].Status != store.Queued {
		t.Fatalf("enqueued %+v, want an id and two queued sends", d)
	}
	c.Add(time.Second)
	again := delivery("k1")
	again.Text = "another text"
	was, err := s.Enqueue(ctx, again)
	if !errors.Is(err, store.ErrDuplicate) || was.ID != d.ID || was.Text != "the report" {
		t.Errorf("the same key again: %+v, %v; want the first delivery and ErrDuplicate", was, err)
	}
	if n := count(t, s, "delivery_sends"); n != 2 {
		t.Errorf("%d sends after a duplicate, want 2", n)
	}

	if err := s.SetSendStatus(ctx, d.ID, 0, store.Sending, "", nil); err != nil {
		t.Fatal(err)
	}
	other, err := s.Enqueue(ctx, delivery("k2"))
	if err != nil {
		t.Fatal(err)
	}
	unsent, err := s.UnsentDeliveries(ctx)
	if err != nil || len(unsent) != 2 || unsent[0].ID != d.ID || unsent[1].ID != other.ID || unsent[0].Sends[0].Status != store.Sending {
		t.Errorf("unsent = %+v, %v; want both, oldest first, the first sending", unsent, err)
	}

	if err := s.SetSendStatus(ctx, d.ID, 0, store.Sent, "ignored", []string{"m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSendStatus(ctx, d.ID, 1, store.NotSent, "forbidden", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSendStatus(ctx, d.ID, 2, store.Sent, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown send: %v, want ErrNotFound", err)
	}
	if _, err := s.Delivery(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unknown delivery: %v, want ErrNotFound", err)
	}

	// What was journalled survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	got, err := s.Delivery(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	sent, failed := got.Sends[0], got.Sends[1]
	if got.Key != "k1" || got.Target != "all" || got.Text != "the report" ||
		sent.Status != store.Sent || sent.Error != "" || !slices.Equal(sent.MessageIDs, []string{"m1", "m2"}) || sent.Target.ThreadID != "7" ||
		failed.Status != store.NotSent || failed.Error != "forbidden" || len(failed.MessageIDs) != 0 || failed.Platform != "matrix" {
		t.Errorf("after reopening: %+v", got)
	}
	unsent, err = s.UnsentDeliveries(ctx)
	if err != nil || len(unsent) != 1 || unsent[0].ID != other.ID {
		t.Errorf("unsent after settling the first = %+v, %v; want the second only", unsent, err)
	}
}

func TestPruneDeliveries(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	settled, err := s.Enqueue(ctx, delivery("settled"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := s.Enqueue(ctx, delivery("pending"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.SetSendStatus(ctx, settled.ID, i, store.Sent, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSendStatus(ctx, pending.ID, 0, store.Sent, "", nil); err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	n, err := s.PruneTurns(ctx, 24*time.Hour)
	if err != nil || n != 1 {
		t.Errorf("PruneTurns = %d, %v; want the settled delivery pruned", n, err)
	}
	if _, err := s.Delivery(ctx, settled.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the settled delivery after pruning: %v, want ErrNotFound", err)
	}
	if count(t, s, "delivery_sends") != 2 {
		t.Errorf("%d sends left, want the pending delivery's 2", count(t, s, "delivery_sends"))
	}
	// Its key is free again; the pending one's is not.
	if _, err := s.Enqueue(ctx, delivery("settled")); err != nil {
		t.Errorf("a pruned key again: %v", err)
	}
	if _, err := s.Enqueue(ctx, delivery("pending")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("a pending key again: %v, want ErrDuplicate", err)
	}
}
