package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openAt opens the store at path and closes it when the test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // a second Close is harmless
	return s
}

// receive journals in under key and fails the test if that fails.
func receive(t testing.TB, s *Store, key string, in chat.Inbound) store.Turn {
	t.Helper()
	turn, err := s.Receive(context.Background(), key, in)
	if err != nil {
		t.Fatal(err)
	}
	return turn
}

// newStore opens a fresh store in a temp dir with a settable clock.
func newStore(t testing.TB) (*Store, *storetest.Clock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openAt(t, path)
	c := storetest.NewClock()
	s.now = c.Now
	return s, c, path
}

func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func inbound(platform, eventID, text string) chat.Inbound {
	return chat.Inbound{
		Source:   chat.Source{Platform: platform, ChatID: "c1", ChatType: chat.DM, UserID: "u1"},
		Text:     text,
		EventID:  eventID,
		Received: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC),
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	s, _, path := newStore(t)
	ctx := context.Background()
	if err := s.SetState(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.History(ctx, "x", 0); err != nil { // a reader maps -shm too
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), m)
		}
	}
}

func TestOpenTightensStaleWAL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix file modes")
	}
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A -shm left world-readable by some earlier run. SQLite itself fixes
	// the mode of an empty one only.
	if err := os.WriteFile(path+"-shm", []byte("stale shared memory"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path+"-shm", 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path)
	fi, err := os.Stat(path + "-shm")
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("-shm mode %v after open, want 0600", m)
	}
}

func TestMissingParentDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "herald.db")
	_, err := Open(context.Background(), path)
	if err == nil {
		t.Fatal("Open succeeded in a missing directory")
	}
	if !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %q should name %s and wrap ErrNotExist", err, path)
	}
}

func TestOddPath(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("'?' is not allowed in Windows file names")
	}
	dir := filepath.Join(t.TempDir(), "a b?c=d#e%20f")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "h?x.db")
	s := openAt(t, path)
	if err := s.SetState(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "h?x.db") {
			t.Errorf("stray file %q next to the database", e.Name())
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("database not written at %s: %v", path, err)
	}
}

func TestWAL(t *testing.T) {
	s, _, _ := newStore(t)
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("writer journal_mode %q, want wal", mode)
	}
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("reader journal_mode %q, want wal", mode)
	}
	var fk, syncMode, busy int
	if err := s.w.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&syncMode); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if fk != 1 || syncMode != 1 || busy != 5000 {
		t.Errorf("foreign_keys=%d synchronous=%d busy_timeout=%d, want 1 1 (NORMAL) 5000", fk, syncMode, busy)
	}
}

func TestReaderIsReadOnly(t *testing.T) {
	s, _, _ := newStore(t)
	if _, err := s.r.Exec("INSERT INTO state (name, value, updated_at) VALUES ('a', 'b', 0)"); err == nil {
		t.Error("write through the read pool succeeded")
	}
}

func userVersion(t testing.TB, s *Store) int {
	t.Helper()
	var v int
	if err := s.w.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrationsIdempotent(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s := openAt(t, path)
	if v := userVersion(t, s); v != len(ms) {
		t.Errorf("user_version %d after first open, want %d", v, len(ms))
	}
	if err := s.SetState(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if v := userVersion(t, s); v != len(ms) {
			t.Errorf("user_version %d after reopen, want %d", v, len(ms))
		}
		if v, ok, err := s.State(ctx, "k"); err != nil || !ok || v != "v" {
			t.Errorf("state after reopen: %q %v %v", v, ok, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateAppliesOnlyNew(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openAt(t, path)
	ctx := context.Background()
	if err := s.SetState(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// A later migration that fails half way leaves nothing behind.
	bad := append(slices.Clip(ms), store.Migration{Version: len(ms) + 1, Name: "bad.sql",
		SQL: "CREATE TABLE extra (x INTEGER); INSERT INTO nosuchtable VALUES (1);"})
	if err := migrate(ctx, s.w, bad); err == nil || !strings.Contains(err.Error(), "bad.sql") {
		t.Errorf("failing migration: %v, want an error naming it", err)
	}
	if v := userVersion(t, s); v != len(ms) {
		t.Errorf("user_version %d after a failed migration, want %d", v, len(ms))
	}
	var n int
	if err := s.w.QueryRow("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'extra'").Scan(&n); err != nil || n != 0 {
		t.Errorf("failed migration left its table: n=%d err=%v", n, err)
	}
	// A good one is applied alone: re-running the first would fail on its
	// CREATE TABLEs.
	good := append(slices.Clip(ms), store.Migration{Version: len(ms) + 1, Name: "good.sql",
		SQL: "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (7);"})
	if err := migrate(ctx, s.w, good); err != nil {
		t.Fatal(err)
	}
	if v := userVersion(t, s); v != len(ms)+1 {
		t.Errorf("user_version %d, want %d", v, len(ms)+1)
	}
	if err := s.w.QueryRow("SELECT x FROM extra").Scan(&n); err != nil || n != 7 {
		t.Errorf("new migration not applied: x=%d err=%v", n, err)
	}
	if v, ok, err := s.State(ctx, "k"); err != nil || !ok || v != "v" {
		t.Errorf("data lost by migrating: %q %v %v", v, ok, err)
	}
	if err := migrate(ctx, s.w, good); err != nil {
		t.Errorf("migrating an up-to-date database: %v", err)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s := openAt(t, path)
	if _, err := s.w.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path)
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a database from a newer version")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should wrap ErrSchemaTooNew and name the version and path", err)
	}
}

func TestClosedStoreErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Receive(context.Background(), "k", inbound("telegram", "e", "x"))
	if err == nil || !strings.Contains(err.Error(), "receive") {
		t.Errorf("receive on a closed store: %v, want an error naming the operation", err)
	}
}

func BenchmarkReceive(b *testing.B) {
	s, _, _ := newStore(b)
	ctx := context.Background()
	in := inbound("telegram", "", "hello there")
	i := 0
	for b.Loop() {
		in.EventID = fmt.Sprint("e", i)
		i++
		if _, err := s.Receive(ctx, "k", in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendHistory(b *testing.B) {
	s, _, _ := newStore(b)
	ctx := context.Background()
	e := store.Entry{Role: chat.User, Content: strings.Repeat("word ", 40)}
	for b.Loop() {
		if err := s.Append(ctx, "s", e); err != nil {
			b.Fatal(err)
		}
		if _, err := s.History(ctx, "s", 20); err != nil {
			b.Fatal(err)
		}
	}
}

// The contract every store keeps (package storetest), on SQLite.
func TestContract(t *testing.T) {
	storetest.Run(t, opener)
}

// opener opens a store for the contract and the benchmarks.
func opener(t testing.TB, now func() time.Time) (store.Store, func() store.Store) {
	path := filepath.Join(t.TempDir(), "herald.db")
	open := func() store.Store {
		s := openAt(t, path)
		s.now = now
		return s
	}
	return open(), open
}

// The journal under the gateway's load (see storetest.BenchJournal).
func BenchmarkJournal(b *testing.B) { storetest.BenchJournal(b, opener) }
