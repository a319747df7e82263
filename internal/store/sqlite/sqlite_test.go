package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable time source for s.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
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
func newStore(t testing.TB) (*Store, *clock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	s := openAt(t, path)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
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
	bad := append(slices.Clip(ms), migration{version: len(ms) + 1, name: "bad.sql",
		sql: "CREATE TABLE extra (x INTEGER); INSERT INTO nosuchtable VALUES (1);"})
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
	good := append(slices.Clip(ms), migration{version: len(ms) + 1, name: "good.sql",
		sql: "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (7);"})
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

func TestReceiveDedupe(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	first := receive(t, s, "k", inbound("telegram", "e1", "hello"))
	if first.ID == 0 || first.Status != store.Received || first.SessionKey != "k" {
		t.Errorf("turn %+v", first)
	}
	_, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hello again"))
	if !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("second receive: %v, want ErrDuplicate", err)
	}
	if n := count(t, s, "turns"); n != 1 {
		t.Errorf("%d turns after a duplicate, want 1", n)
	}
	if n := count(t, s, "seen"); n != 1 {
		t.Errorf("%d seen events after a duplicate, want 1", n)
	}
	// The same event id on another platform is another event.
	if _, err := s.Receive(ctx, "k2", inbound("matrix", "e1", "hi")); err != nil {
		t.Errorf("same id, other platform: %v", err)
	}
	if n := count(t, s, "turns"); n != 2 {
		t.Errorf("%d turns, want 2", n)
	}
}

func TestReceiveEmptyEventID(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Receive(ctx, "k", inbound("telegram", "", fmt.Sprint(i))); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
	if n := count(t, s, "turns"); n != 3 {
		t.Errorf("%d turns, want 3", n)
	}
	if n := count(t, s, "seen"); n != 0 {
		t.Errorf("%d seen events, want 0", n)
	}
}

// checkAllSet fails when a field of v (recursively, through structs and
// the first element of slices) is zero, so the round-trip test below grows
// with chat.Inbound.
func checkAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		for i := range v.NumField() {
			checkAllSet(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
		return
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty in the fixture", path)
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			checkAllSet(t, path+"[0]", v.Index(0))
		}
		return
	}
	if v.IsZero() {
		t.Errorf("%s is zero in the fixture: fill it so the round trip covers it", path)
	}
}

func TestInboundRoundTrip(t *testing.T) {
	s, _, path := newStore(t)
	ctx := context.Background()
	zone := time.FixedZone("X", 5*3600+30*60)
	in := chat.Inbound{
		Source: chat.Source{
			Platform: "matrix", ChatID: "!room:s", ChatName: "Room", ChatType: chat.Thread,
			UserID: "@a:s", UserName: "Ann", ThreadID: "$t", MessageID: "$m",
		},
		Text: "héllo \x00 <b>&\"'\n",
		Attachments: []chat.Attachment{
			{Kind: "image", MIMEType: "image/png", Name: "a.png", Data: []byte{0, 1, 2, 0xff, 0xfe}},
			{Kind: "image", MIMEType: "image/jpeg", Name: "b.jpg", Data: []byte("jpeg")},
		},
		Mentioned: true,
		EventID:   "$event",
		Received:  time.Date(2026, 3, 1, 17, 29, 59, 123456789, zone),
		To:        &chat.Target{ChatID: "!room:s", ThreadID: "$root", ReplyTo: "$m", Asker: "@a:s", DM: true},
	}
	checkAllSet(t, "Inbound", reflect.ValueOf(in))
	want := in
	want.Received = in.Received.UTC()

	turn := receive(t, s, "key", in)
	if !reflect.DeepEqual(turn.Inbound, want) {
		t.Errorf("Receive returned\n%+v\nwant\n%+v", turn.Inbound, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("%d pending turns, want 1", len(pending))
	}
	got := pending[0].Inbound
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored inbound\n%+v\nwant\n%+v", got, want)
	}
	if got.Received.Location() != time.UTC {
		t.Errorf("Received in %v, want UTC", got.Received.Location())
	}
}

