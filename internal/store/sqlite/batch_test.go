package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

// writesPerTurn is how many writes turnWrites makes.
const writesPerTurn = 6

// turnWrites makes the writes the gateway makes for one turn (receive,
// running, session, shown, transcript, delivered), for conversation n.
func turnWrites(ctx context.Context, s *Store, n int64) (store.Turn, error) {
	key, sess := fmt.Sprint("k", n), fmt.Sprint("s", n)
	turn, err := s.Receive(ctx, key, inbound("telegram", fmt.Sprint("e", n), fmt.Sprint("question ", n)))
	if err != nil {
		return turn, err
	}
	if err := s.SetTurnStatus(ctx, turn.ID, store.Running, ""); err != nil {
		return turn, err
	}
	if err := s.SetSessionID(ctx, key, sess); err != nil {
		return turn, err
	}
	if err := s.MarkShown(ctx, turn.ID); err != nil {
		return turn, err
	}
	if err := s.Append(ctx, sess,
		store.Entry{Role: chat.User, Content: fmt.Sprint("question ", n)},
		store.Entry{Role: chat.Assistant, Content: fmt.Sprint("answer ", n)}); err != nil {
		return turn, err
	}
	return turn, s.SetTurnStatus(ctx, turn.ID, store.Delivered, "")
}

// holdWriter occupies the writer goroutine with a write that waits until
// release is called, so that the writes queued meanwhile form one batch;
// waitQueued(n) returns once n writes are queued behind it. The held write
// is alone in its batch, so its function runs once.
func holdWriter(t *testing.T, s *Store) (waitQueued func(n int), release func()) {
	t.Helper()
	queued := make(chan struct{}, 1024)
	s.testHookQueued = func() { queued <- struct{}{} }
	entered, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(context.Context, *sql.Tx) error {
			close(entered)
			<-unblock
			return nil
		})
	}()
	<-queued
	<-entered
	waitQueued = func(n int) {
		for range n {
			<-queued
		}
	}
	release = func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("held write: %v", err)
		}
	}
	return waitQueued, release
}

