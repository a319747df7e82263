package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

// TestMigrationRecordsEarlierChats: a store journalled before the chats
// table existed knows the chats of its turns after the upgrade.
func TestMigrationRecordsEarlierChats(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m store.Migration) bool { return m.Name == "0004_outbox.sql" })
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
