// Package sqlite is the store.Store the gateway runs on: one SQLite file,
// through the pure-Go modernc.org/sqlite driver, so a CGO_ENABLED=0 binary
// keeps its sessions, transcripts and turn journal across restarts.
//
// The file is opened twice: a writer pool of one connection, and a small
// read-only pool, which WAL mode lets read while the writer writes.
//
// Every write goes through one goroutine owned by the Store. It takes all
// the writes waiting at that moment (up to maxBatch) and runs them in one
// BEGIN IMMEDIATE transaction, each inside its own savepoint so that a
// failing write is undone alone, and commits once: group commit. SQLite
// runs one write transaction at a time, and each pays a fixed cost (the
// lock, appending its pages to the WAL, the commit) far above that of a
// small insert; sharing it among many writes, whose pages often coincide,
// is what keeps writes from queueing for seconds under load (thousands of
// conversations, six writes per turn). A caller still returns only once
// its write is committed. With synchronous=NORMAL a WAL commit is not
// synced to disk, batched or not: it survives a crash of the process; a
// power cut may lose the last few.
//
// The statements of the per-turn path are prepared once, at open, so that
// SQLite does not parse them again on every call.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-chat/herald/internal/store"
	"modernc.org/sqlite" // the "sqlite" driver, and its errors
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrSchemaTooNew means the database was written by a newer Herald, whose
// schema this binary does not know; opening it could corrupt it.
var ErrSchemaTooNew = errors.New("sqlite store: database schema is newer than this binary")

// ErrClosed is what a write returns once the store is closed.
var ErrClosed = errors.New("sqlite store: closed")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// readers is how many connections may read at once.
const readers = 4

// Store is a store.Store kept in one SQLite file. It is safe for concurrent use.
type Store struct {
	w     *sql.DB // one connection, used by the writer goroutine
	r     *sql.DB // read-only connections
	stmts *stmts
	now   func() time.Time

	mu     sync.Mutex
	queue  []*writeReq   // writes waiting for the writer goroutine
	closed bool          // no more writes are taken
	wake   chan struct{} // (capacity 1) the queue grew, or Close was called
	done   chan struct{} // closed when the writer goroutine has returned

	commits        atomic.Int64 // transactions committed, for tests and benchmarks
	testHookQueued func()       // tests: called after a write is queued
}

var _ store.Store = (*Store)(nil)

// Open opens the store at path, creating the file (mode 0600) if it is
// missing, and brings its schema up to date. The parent directory must
// exist. A database from a newer Herald is refused with ErrSchemaTooNew.
// The store's writer goroutine runs until Close.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := open(ctx, path)
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT) {
		return nil, fmt.Errorf("sqlite store: open %s: %w; it is damaged or not Herald's state: restore it from a backup, or move it aside to start with an empty journal and no sessions", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("parent directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("parent %s is not a directory", dir)
	}
	// SQLite would create the file with mode 0644 less the umask; create it
	// first so it is private from the start. The -wal and -shm files take
	// their mode from it.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	w, err := sql.Open("sqlite", dsn(abs,
		"_txlock=immediate",
		"_pragma=busy_timeout(5000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
	))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	ms, err := migrations()
	if err == nil {
		err = migrate(ctx, w, ms)
	}
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	// SQLite gives a new (or empty) -wal or -shm the database file's mode;
	// this covers non-empty ones left by an older, laxer run.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(abs+suffix, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = w.Close()
			return nil, err
		}
	}

	r, err := sql.Open("sqlite", dsn(abs,
		"_pragma=busy_timeout(5000)",
		"_pragma=query_only(1)",
	))
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	st, err := prepare(ctx, w, r)
	if err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, err
	}
	s := &Store{
		w: w, r: r, stmts: st, now: time.Now,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go s.writeLoop()
	return s, nil
}

// stmts are the statements of the per-turn path, prepared once. Those on
// the writer run in its transactions through tx.StmtContext.
type stmts struct {
	all []*sql.Stmt // every one below, to close

	// The writer's batches (see writer.go).
	savepoint, rollbackTo, release *sql.Stmt
	// Writes.
	insertSeen, insertTurn, setTurnStatus, markShown, setFinal, setProgress *sql.Stmt
	setSession, startSession, swapSession                                   *sql.Stmt
	lastSeq, appendEntry, setState, seeChat                                 *sql.Stmt
	// Reads, on the read pool.
	session, history, state, isPaired *sql.Stmt
}