// async runs f in a goroutine and hands back its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func TestConcurrentTurnsAreBatched(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	const turns = 200
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		ids   = make([]int64, turns)
		errs  = make([]error, turns)
	)
	for i := range turns {
		wg.Go(func() {
			<-start
			turn, err := turnWrites(ctx, s, int64(i))
			ids[i], errs[i] = turn.ID, err
			if err == nil && (turn.SessionKey != fmt.Sprint("k", i) || turn.Inbound.EventID != fmt.Sprint("e", i)) {
				errs[i] = fmt.Errorf("receive returned %+v", turn)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("turn %d: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}

	for i, id := range ids {
		var (
			key, status string
			shown       bool
		)
		err := s.r.QueryRow("SELECT session_key, status, shown FROM turns WHERE id = ?", id).Scan(&key, &status, &shown)
		if err != nil || key != fmt.Sprint("k", i) || status != string(store.Delivered) || !shown {
			t.Errorf("turn %d (id %d): key %q status %q shown %v, err %v", i, id, key, status, shown, err)
		}
		if sess, ok, err := s.SessionID(ctx, fmt.Sprint("k", i)); err != nil || !ok || sess != fmt.Sprint("s", i) {
			t.Errorf("session of k%d: %q %v %v", i, sess, ok, err)
		}
		h, err := s.History(ctx, fmt.Sprint("s", i), 0)
		if err != nil || len(h) != 2 || h[0].Content != fmt.Sprint("question ", i) || h[1].Content != fmt.Sprint("answer ", i) {
			t.Errorf("history of s%d: %+v %v", i, h, err)
		}
	}
	if n := count(t, s, "turns"); n != turns {
		t.Errorf("%d turns, want %d", n, turns)
	}
	if n := count(t, s, "seen"); n != turns {
		t.Errorf("%d seen events, want %d", n, turns)
	}
	commits, writes := s.commits.Load(), int64(turns*writesPerTurn)
	t.Logf("%d writes in %d transactions", writes, commits)
	if commits >= writes {
		t.Errorf("%d writes took %d transactions: no batching", writes, commits)
	}
}

func TestBatchIsolatesFailures(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	first := receive(t, s, "k", inbound("telegram", "dup", "first"))
	waitQueued, release := holdWriter(t, s)

	cancelCtx, cancel := context.WithCancel(ctx)
	var received store.Turn
	errBoom := errors.New("boom")
	results := map[string]<-chan error{
		"duplicate": async(func() error {
			_, err := s.Receive(ctx, "k", inbound("telegram", "dup", "again"))
			return err
		}),
		"unknown turn": async(func() error { return s.SetTurnStatus(ctx, first.ID+100, store.Running, "") }),
		"unknown code": async(func() error {
			_, err := s.ApprovePairing(ctx, "NOPE2222")
			return err
		}),
		// Writes, then fails: its savepoint must undo the write.
		"half done": async(func() error {
			return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO state (name, value, updated_at) VALUES ('half', 'x', 0)"); err != nil {
					return err
				}
				return errBoom
			})
		}),
		"cancelled": async(func() error {
			_, err := s.Receive(cancelCtx, "k", inbound("telegram", "gone", "x"))
			return err
		}),
		"receive": async(func() error {
			var err error
			received, err = s.Receive(ctx, "k", inbound("telegram", "new", "second"))
			return err
		}),
		"shown":  async(func() error { return s.MarkShown(ctx, first.ID) }),
		"append": async(func() error { return s.Append(ctx, "s1", store.Entry{Role: chat.User, Content: "hi"}) }),
		"state":  async(func() error { return s.SetState(ctx, "x", "1") }),
	}
	waitQueued(len(results))
	// Cancelled while queued, before its function started.
	cancel()
	before := s.commits.Load()
	release()
	got := map[string]error{}
	for name, ch := range results {
		got[name] = <-ch
	}
	// The held write's transaction, then one for the whole batch.
	if n := s.commits.Load() - before; n != 2 {
		t.Errorf("%d commits, want 2 (the held write, then the batch)", n)
	}

	for name, want := range map[string]error{
		"duplicate": store.ErrDuplicate, "unknown turn": store.ErrNotFound, "unknown code": store.ErrNotFound,
		"half done": errBoom, "cancelled": context.Canceled,
	} {
		if !errors.Is(got[name], want) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	for _, name := range []string{"receive", "shown", "append", "state"} {
		if got[name] != nil {
			t.Errorf("%s: %v", name, got[name])
		}
	}
	if want := `sqlite store: receive telegram event "dup": store: event already received`; got["duplicate"] != nil && got["duplicate"].Error() != want {
		t.Errorf("duplicate error %q, want %q", got["duplicate"], want)
	}

	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != first.ID || !pending[0].Shown || pending[1].ID != received.ID || pending[1].Inbound.Text != "second" {
		t.Errorf("pending %+v, want the first turn shown and the new one", pending)
	}
	if events := seenEvents(t, s); !slices.Equal(events, []string{"dup", "new"}) {
		t.Errorf("seen events %v, want [dup new]", events)
	}
	if h, err := s.History(ctx, "s1", 0); err != nil || len(h) != 1 {
		t.Errorf("history %+v %v, want one entry", h, err)
	}
	if v, ok, err := s.State(ctx, "x"); err != nil || !ok || v != "1" {
		t.Errorf("state x: %q %v %v", v, ok, err)
	}
	if _, ok, err := s.State(ctx, "half"); err != nil || ok {
		t.Errorf("the failed write's row is there: ok=%v err=%v", ok, err)
	}
}

func TestFailedCommitRunsEachAlone(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	// A deferred foreign key fails at COMMIT, not at the insert. TEMP
	// tables live on the connection: the writer's only one.
	for _, q := range []string{
		"CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)",
		"CREATE TEMP TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
	} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	waitQueued, release := holdWriter(t, s)
	var turn store.Turn
	orphan := async(func() error {
		return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO child VALUES (42)")
			return err
		})
	})
	state := async(func() error { return s.SetState(ctx, "a", "1") })
	receive := async(func() error {
		var err error
		turn, err = s.Receive(ctx, "k", inbound("telegram", "e1", "x"))
		return err
	})
	waitQueued(3)
	before := s.commits.Load()
	release()
	if err := <-orphan; err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Errorf("orphan insert: %v, want its own foreign key error", err)
	}
	if err := <-state; err != nil {
		t.Errorf("state: %v", err)
	}
	if err := <-receive; err != nil {
		t.Errorf("receive: %v", err)
	}
	// The held write, then the batch failed and the two good writes were
	// committed alone.
	if n := s.commits.Load() - before; n != 3 {
		t.Errorf("%d commits, want 3", n)
	}
	if v, ok, err := s.State(ctx, "a"); err != nil || !ok || v != "1" {
		t.Errorf("state a: %q %v %v", v, ok, err)
	}
	pending, err := s.PendingTurns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != turn.ID {
		t.Errorf("pending %+v, want the received turn %d", pending, turn.ID)
	}
	var n int
	if err := s.w.QueryRow("SELECT COUNT(*) FROM child").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d orphan rows (%v), want 0", n, err)
	}
}