func TestTurnFlow(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	var ids []int64
	for i := range 4 {
		turn := receive(t, s, "k", inbound("telegram", fmt.Sprint("e", i), fmt.Sprint("m", i)))
		ids = append(ids, turn.ID)
		c.Add(time.Second)
	}
	// 0 running, 1 delivered, 2 failed, 3 left received.
	if err := s.SetTurnStatus(ctx, ids[0], store.Running, "ignored"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[1], store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[2], store.Running, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTurnStatus(ctx, ids[2], store.Failed, "agent down"); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != ids[0] || pending[1].ID != ids[3] {
		t.Fatalf("pending %+v, want turns %d and %d", pending, ids[0], ids[3])
	}
	p0, p3 := pending[0], pending[1]
	if p0.Status != store.Running || p0.Error != "" || p0.Inbound.Text != "m0" {
		t.Errorf("turn 0: %+v", p0)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if !p0.CreatedAt.Equal(start) || !p0.UpdatedAt.Equal(start.Add(4*time.Second)) {
		t.Errorf("turn 0 created %v updated %v", p0.CreatedAt, p0.UpdatedAt)
	}
	if p0.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", p0.CreatedAt.Location())
	}
	if p3.Status != store.Received || p3.Inbound.Text != "m3" {
		t.Errorf("turn 3: %+v", p3)
	}
	var errText string
	if err := s.r.QueryRow("SELECT error FROM turns WHERE id = ?", ids[2]).Scan(&errText); err != nil {
		t.Fatal(err)
	}
	if errText != "agent down" {
		t.Errorf("failed turn error %q", errText)
	}

	if err := s.SetTurnStatus(ctx, 9999, store.Running, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
	if err := s.SetTurnStatus(ctx, ids[3], "bogus", ""); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("bogus status: %v", err)
	}
}

func TestMarkShown(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	if turn.Shown {
		t.Error("new turn is shown")
	}
	if err := s.SetTurnStatus(ctx, turn.ID, store.Running, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkShown(ctx, turn.ID); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || !pending[0].Shown || pending[0].Status != store.Running {
		t.Errorf("pending %+v, want one running shown turn", pending)
	}
	if err := s.MarkShown(ctx, turn.ID+1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func TestTurnFinal(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	pending, err := s.PendingTurns(ctx)
	if err != nil || len(pending) != 1 || pending[0].Final != nil {
		t.Fatalf("pending %+v (%v), want one turn without a final", pending, err)
	}
	want := store.Final{Text: "the whole answer", MessageIDs: []string{"41", "42"}}
	if err := s.SetTurnFinal(ctx, turn.ID, want); err != nil {
		t.Fatal(err)
	}
	pending, err = s.PendingTurns(ctx)
	if err != nil || len(pending) != 1 || pending[0].Final == nil || !reflect.DeepEqual(*pending[0].Final, want) {
		t.Errorf("pending %+v (%v), want the final %+v", pending, err, want)
	}
	if err := s.SetTurnFinal(ctx, turn.ID+1, want); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func TestTurnProgress(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	turn := receive(t, s, "k", inbound("telegram", "e", "x"))
	for _, want := range []store.Progress{{RunID: "run_1"}, {RunID: "run_1", MessageIDs: []string{"41", "42"}}} {
		if err := s.SetTurnProgress(ctx, turn.ID, want); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingTurns(ctx)
		if err != nil || len(pending) != 1 || !reflect.DeepEqual(pending[0].Progress, want) {
			t.Errorf("pending %+v (%v), want the progress %+v", pending, err, want)
		}
	}
	if err := s.SetTurnProgress(ctx, turn.ID+1, store.Progress{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown turn: %v, want ErrNotFound", err)
	}
}

func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ctx := context.Background()
	s := openAt(t, path)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	turn, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hi"))
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(err)
	check(s.SetTurnStatus(ctx, turn.ID, store.Running, ""))
	check(s.MarkShown(ctx, turn.ID))
	check(s.SetSessionID(ctx, "k", "sess-1"))
	check(s.Append(ctx, "sess-1",
		store.Entry{Role: chat.User, Content: "hi", MessageID: "m1", At: at},
		store.Entry{Role: chat.Assistant, Content: "hello", At: at.Add(time.Second)}))
	check(s.SetState(ctx, "telegram.offset", "42"))
	check(s.Close())

	s = openAt(t, path)
	if id, ok, err := s.SessionID(ctx, "k"); err != nil || !ok || id != "sess-1" {
		t.Errorf("session after reopen: %q %v %v", id, ok, err)
	}
	h, err := s.History(ctx, "sess-1", 0)
	check(err)
	want := []store.Entry{
		{Role: chat.User, Content: "hi", MessageID: "m1", At: at},
		{Role: chat.Assistant, Content: "hello", At: at.Add(time.Second)},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("history after reopen\n%+v\nwant\n%+v", h, want)
	}
	pending, err := s.PendingTurns(ctx)
	check(err)
	if len(pending) != 1 || pending[0].ID != turn.ID || pending[0].Status != store.Running || !pending[0].Shown {
		t.Errorf("pending after reopen: %+v", pending)
	}
	if v, ok, err := s.State(ctx, "telegram.offset"); err != nil || !ok || v != "42" {
		t.Errorf("state after reopen: %q %v %v", v, ok, err)
	}
	if _, err := s.Receive(ctx, "k", inbound("telegram", "e1", "hi")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("redelivery after reopen: %v, want ErrDuplicate", err)
	}
}

func TestHistory(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	if h, err := s.History(ctx, "none", 10); err != nil || len(h) != 0 {
		t.Errorf("empty history: %v %v", h, err)
	}
	for i := range 5 {
		if err := s.Append(ctx, "a", store.Entry{Role: chat.User, Content: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Minute)
	}
	if err := s.Append(ctx, "b", store.Entry{Role: chat.User, Content: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "a"); err != nil {
		t.Errorf("appending nothing: %v", err)
	}
	contents := func(h []store.Entry) string {
		var b []string
		for _, e := range h {
			b = append(b, e.Content)
		}
		return strings.Join(b, ",")
	}
	for _, tc := range []struct {
		limit int
		want  string
	}{{0, "0,1,2,3,4"}, {-1, "0,1,2,3,4"}, {2, "3,4"}, {1, "4"}, {5, "0,1,2,3,4"}, {50, "0,1,2,3,4"}} {
		h, err := s.History(ctx, "a", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := contents(h); got != tc.want {
			t.Errorf("limit %d: %s, want %s", tc.limit, got, tc.want)
		}
	}
	h, err := s.History(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	// A zero At is stamped with the time of the append.
	if want := time.Date(2026, 3, 1, 12, 4, 0, 0, time.UTC); !h[0].At.Equal(want) || h[0].At.Location() != time.UTC {
		t.Errorf("stamped At %v, want %v", h[0].At, want)
	}
}

func TestSetSessionIDRotation(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if _, ok, err := s.SessionID(ctx, "k"); err != nil || ok {
		t.Fatalf("unknown key: ok=%v err=%v", ok, err)
	}
	if err := s.SetSessionID(ctx, "k", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "s1", store.Entry{Role: chat.User, Content: "old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionID(ctx, "k", "s2"); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := s.SessionID(ctx, "k"); err != nil || !ok || id != "s2" {
		t.Errorf("after rotation: %q %v %v, want s2", id, ok, err)
	}
	if n := count(t, s, "sessions"); n != 1 {
		t.Errorf("%d session rows, want 1", n)
	}
	if h, err := s.History(ctx, "s2", 0); err != nil || len(h) != 0 {
		t.Errorf("new session history: %v %v", h, err)
	}
	if h, err := s.History(ctx, "s1", 0); err != nil || len(h) != 1 {
		t.Errorf("old session history lost: %v %v", h, err)
	}
}

// SwapSessionID moves a conversation on only from the session the caller
// read: starting one where there is none, or rotating from the current
// one; a session set meanwhile is never overwritten.
func TestSwapSessionID(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	current := func() string {
		t.Helper()
		id, _, err := s.SessionID(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	steps := []struct {
		old, new string
		swapped  bool
		after    string
	}{
		{"", "s1", true, "s1"},    // none yet: started
		{"", "s2", false, "s1"},   // one was started meanwhile: kept
		{"s1", "s3", true, "s3"},  // the rotation the agent reported
		{"s1", "s4", false, "s3"}, // from a session no longer current
		{"other", "s5", false, "s3"},
	}
	for _, st := range steps {
		swapped, err := s.SwapSessionID(ctx, "k", st.old, st.new)
		if err != nil {
			t.Fatal(err)
		}
		if swapped != st.swapped || current() != st.after {
			t.Errorf("swap %q → %q: swapped %v, session %q; want %v, %q", st.old, st.new, swapped, current(), st.swapped, st.after)
		}
	}
	if n := count(t, s, "sessions"); n != 1 {
		t.Errorf("%d session rows, want 1", n)
	}
}

func TestPairing(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Code) != codeLen || strings.Trim(p.Code, codeAlphabet) != "" {
		t.Errorf("code %q is not %d characters of %s", p.Code, codeLen, codeAlphabet)
	}
	if p.Platform != "telegram" || p.UserID != "u1" || p.UserName != "Ann" || p.Approved || !p.CreatedAt.Equal(c.Now()) {
		t.Errorf("pairing %+v", p)
	}
	c.Add(30 * time.Minute)
	again, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if again != p {
		t.Errorf("second create %+v, want the pending %+v", again, p)
	}
	other, err := s.CreatePairing(ctx, "matrix", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	if other.Code == p.Code {
		t.Error("a user on another platform got the same code")
	}

	if ok, err := s.IsPaired(ctx, "telegram", "u1"); err != nil || ok {
		t.Fatalf("paired before approval: %v %v", ok, err)
	}
	if _, err := s.ApprovePairing(ctx, "ZZZZ2222"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", err)
	}
	approved, err := s.ApprovePairing(ctx, "  "+strings.ToLower(p.Code)+"\n")
	if err != nil {
		t.Fatalf("approve lower-case code with spaces: %v", err)
	}
	want := p
	want.Approved = true
	if approved != want {
		t.Errorf("approved %+v, want %+v", approved, want)
	}
	if ok, err := s.IsPaired(ctx, "telegram", "u1"); err != nil || !ok {
		t.Errorf("not paired after approval: %v %v", ok, err)
	}
	if ok, err := s.IsPaired(ctx, "matrix", "u1"); err != nil || ok {
		t.Errorf("other platform paired: %v %v", ok, err)
	}
	if _, err := s.ApprovePairing(ctx, p.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("approving twice: %v, want ErrNotFound", err)
	}

	// The matrix code was made 30 minutes in; an hour later it has expired.
	c.Add(PairingTTL)
	if _, err := s.ApprovePairing(ctx, other.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired code: %v, want ErrNotFound", err)
	}
	fresh, err := s.CreatePairing(ctx, "matrix", "u1", "Ann B")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Code == other.Code || fresh.UserName != "Ann B" || !fresh.CreatedAt.Equal(c.Now()) {
		t.Errorf("after expiry got %+v, want a new code", fresh)
	}
	if _, err := s.ApprovePairing(ctx, fresh.Code); err != nil {
		t.Errorf("approve fresh code: %v", err)
	}
	if ok, err := s.IsPaired(ctx, "matrix", "u1"); err != nil || !ok {
		t.Errorf("not paired after approving the fresh code: %v %v", ok, err)
	}
}

func TestPairingJustBeforeExpiry(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(PairingTTL - time.Millisecond)
	if _, err := s.ApprovePairing(ctx, p.Code); err != nil {
		t.Errorf("code a millisecond before expiry: %v", err)
	}
}

// The wall clock jumping: hours forward expire a code (its age is an
// hour and more by the clock the operator reads too); hours back do not
// keep it valid for hours more: a code from the future is taken as
// expired, and the user gets a new one. A step of seconds changes nothing.
func TestPairingAcrossClockJumps(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(-30 * time.Second)
	if again, err := s.CreatePairing(ctx, "telegram", "u1", "Ann"); err != nil || again.Code != p.Code {
		t.Errorf("after a step of 30 s back: %+v, %v; want the same code", again, err)
	}
	c.Add(-3 * time.Hour)
	if _, err := s.ApprovePairing(ctx, p.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a code made 3 h in the future approved: %v", err)
	}
	fresh, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
	if err != nil || fresh.Code == p.Code {
		t.Fatalf("after the jump back: %+v, %v; want a new code", fresh, err)
	}
	c.Add(5 * time.Hour)
	if _, err := s.ApprovePairing(ctx, fresh.Code); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a code approved 5 h after it was made: %v", err)
	}
}

func TestNewCodeUsesWholeAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for range 500 {
		code, err := newCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != codeLen {
			t.Fatalf("code %q", code)
		}
		for _, r := range code {
			if !strings.ContainsRune(codeAlphabet, r) {
				t.Fatalf("code %q has %q", code, r)
			}
			seen[r] = true
		}
	}
	// 4000 draws over 31 letters: missing one by chance is below 1e-50.
	if len(seen) != len(codeAlphabet) {
		t.Errorf("only %d of %d letters used", len(seen), len(codeAlphabet))
	}
}

func TestState(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if _, ok, err := s.State(ctx, "x"); err != nil || ok {
		t.Errorf("unset state: ok=%v err=%v", ok, err)
	}
	if err := s.SetState(ctx, "x", "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(ctx, "x", "2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(ctx, "empty", ""); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.State(ctx, "x"); err != nil || !ok || v != "2" {
		t.Errorf("state x: %q %v %v, want 2", v, ok, err)
	}
	if v, ok, err := s.State(ctx, "empty"); err != nil || !ok || v != "" {
		t.Errorf("empty state: %q %v %v", v, ok, err)
	}
}

func TestConcurrentReceive(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	const goroutines, each, distinct = 50, 20, 100
	var (
		mu   sync.Mutex
		wins = map[string]int{}
		dups int
		errs []error
		wg   sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				// Ten goroutines share each event id; a few also read.
				id := fmt.Sprint("ev-", (g*each+i)%distinct)
				_, err := s.Receive(ctx, "k", inbound("telegram", id, "x"))
				if i%5 == 0 {
					if _, rerr := s.PendingTurns(ctx); rerr != nil {
						err = errors.Join(err, rerr)
					}
				}
				mu.Lock()
				switch {
				case err == nil:
					wins[id]++
				case errors.Is(err, store.ErrDuplicate):
					dups++
				default:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(wins) != distinct {
		t.Errorf("%d ids received, want %d", len(wins), distinct)
	}
	for id, n := range wins {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
	}
	if dups != goroutines*each-distinct {
		t.Errorf("%d duplicates, want %d", dups, goroutines*each-distinct)
	}
	if n := count(t, s, "turns"); n != distinct {
		t.Errorf("%d turns, want %d", n, distinct)
	}
}

func TestPrune(t *testing.T) {
	s, c, _ := newStore(t)
	ctx := context.Background()
	old := receive(t, s, "k", inbound("telegram", "old", "x"))
	oldPending := receive(t, s, "k", inbound("telegram", "old-pending", "x"))
	if err := s.SetTurnStatus(ctx, old.ID, store.Delivered, ""); err != nil {
		t.Fatal(err)
	}
	c.Add(48 * time.Hour)
	recent := receive(t, s, "k", inbound("telegram", "new", "x"))
	if err := s.SetTurnStatus(ctx, recent.ID, store.Failed, "x"); err != nil {
		t.Fatal(err)
	}

	n, err := s.PruneSeen(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || count(t, s, "seen") != 1 {
		t.Errorf("PruneSeen deleted %d, %d left; want 2 deleted, 1 left", n, count(t, s, "seen"))
	}
	if _, err := s.Receive(ctx, "k", inbound("telegram", "new", "x")); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("recent event after prune: %v, want ErrDuplicate", err)
	}

	n, err = s.PruneTurns(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("PruneTurns deleted %d, want 1 (the old delivered turn)", n)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != oldPending.ID {
		t.Errorf("pending after prune %+v, want the old pending turn kept", pending)
	}
	if c := count(t, s, "turns"); c != 2 {
		t.Errorf("%d turns left, want 2", c)
	}
	// Ids are not reused after pruning.
	next := receive(t, s, "k", inbound("telegram", "", "x"))
	if next.ID <= recent.ID {
		t.Errorf("id %d reused after prune (last was %d)", next.ID, recent.ID)
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
