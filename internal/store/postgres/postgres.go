// Package postgres is the store.Store on a PostgreSQL database, for
// deployments that keep their state in a database server rather than in
// $HERALD_HOME/state.db, or run several replicas on one state.
//
// It keeps the SQLite store's semantics exactly (package sqlite is the
// reference, and package storetest the contract both keep), including its
// times: unix milliseconds in bigint columns, given back in UTC. It talks
// to the server through a pgxpool connection pool; PostgreSQL runs
// concurrent transactions itself, so there is no writer goroutine and no
// group commit: each write is one transaction of its own. Where SQLite's
// single writer serialized a read-then-write (the next transcript
// number, a user's pending pairing code), a transaction-scoped advisory
// lock does.
//
// The schema is brought up to date at open by embedded, numbered
// migrations, recorded in herald_schema_migrations; an advisory lock lets
// only one of several replicas starting at once apply them.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-chat/herald/internal/store"
)

// ErrSchemaTooNew means the database was written by a newer Herald, whose
// schema this binary does not know; using it could corrupt it.
var ErrSchemaTooNew = errors.New("postgres store: database schema is newer than this binary")

// ErrClosed is what a write returns once the store is closed.
var ErrClosed = errors.New("postgres store: closed")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records the migrations applied, one row each.
const migrationsTable = "herald_schema_migrations"

// Advisory lock keys. Migrations take the one-key (bigint) form; the
// per-row locks take the two-key form, whose key space PostgreSQL keeps
// apart, with a class of Herald's own and a hash of what they guard (two
// things hashing alike only wait for each other).
const (
	migrationLock          int64 = 0x6865_7261_6c64_0001 // "herald" 0 1
	lockClassTranscript    int32 = 0x6865_7201           // "her" 1
	lockClassPairingOfUser int32 = 0x6865_7202           // "her" 2
)

// writeTimeout bounds a write once it has started: the caller giving up
// does not interrupt it (see write), a database that stopped answering
// does.
const writeTimeout = time.Minute

// Options tune the connection pool.
type Options struct {
	// MaxConns bounds the pool's connections, so that several replicas
	// stay within the server's max_connections; 0 is pgxpool's default
	// (the greater of 4 and the number of CPUs).
	MaxConns int32
}

// Store is a store.Store kept in a PostgreSQL database. It is safe for
// concurrent use, also by several processes on one database.
type Store struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a
// key=value connection string, as pgx reads them), checks that it
// answers, and brings its schema up to date. A database from a newer
// Herald is refused with ErrSchemaTooNew. Errors name the URL without its
// password.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	s, secrets, err := open(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("postgres store: open %s: %w", redactURL(url), scrub(err, secrets))
	}
	return s, nil
}

func open(ctx context.Context, connString string, opts Options) (*Store, []string, error) {
	secrets := passwordsIn(connString)
	if isURL(connString) {
		// Where a password lies in a URL that does not parse is unsure, and
		// the parser's error would quote it.
		if _, err := url.Parse(connString); err != nil {
			return nil, secrets, errors.New("cannot parse it (the reason is not shown: it would quote the password)")
		}
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, secrets, err
	}
	if p := cfg.ConnConfig.Password; p != "" {
		secrets = append(secrets, p) // also one from PGPASSWORD or a .pgpass
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "herald"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, secrets, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, secrets, err
	}
	ms, err := migrations()
	if err == nil {
		err = migrate(ctx, pool, ms)
	}
	if err != nil {
		pool.Close()
		return nil, secrets, err
	}
	return &Store{pool: pool, now: time.Now}, nil, nil
}

// Close closes the store's connections, once the operations using them
// have returned them; later writes get ErrClosed. Every write has been
// committed (or has failed) by the time it returned, so there is nothing
// to flush. Closing again does nothing.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

// migrations lists the embedded migrations in order (see store.Migrations).
func migrations() ([]store.Migration, error) { return store.Migrations(migrationFiles, "migrations") }

