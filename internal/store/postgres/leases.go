package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// dbNow is the database's clock in unix milliseconds: leases are timed by
// the one clock every replica shares, not by each host's own.
const dbNow = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

// TakeLease gives the lease to holder for ttl when it is free, lapsed, or
// held by holder already (a renewal, its token unchanged); a new holder
// gets the next fencing token. It reports whether holder holds the lease.
func (s *Store) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	var token int64
	err := s.pool.QueryRow(ctx, `INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, `+dbNow+` + $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
			token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END
		WHERE leases.holder = excluded.holder OR leases.expires_at < `+dbNow+`
		RETURNING token`, name, holder, ttl.Milliseconds()).Scan(&token)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil // another holds it
	case err != nil:
		return 0, false, fmt.Errorf("postgres store: take lease %q: %w", name, err)
	}
	return token, true, nil
}

// ReleaseLease lets go of a lease holder holds: it lapses at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.pool.Exec(ctx, "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2", name, holder)
	if err != nil {
		return fmt.Errorf("postgres store: release lease %q: %w", name, err)
	}
	return nil
}

// Leases returns the leases held now, by name, with their holders.
func (s *Store) Leases(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT name, holder FROM leases WHERE expires_at >= "+dbNow)
	if err != nil {
		return nil, fmt.Errorf("postgres store: list leases: %w", err)
	}
	held := map[string]string{}
	var name, holder string
	_, err = pgx.ForEachRow(rows, []any{&name, &holder}, func() error {
		held[name] = holder
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: list leases: %w", err)
	}
	return held, nil
}
