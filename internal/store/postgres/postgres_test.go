package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/postgres/pgtest"
	"github.com/herald-chat/herald/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openURL opens the store at dbURL and closes it when the test ends.
func openURL(t testing.TB, dbURL string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dbURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // a second Close is harmless
	return s
}

// openTest opens a store on a database of the test's own, and returns it
// with the database's URL.
func openTest(t *testing.T) (*Store, string) {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	return openURL(t, dbURL), dbURL
}

func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// versions are the migrations recorded in the database, in order.
func versions(t testing.TB, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "SELECT version FROM "+migrationsTable+" ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// allVersions are 1 to the number of embedded migrations.
func allVersions(t testing.TB) []int {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.Version)
	}
	return vs
}

func inbound(platform, eventID, text string) chat.Inbound {
	return chat.Inbound{
		Source:   chat.Source{Platform: platform, ChatID: "c1", ChatType: chat.DM, UserID: "u1"},
		Text:     text,
		EventID:  eventID,
		Received: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC),
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	s, dbURL := openTest(t)
	ctx := context.Background()
	want := allVersions(t)
	if got := versions(t, s); !slices.Equal(got, want) {
		t.Errorf("migrations %v after the first open, want %v", got, want)
	}
	if err := s.SetState(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err := Open(ctx, dbURL, Options{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := versions(t, s); !slices.Equal(got, want) {
			t.Errorf("migrations %v after reopening, want %v", got, want)
		}
		if v, ok, err := s.State(ctx, "k"); err != nil || !ok || v != "v" {
			t.Errorf("state after reopen: %q %v %v", v, ok, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Replicas starting at once on a new database: each opens, the
// migrations are applied once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	const replicas = 6
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range replicas {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(context.Background(), dbURL, Options{MaxConns: 2})
		})
	}
	close(start)
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	if t.Failed() {
		return
	}
	if got, want := versions(t, stores[0]), allVersions(t); !slices.Equal(got, want) {
		t.Errorf("migrations recorded %v, want %v once each", got, want)
	}
	// Every replica works on the one schema.
	for i, s := range stores {
		if err := s.SetState(context.Background(), fmt.Sprint("r", i), "up"); err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if n := count(t, stores[0], "state"); n != replicas {
		t.Errorf("%d states, want %d", n, replicas)
	}
}

func TestMigrateAppliesOnlyNew(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTest(t)
	ctx := context.Background()
	if err := s.SetState(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	// A later migration that fails half way leaves nothing behind.
	bad := append(slices.Clip(ms), store.Migration{Version: len(ms) + 1, Name: "bad.sql",
		SQL: "CREATE TABLE extra (x integer); INSERT INTO nosuchtable VALUES (1);"})
	if err := migrate(ctx, s.pool, bad); err == nil || !strings.Contains(err.Error(), "bad.sql") {
		t.Errorf("failing migration: %v, want an error naming it", err)
	}
	if got := versions(t, s); !slices.Equal(got, allVersions(t)) {
		t.Errorf("migrations %v after a failed one", got)
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, "SELECT to_regclass('extra') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Errorf("failed migration left its table: %v %v", exists, err)
	}
	// A good one is applied alone: running the first again would fail on
	// its CREATE TABLEs.
	good := append(slices.Clip(ms), store.Migration{Version: len(ms) + 1, Name: "good.sql",
		SQL: "CREATE TABLE extra (x integer); INSERT INTO extra VALUES (7);"})
	if err := migrate(ctx, s.pool, good); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, s); len(got) != len(ms)+1 {
		t.Errorf("migrations %v, want %d", got, len(ms)+1)
	}
	var x int
	if err := s.pool.QueryRow(ctx, "SELECT x FROM extra").Scan(&x); err != nil || x != 7 {
		t.Errorf("new migration not applied: x=%d err=%v", x, err)
	}
	if v, ok, err := s.State(ctx, "k"); err != nil || !ok || v != "v" {
		t.Errorf("data lost by migrating: %q %v %v", v, ok, err)
	}
	if err := migrate(ctx, s.pool, good); err != nil {
		t.Errorf("migrating an up-to-date database: %v", err)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	s, dbURL := openTest(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "INSERT INTO "+migrationsTable+" (version, name, applied_at) VALUES (999, '0999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dbURL, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("opened a database from a newer version")
	}
	u, perr := url.Parse(dbURL)
	if perr != nil {
		t.Fatal(perr)
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), u.Path) {
		t.Errorf("error %q should wrap ErrSchemaTooNew and name the version and database", err)
	}
	if p, ok := u.User.Password(); ok && strings.Contains(err.Error(), p) {
		t.Errorf("error %q shows the password", err)
	}
}

// Connection strings with a password, where nothing answers (port 1) or
// that do not parse: the error names the server, never the password.
func TestOpenErrorHidesPassword(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string // in the error
	}{
		{"postgres://herald:hunter2@127.0.0.1:1/herald?sslmode=disable", "postgres://herald:xxxxx@127.0.0.1:1/herald"},
		{"postgresql://herald:hun%40ter2@127.0.0.1:1/herald", "herald:xxxxx@127.0.0.1:1"},
		{"postgres://herald@127.0.0.1:1/herald?password=hunter2&sslmode=disable", "password=xxxxx"},
		{"postgres://herald:hunter2@127.0.0.1:1/herald?sslmode=bogus", "sslmode"},
		{"postgres://herald:hunter2@127.0.0.1:port/herald", "cannot parse"},
		{"host=127.0.0.1 port=1 user=herald password=hunter2 sslmode=disable", "password=xxxxx"},
		{"host=127.0.0.1 port=1 user=herald password='hunter2 with spaces' sslmode=disable", "password=xxxxx"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := Open(ctx, tc.url, Options{})
		cancel()
		if err == nil {
			_ = s.Close()
			t.Errorf("%s: opened", redactURL(tc.url))
			continue
		}
		msg := err.Error()
		t.Log(msg)
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, "hun@ter2") || strings.Contains(msg, "hun%40ter2") {
			t.Errorf("the error shows the password: %s", msg)
		}
		if !strings.HasPrefix(msg, "postgres store: open ") || !strings.Contains(msg, tc.want) {
			t.Errorf("error %q, want it to name the server with %q", msg, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5432/db?sslmode=disable":             "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                                    "postgres://u@h/db",
		"postgres://h/db?sslpassword=k&password=p":             "postgres://h/db?password=xxxxx&sslpassword=xxxxx",
		"postgres://u:p@h:nope/db":                             "(a URL that does not parse)",
		"host=h user=u password=secret dbname=d":               "host=h user=u password=xxxxx dbname=d",
		"host=h password = 'it\\'s a secret' dbname=d":         "host=h password = xxxxx dbname=d",
		"host=h sslpassword=k dbname=d":                        "host=h sslpassword=xxxxx dbname=d",
		"postgresql://u:p%2Fq@h/db":                            "postgresql://u:xxxxx@h/db",
		"postgres://u:p@[::1]:5432/db?application_name=herald": "postgres://u:xxxxx@[::1]:5432/db?application_name=herald",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	s, err := Open(context.Background(), dbURL, Options{MaxConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if n := s.pool.Config().MaxConns; n != 3 {
		t.Errorf("MaxConns %d, want 3", n)
	}
	var app string
	if err := s.pool.QueryRow(context.Background(), "SELECT current_setting('application_name')").Scan(&app); err != nil || app != "herald" {
		t.Errorf("application_name %q (%v), want herald", app, err)
	}
}

// Many goroutines on two stores (two replicas) receive one event: one
// journals it, the others get ErrDuplicate.
func TestConcurrentReceiveOfOneEvent(t *testing.T) {
	s1, dbURL := openTest(t)
	s2 := openURL(t, dbURL)
	ctx := context.Background()
	const n = 40
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		wins, dups int
		ids        []int64
	)
	start := make(chan struct{})
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			<-start
			turn, err := s.Receive(ctx, "k", inbound("telegram", "the-event", fmt.Sprint(i)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				ids = append(ids, turn.ID)
			case errors.Is(err, store.ErrDuplicate):
				dups++
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || dups != n-1 {
		t.Errorf("%d received, %d duplicates; want 1 and %d", wins, dups, n-1)
	}
	if got := count(t, s1, "turns"); got != 1 {
		t.Errorf("%d turns, want 1", got)
	}
	if got := count(t, s1, "seen"); got != 1 {
		t.Errorf("%d seen events, want 1", got)
	}
	pending, err := s2.PendingTurns(ctx)
	if err != nil || len(pending) != 1 || len(ids) != 1 || pending[0].ID != ids[0] {
		t.Errorf("pending %+v, %v; want the one turn %v", pending, err, ids)
	}
}

// Appends to one session at once, from two replicas, number their entries
// 1, 2, 3... without a gap or a clash; each call's entries stay together.
func TestConcurrentAppend(t *testing.T) {
	s1, dbURL := openTest(t)
	s2 := openURL(t, dbURL)
	ctx := context.Background()
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			err := s.Append(ctx, "sess",
				store.Entry{Role: chat.User, Content: fmt.Sprint("q", i)},
				store.Entry{Role: chat.Assistant, Content: fmt.Sprint("a", i)})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h, err := s1.History(ctx, "sess", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2*n {
		t.Fatalf("%d entries, want %d", len(h), 2*n)
	}
	for i := 0; i < len(h); i += 2 {
		if h[i].Content[1:] != h[i+1].Content[1:] || h[i].Role != chat.User {
			t.Errorf("entries %d, %d: %q, %q; want a question and its answer", i, i+1, h[i].Content, h[i+1].Content)
		}
	}
	var seqs []int64
	rows, err := s1.pool.Query(ctx, "SELECT seq FROM transcript WHERE session_id = 'sess' ORDER BY seq")
	if err == nil {
		seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("seq %v, want 1 to %d", seqs, 2*n)
		}
	}
}

// One user asking for a code from several places at once gets one code.
func TestConcurrentCreatePairing(t *testing.T) {
	s1, dbURL := openTest(t)
	s2 := openURL(t, dbURL)
	ctx := context.Background()
	const n = 20
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			p, err := s.CreatePairing(ctx, "telegram", "u1", "Ann")
			if err != nil {
				t.Error(err)
			}
			codes[i] = p.Code
		})
	}
	wg.Wait()
	for _, c := range codes {
		if c != codes[0] {
			t.Fatalf("codes %v, want one", codes)
		}
	}
	if got := count(t, s1, "pairings"); got != 1 {
		t.Errorf("%d pairings, want 1", got)
	}
}

func TestWriteWithCancelledContext(t *testing.T) {
	s, _ := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	turn, err := s.Receive(ctx, "k", inbound("telegram", "e1", "x"))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "receive") {
		t.Errorf("receive: %+v, %v; want context.Canceled", turn, err)
	}
	for name, err := range map[string]error{
		"set state":   s.SetState(ctx, "x", "1"),
		"set session": s.SetSessionID(ctx, "k", "s1"),
		"append":      s.Append(ctx, "s1", store.Entry{Role: chat.User, Content: "hi"}),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
	for _, table := range []string{"turns", "seen", "state", "sessions", "transcript", "chats"} {
		if n := count(t, s, table); n != 0 {
			t.Errorf("%d rows in %s, want 0", n, table)
		}
	}
}

func TestClosedStoreErrors(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	_, err := s.Receive(context.Background(), "k", inbound("telegram", "e", "x"))
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "receive") {
		t.Errorf("receive on a closed store: %v, want ErrClosed in an error naming the operation", err)
	}
	if _, err := s.PendingTurns(context.Background()); err == nil {
		t.Error("read on a closed store: no error")
	}
}

// Every method once, with the strings PostgreSQL's text type cannot hold
// (a NUL, invalid UTF-8) where users and agents write: they come back as
// they went in, as from SQLite. (What is kept as JSON, such as an
// Inbound, holds a NUL as an escape; invalid UTF-8 is replaced by
// encoding/json in either store.)
func TestRoundTrip(t *testing.T) {
	s, dbURL := openTest(t)
	c := storetest.NewClock()
	s.now = c.Now
	ctx := context.Background()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	odd := "nul \x00, bad utf-8 \xff\xfe, ok é"
	nul := "nul \x00, ok é"

	// Journal.
	in := inbound("matrix", "$e1", nul)
	in.Source.ThreadID, in.Source.MessageID = "$root", "$m1"
	in.Received = time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
	turn, err := s.Receive(ctx, "matrix:room", in)
	check(err)
	want := in
	want.Received = in.Received.UTC()
	if !reflect.DeepEqual(turn.Inbound, want) || turn.Status != store.Received || !turn.CreatedAt.Equal(c.Now()) {
		t.Errorf("received %+v", turn)
	}
	if _, err := s.Receive(ctx, "matrix:room", in); !errors.Is(err, store.ErrDuplicate) || !strings.HasPrefix(err.Error(), "postgres store: receive matrix event") {
		t.Errorf("again: %v, want ErrDuplicate", err)
	}
	c.Add(time.Second)
	check(s.SetTurnStatus(ctx, turn.ID, store.Running, "dropped"))
	check(s.MarkShown(ctx, turn.ID))
	check(s.SetTurnFinal(ctx, turn.ID, store.Final{Text: nul, MessageIDs: []string{"1"}}))
	check(s.SetTurnProgress(ctx, turn.ID, store.Progress{RunID: "run", MessageIDs: []string{"1"}}))
	pending, err := s.PendingTurns(ctx)
	check(err)
	if len(pending) != 1 {
		t.Fatalf("pending %+v", pending)
	}
	p := pending[0]
	if !reflect.DeepEqual(p.Inbound, want) || p.Status != store.Running || !p.Shown || p.Error != "" ||
		p.Final == nil || p.Final.Text != nul || p.Progress.RunID != "run" ||
		!p.UpdatedAt.Equal(c.Now()) || p.UpdatedAt.Location() != time.UTC {
		t.Errorf("pending %+v", p)
	}
	check(s.SetTurnStatus(ctx, turn.ID, store.Failed, odd))
	var errText []byte
	check(s.pool.QueryRow(ctx, "SELECT error FROM turns WHERE id = $1", turn.ID).Scan(&errText))
	if string(errText) != odd {
		t.Errorf("error %q, want %q", errText, odd)
	}
	if err := s.SetTurnStatus(ctx, turn.ID, "bogus", ""); err == nil || !strings.Contains(err.Error(), "unknown status") {
		t.Errorf("bogus status: %v", err)
	}
	for name, err := range map[string]error{
		"status":   s.SetTurnStatus(ctx, 999, store.Running, ""),
		"shown":    s.MarkShown(ctx, 999),
		"final":    s.SetTurnFinal(ctx, 999, store.Final{}),
		"progress": s.SetTurnProgress(ctx, 999, store.Progress{}),
		"send":     s.SetSendStatus(ctx, 999, 0, store.Sent, "", nil),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of an unknown id: %v, want ErrNotFound", name, err)
		}
	}

	// Sessions and transcripts.
	if ok, err := s.SwapSessionID(ctx, "matrix:room", "", "s1"); err != nil || !ok {
		t.Errorf("first swap: %v %v", ok, err)
	}
	check(s.SetSessionID(ctx, "matrix:room", "s2"))
	if ok, err := s.SwapSessionID(ctx, "matrix:room", "s1", "s3"); err != nil || ok {
		t.Errorf("swap from a replaced session: %v %v", ok, err)
	}
	if id, ok, err := s.SessionID(ctx, "matrix:room"); err != nil || !ok || id != "s2" {
		t.Errorf("session %q %v %v", id, ok, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.FixedZone("X", -7200))
	check(s.Append(ctx, "s2",
		store.Entry{Role: chat.User, Content: odd, MessageID: "$m1", At: at},
		store.Entry{Role: chat.Assistant, Content: ""}))
	h, err := s.History(ctx, "s2", 0)
	check(err)
	wantH := []store.Entry{
		{Role: chat.User, Content: odd, MessageID: "$m1", At: at.Truncate(time.Millisecond).UTC()},
		{Role: chat.Assistant, Content: "", At: c.Now()},
	}
	if !reflect.DeepEqual(h, wantH) {
		t.Errorf("history\n%+v\nwant\n%+v", h, wantH)
	}

	// Chats.
	ch, err := s.ChatOfSession(ctx, "s2")
	check(err)
	if ch.SessionKey != "matrix:room" || ch.Source.ThreadID != "$root" || ch.Source.MessageID != "" || !ch.SeenAt.Equal(turn.CreatedAt) {
		t.Errorf("chat of s2: %+v", ch)
	}
	if got, err := s.FindChat(ctx, "matrix", "c1", "$root"); err != nil || got != ch {
		t.Errorf("FindChat: %+v %v, want %+v", got, err, ch)
	}

	// Pairings.
	pr, err := s.CreatePairing(ctx, "telegram", "u1", odd)
	check(err)
	if pr.UserName != odd {
		t.Errorf("pairing %+v", pr)
	}
	approved, err := s.ApprovePairing(ctx, strings.ToLower(pr.Code))
	check(err)
	if approved.UserName != odd || !approved.Approved || !approved.CreatedAt.Equal(c.Now()) {
		t.Errorf("approved %+v", approved)
	}
	if ok, err := s.IsPaired(ctx, "telegram", "u1"); err != nil || !ok {
		t.Errorf("paired: %v %v", ok, err)
	}

	// State.
	check(s.SetState(ctx, "offset", "41"))
	check(s.SetState(ctx, "offset", "42"))
	if v, ok, err := s.State(ctx, "offset"); err != nil || !ok || v != "42" {
		t.Errorf("state %q %v %v", v, ok, err)
	}

	// Outbox.
	d, err := s.Enqueue(ctx, store.Delivery{Key: "k1", Target: "all", Text: odd, Sends: []store.Send{
		{Platform: "telegram", Target: chat.Target{ChatID: "-100", ThreadID: "7"}},
	}})
	check(err)
	if was, err := s.Enqueue(ctx, store.Delivery{Key: "k1", Text: "other"}); !errors.Is(err, store.ErrDuplicate) || was.ID != d.ID || was.Text != odd {
		t.Errorf("again: %+v %v", was, err)
	}
	unsent, err := s.UnsentDeliveries(ctx)
	check(err)
	d.Sends[0].MessageIDs = []string{} // as read back, from either store
	if len(unsent) != 1 || !reflect.DeepEqual(unsent[0], d) {
		t.Errorf("unsent %+v, want %+v", unsent, d)
	}
	c.Add(time.Second)
	check(s.SetSendStatus(ctx, d.ID, 0, store.Uncertain, odd, []string{"m1"}))
	got, err := s.Delivery(ctx, d.ID)
	check(err)
	if sd := got.Sends[0]; sd.Status != store.Uncertain || sd.Error != odd || !slices.Equal(sd.MessageIDs, []string{"m1"}) ||
		!sd.UpdatedAt.Equal(c.Now()) || got.Text != odd || !got.CreatedAt.Equal(d.CreatedAt) {
		t.Errorf("delivery %+v", got)
	}
	check(s.SetSendStatus(ctx, d.ID, 0, store.Sent, "dropped", nil))
	got, err = s.Delivery(ctx, d.ID)
	check(err)
	if sd := got.Sends[0]; sd.Status != store.Sent || sd.Error != "" || sd.MessageIDs == nil || len(sd.MessageIDs) != 0 {
		t.Errorf("sent %+v", sd)
	}

	// Pruning, a day on.
	c.Add(48 * time.Hour)
	if n, err := s.PruneSeen(ctx, 24*time.Hour); err != nil || n != 1 {
		t.Errorf("PruneSeen %d %v, want 1", n, err)
	}
	if n, err := s.PruneTurns(ctx, 24*time.Hour); err != nil || n != 2 {
		t.Errorf("PruneTurns %d %v, want 2 (the failed turn, the sent delivery)", n, err)
	}
	if n := count(t, s, "delivery_sends"); n != 0 {
		t.Errorf("%d sends left of pruned deliveries", n)
	}

	// And all of it is in the database, for another store to read.
	check(s.Close())
	s = openURL(t, dbURL)
	if v, ok, err := s.State(ctx, "offset"); err != nil || !ok || v != "42" {
		t.Errorf("state after reopening %q %v %v", v, ok, err)
	}
	if h, err := s.History(ctx, "s2", 1); err != nil || len(h) != 1 || h[0].Role != chat.Assistant {
		t.Errorf("history after reopening %+v %v", h, err)
	}
}

// The contract every store keeps (package storetest), on PostgreSQL: each
// test on a database of its own.
func TestContract(t *testing.T) {
	storetest.Run(t, opener)
}

// opener opens a store for the contract and the benchmarks.
func opener(t testing.TB, now func() time.Time) (store.Store, func() store.Store) {
	dbURL := pgtest.NewDatabase(t)
	open := func() store.Store {
		s := openURL(t, dbURL)
		s.now = now
		return s
	}
	return open(), open
}

// The journal under the gateway's load (see storetest.BenchJournal).
func BenchmarkJournal(b *testing.B) { storetest.BenchJournal(b, opener) }