// migrate applies the migrations the database lacks, each in its own
// transaction together with the row that records it. Each transaction
// first takes an advisory lock and then reads the version, so that of
// several processes opening the database at once only one applies a
// migration; the others wait for it and find it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []store.Migration) error {
	for {
		done, err := migrateOne(ctx, pool, ms)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, pool *pgxpool.Pool, ms []store.Migration) (done bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op once committed
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return false, fmt.Errorf("migrate: lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", migrationsTable).Scan(&exists); err != nil {
		return false, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if !exists {
		_, err := tx.Exec(ctx, `CREATE TABLE `+migrationsTable+` (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at bigint NOT NULL
		)`)
		if err != nil {
			return false, fmt.Errorf("migrate: create %s: %w", migrationsTable, err)
		}
	}
	var v int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+migrationsTable).Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read schema version: %w", err)
	}
	switch {
	case v > len(ms):
		return false, fmt.Errorf("%w: version %d, this binary knows up to %d", ErrSchemaTooNew, v, len(ms))
	case v == len(ms):
		if err := tx.Commit(ctx); err != nil {
			return false, fmt.Errorf("migrate: commit: %w", err)
		}
		return true, nil
	}
	m := ms[v]
	// Without arguments pgx sends the file as one simple query, which may
	// hold many statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+migrationsTable+" (version, name, applied_at) VALUES ($1, $2, $3)",
		m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("migrate %s: record it: %w", m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrate %s: commit: %w", m.Name, err)
	}
	return false, nil
}

// write runs fn in a transaction of its own and commits it. A caller
// whose ctx ends before the transaction starts (also while it waits for a
// connection) gets ctx's error and nothing is written. Once started, the
// transaction is seen through even if the caller gives up (up to
// writeTimeout), so that, as with the SQLite store, the caller learns
// whether it was written rather than being left unsure whether its
// COMMIT went through.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if s.closed.Load() {
			return ErrClosed
		}
		return err
	}
	defer conn.Release()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return pgx.BeginFunc(wctx, conn, func(tx pgx.Tx) error { return fn(wctx, tx) })
}

// State reads a named platform position.
func (s *Store) State(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM state WHERE name = $1", name).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("postgres store: read state %q: %w", name, err)
	}
	return v, true, nil
}

// SetState writes a named platform position, replacing the old value.
func (s *Store) SetState(ctx context.Context, name, value string) error {
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO state (name, value, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, value, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres store: write state %q: %w", name, err)
	}
	return nil
}

// millis is the current time as stored.
func (s *Store) millis() int64 { return s.now().UnixMilli() }

// fromMillis turns a stored time back into a UTC time.Time.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// mask is what a password is shown as.
const mask = "xxxxx"

// redactURL is the connection string as an error may show it: a URL
// without its password (in its user info or its query), a key=value
// string without its password value. A URL that does not parse is not
// shown at all: where its password lies is unsure.
func redactURL(connString string) string {
	if isURL(connString) {
		u, err := url.Parse(connString)
		if err != nil {
			return "(a URL that does not parse)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
		if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
			for _, k := range []string{"password", "sslpassword"} {
				if q.Has(k) {
					q.Set(k, mask)
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return scrub(errors.New(connString), passwordsIn(connString)).Error()
}

func isURL(connString string) bool {
	return strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://")
}

// kvPassword matches a password in a key=value connection string: its
// value, quoted or not.
var kvPassword = regexp.MustCompile(`\b(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']\S*)`)

// passwordsIn are the passwords a connection string holds, as written and
// as decoded, to be kept out of error messages.
func passwordsIn(connString string) []string {
	var ps []string
	add := func(p string) {
		if p != "" {
			ps = append(ps, p)
		}
	}
	if isURL(connString) {
		if u, err := url.Parse(connString); err == nil {
			if p, ok := u.User.Password(); ok {
				add(p)
				if _, raw, ok := strings.Cut(u.User.String(), ":"); ok {
					add(raw)
				}
			}
			q := u.Query()
			for _, k := range []string{"password", "sslpassword"} {
				for _, p := range q[k] {
					add(p)
					add(url.QueryEscape(p))
				}
			}
		}
		return ps
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		add(m[1])
		if v, ok := strings.CutPrefix(m[1], "'"); ok {
			add(strings.TrimSuffix(v, "'"))
		}
	}
	return ps
}

// scrub returns err with every one of secrets in its message masked; the
// error it wraps is still there for errors.Is and errors.As.
func scrub(err error, secrets []string) error {
	msg := err.Error()
	hidden := msg
	// The longest first, so that a secret holding another is masked whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, p := range secrets {
		hidden = strings.ReplaceAll(hidden, p, mask)
	}
	if hidden == msg {
		return err
	}
	return &scrubbed{msg: hidden, err: err}
}

// scrubbed is an error whose message had a password masked.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
