package matrix

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the crypto store in PostgreSQL
	"go.mau.fi/util/dbutil"
)

// keeper keeps what the adapter must find again at its next start (its
// session, its pickle key): files in its directory, or, when replicas
// share the gateway's PostgreSQL, the gateway's store, so that whichever
// replica takes the connection over finds them.
type keeper interface {
	// read returns what is kept under name; nil when nothing is.
	read(ctx context.Context, name string) ([]byte, error)
	// write keeps data under name, readable by the owner only.
	write(ctx context.Context, name string, data []byte) error
	// where names the place of name, for messages.
	where(name string) string
}

// dirKeeper keeps files, mode 0600, in a directory.
type dirKeeper struct{ dir string }

func (k dirKeeper) where(name string) string { return filepath.Join(k.dir, name) }

func (k dirKeeper) read(_ context.Context, name string) ([]byte, error) {
	path := k.where(name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("making %s private: %w", path, err)
		}
	}
	return data, nil
}

func (k dirKeeper) write(_ context.Context, name string, data []byte) error {
	return writePrivate(k.where(name), data)
}

// stateKeeper keeps values in the gateway's store, as named states.
type stateKeeper struct {
	state interface {
		State(ctx context.Context, name string) (string, bool, error)
		SetState(ctx context.Context, name, value string) error
	}
}

func (k stateKeeper) where(name string) string {
	return "the gateway's database (state matrix/" + name + ")"
}

func (k stateKeeper) read(ctx context.Context, name string) ([]byte, error) {
	v, ok, err := k.state.State(ctx, "matrix/"+name)
	if err != nil || !ok {
		return nil, err
	}
	return []byte(v), nil
}

func (k stateKeeper) write(ctx context.Context, name string, data []byte) error {
	return k.state.SetState(ctx, "matrix/"+name, string(data))
}

// storeErr marks an error of the stores the adapter keeps as not worth
// retrying, when they are files; a database's (replicas) may pass, as a
// connection comes back.
func (a *Adapter) storeErr(err error) error {
	if a.deps.Database != "" {
		return err
	}
	return permanent(err)
}

// keep is where the adapter keeps its session and pickle key.
func (a *Adapter) keep() keeper {
	if a.deps.Database != "" && a.deps.State != nil {
		return stateKeeper{a.deps.State}
	}
	return dirKeeper{a.deps.Dir}
}

// openCryptoStore opens the database of the crypto and room state stores:
// HERALD_HOME's SQLite file, or the gateway's PostgreSQL database when
// replicas share it (the tables are mautrix's, beside Herald's; the crypto
// store keeps each account's keys apart).
func (a *Adapter) openCryptoStore() (*sql.DB, *dbutil.Database, string, error) {
	if a.deps.Database == "" {
		path := a.pathIn(storeFile)
		raw, db, err := openStore(path)
		return raw, db, path, err
	}
	const where = "the gateway's PostgreSQL database"
	raw, err := sql.Open("pgx", a.deps.Database)
	if err == nil {
		err = raw.Ping()
	}
	if err != nil {
		return nil, nil, where, fmt.Errorf("opening the Matrix store in %s: %w", where, err)
	}
	raw.SetMaxOpenConns(4)
	db, err := dbutil.NewWithDB(raw, "postgres")
	if err != nil {
		raw.Close()
		return nil, nil, where, err
	}
	return raw, db, where, nil
}