func TestWriteWithCancelledContext(t *testing.T) {
	s, _, _ := newStore(t)
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
	for _, table := range []string{"turns", "seen", "state", "sessions", "transcript"} {
		if n := count(t, s, table); n != 0 {
			t.Errorf("%d rows in %s, want 0", n, table)
		}
	}
	if n := s.commits.Load(); n != 0 {
		t.Errorf("%d transactions committed, want 0", n)
	}
}

func TestCloseCommitsQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitQueued, release := holdWriter(t, s)
	const n = 20
	var results []<-chan error
	for i := range n {
		results = append(results, async(func() error { return s.SetState(ctx, fmt.Sprint("k", i), "v") }))
	}
	waitQueued(n)
	closed := async(s.Close)
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i, ch := range results {
		if err := <-ch; err != nil {
			t.Errorf("write %d queued before Close: %v", i, err)
		}
	}
	if err := s.SetState(ctx, "late", "v"); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openAt(t, path)
	for i := range n {
		if v, ok, err := s.State(ctx, fmt.Sprint("k", i)); err != nil || !ok || v != "v" {
			t.Errorf("state k%d after reopen: %q %v %v", i, v, ok, err)
		}
	}
	if _, ok, err := s.State(ctx, "late"); err != nil || ok {
		t.Errorf("write after Close is there: ok=%v err=%v", ok, err)
	}
}

func TestCloseWithWritesInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const writers = 20
	var (
		wg, running sync.WaitGroup
		committed   = make([][]string, writers)
		last        = make([]error, writers)
		next        atomic.Int64
	)
	running.Add(writers)
	for w := range writers {
		wg.Go(func() {
			// Write until the store refuses; each writer signals once its
			// first write is in, so Close comes amid a stream of writes.
			for i := 0; ; i++ {
				id := fmt.Sprint("e", next.Add(1))
				if _, err := s.Receive(ctx, "k", inbound("telegram", id, "x")); err != nil {
					last[w] = err
					if i == 0 {
						running.Done()
					}
					return
				}
				committed[w] = append(committed[w], id)
				if i == 0 {
					running.Done()
				}
			}
		})
	}
	running.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var want []string
	for w := range writers {
		if !errors.Is(last[w], ErrClosed) || !strings.Contains(last[w].Error(), "receive") {
			t.Errorf("writer %d ended with %v, want ErrClosed", w, last[w])
		}
		want = append(want, committed[w]...)
	}
	s = openAt(t, path)
	got := seenEvents(t, s)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after reopen %d events stored, %d were reported written; they differ", len(got), len(want))
	}
	if n := count(t, s, "turns"); n != len(want) {
		t.Errorf("%d turns stored, %d reported written", n, len(want))
	}
}

// BenchmarkConcurrentTurnWrites runs many conversations' turns at once, as
// the gateway does under load; one op is one turn (writesPerTurn writes).
func BenchmarkConcurrentTurnWrites(b *testing.B) {
	s, _, _ := newStore(b)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(64) // goroutines per CPU: many conversations in flight
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := turnWrites(ctx, s, next.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(s.commits.Load())/float64(b.N*writesPerTurn), "commits/write")
}

// seenEvents returns the event ids the store has seen, in order.
func seenEvents(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.r.Query("SELECT event_id FROM seen ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var events []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}
