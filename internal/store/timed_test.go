package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/sqlite"
)

// Timed times the journal writes, failed ones too, and nothing else.
func TestTimed(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ops []string
	s := store.Timed(db, func(op string, took time.Duration) {
		if took < 0 {
			t.Errorf("%s took %v", op, took)
		}
		ops = append(ops, op)
	})
	ctx := context.Background()
	turn, err := s.Receive(ctx, "k", chat.Inbound{Source: chat.Source{Platform: "telegram", ChatID: "c", ChatType: chat.DM, UserID: "u"}, Text: "hi", EventID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, turn.ID+1, store.Running, ""); err == nil {
		t.Error("an unknown turn's status was set")
	}
	if err := s.Append(ctx, "s", store.Entry{Role: chat.User, Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.History(ctx, "s", 0); err != nil {
		t.Fatal(err)
	}
	if want := []string{"receive", "turn_status", "append"}; !slices.Equal(ops, want) {
		t.Errorf("timed %q, want %q", ops, want)
	}
}