func prepare(ctx context.Context, w, r *sql.DB) (*stmts, error) {
	st := &stmts{}
	var err error
	prep := func(db *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var p *sql.Stmt
		if p, err = db.PrepareContext(ctx, query); err != nil {
			err = fmt.Errorf("prepare %q: %w", query, err)
			return nil
		}
		st.all = append(st.all, p)
		return p
	}
	st.savepoint = prep(w, "SAVEPOINT request")
	st.rollbackTo = prep(w, "ROLLBACK TO request")
	st.release = prep(w, "RELEASE request")

	st.insertSeen = prep(w, "INSERT INTO seen (platform, event_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
	st.insertTurn = prep(w, "INSERT INTO turns (session_key, inbound, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
	st.setTurnStatus = prep(w, "UPDATE turns SET status = ?, error = ?, updated_at = ? WHERE id = ?")
	st.markShown = prep(w, "UPDATE turns SET shown = 1, updated_at = ? WHERE id = ?")
	st.setFinal = prep(w, "UPDATE turns SET final = ?, updated_at = ? WHERE id = ?")
	st.setProgress = prep(w, "UPDATE turns SET progress = ?, updated_at = ? WHERE id = ?")
	st.setSession = prep(w, `INSERT INTO sessions (key, session_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`)
	st.startSession = prep(w, "INSERT INTO sessions (key, session_id, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING")
	st.swapSession = prep(w, "UPDATE sessions SET session_id = ?, updated_at = ? WHERE key = ? AND session_id = ?")
	st.lastSeq = prep(w, "SELECT COALESCE(MAX(seq), 0) FROM transcript WHERE session_id = ?")
	st.appendEntry = prep(w, "INSERT INTO transcript (session_id, seq, role, content, message_id, at) VALUES (?, ?, ?, ?, ?, ?)")
	st.setState = prep(w, `INSERT INTO state (name, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`)

	st.seeChat = prep(w, `INSERT INTO chats (session_key, platform, chat_id, thread_id, source, seen_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_key) DO UPDATE SET platform = excluded.platform, chat_id = excluded.chat_id,
			thread_id = excluded.thread_id, source = excluded.source, seen_at = excluded.seen_at`)

	st.session = prep(r, "SELECT session_id FROM sessions WHERE key = ?")
	st.history = prep(r, `SELECT role, content, message_id, at FROM (
			SELECT seq, role, content, message_id, at FROM transcript
			WHERE session_id = ? ORDER BY seq DESC LIMIT ?
		) ORDER BY seq`)
	st.state = prep(r, "SELECT value FROM state WHERE name = ?")
	st.isPaired = prep(r, "SELECT EXISTS (SELECT 1 FROM pairings WHERE platform = ? AND user_id = ? AND approved = 1)")
	if err != nil {
		_ = st.close()
		return nil, err
	}
	return st, nil
}

func (st *stmts) close() error {
	var errs []error
	for _, p := range st.all {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// dsn builds a file: URI for the driver, so a path holding '?' or '#'
// cannot be mistaken for parameters.
func dsn(abs string, params ...string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if !strings.HasPrefix(u.Path, "/") { // a Windows drive path
		u.Path = "/" + u.Path
	}
	return u.String() + "?" + strings.Join(params, "&")
}

// Close closes the store: writes already queued are committed first, later
// ones get ErrClosed. The last connection to close checkpoints the WAL into
// the database file. Closing again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
	<-s.done
	err := errors.Join(s.stmts.close(), s.r.Close(), s.w.Close())
	if err != nil {
		return fmt.Errorf("sqlite store: close: %w", err)
	}
	return nil
}

// migrations lists the embedded migrations in order (see store.Migrations).
func migrations() ([]store.Migration, error) { return store.Migrations(migrationFiles, "migrations") }

// migrate applies the migrations the database lacks, each in its own
// transaction together with the PRAGMA user_version that records it. The
// version is read inside the transaction, so two processes opening the same
// file at once cannot both apply a migration.
func migrate(ctx context.Context, db *sql.DB, ms []store.Migration) error {
	for {
		done, err := migrateOne(ctx, db, ms)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, db *sql.DB, ms []store.Migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return false, fmt.Errorf("%w: version %d, this binary knows up to %d", ErrSchemaTooNew, v, len(ms))
	case v == len(ms):
		return true, nil
	}
	m := ms[v]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	// PRAGMA takes no parameters; the version is an int we made.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.Version)); err != nil {
		return false, fmt.Errorf("migrate %s: set schema version: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate %s: commit: %w", m.Name, err)
	}
	return false, nil
}

// State reads a named platform position.
func (s *Store) State(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.stmts.state.QueryRowContext(ctx, name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("sqlite store: read state %q: %w", name, err)
	}
	return v, true, nil
}

// SetState writes a named platform position, replacing the old value.
func (s *Store) SetState(ctx context.Context, name, value string) error {
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.stmts.setState).ExecContext(ctx, name, value, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: write state %q: %w", name, err)
	}
	return nil
}

// millis is the current time as stored.
func (s *Store) millis() int64 { return s.now().UnixMilli() }

// fromMillis turns a stored time back into a UTC time.Time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
