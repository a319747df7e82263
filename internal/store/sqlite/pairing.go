package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/herald-chat/herald/internal/store"
)

// CreatePairing returns a pairing code for a user: the user's pending code
// if one is still approvable, otherwise a new one (their expired codes are
// deleted).
func (s *Store) CreatePairing(ctx context.Context, platform, userID, userName string) (store.Pairing, error) {
	p, err := s.createPairing(ctx, platform, userID, userName)
	if err != nil {
		return store.Pairing{}, fmt.Errorf("sqlite store: create pairing for %s user %q: %w", platform, userID, err)
	}
	return p, nil
}

func (s *Store) createPairing(ctx context.Context, platform, userID, userName string) (store.Pairing, error) {
	now := s.now()
	after, until := store.Approvable(now)
	var p store.Pairing
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		p = store.Pairing{Platform: platform, UserID: userID}
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT code, user_name, created_at FROM pairings
			WHERE platform = ? AND user_id = ? AND approved = 0 AND created_at > ? AND created_at <= ?
			ORDER BY created_at DESC LIMIT 1`, platform, userID, after, until).Scan(&p.Code, &p.UserName, &created)
		if err == nil {
			p.CreatedAt = fromMillis(created)
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}

		_, err = tx.ExecContext(ctx, "DELETE FROM pairings WHERE platform = ? AND user_id = ? AND approved = 0", platform, userID)
		if err != nil {
			return err
		}
		p.UserName, created = userName, now.UnixMilli()
		p.Code, err = store.PlacePairingCode(func(code string) (bool, error) {
			res, err := tx.ExecContext(ctx, `INSERT INTO pairings (code, platform, user_id, user_name, created_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING`, code, platform, userID, userName, created)
			if err != nil {
				return false, err
			}
			n, err := res.RowsAffected()
			return n == 1, err
		})
		p.CreatedAt = fromMillis(created)
		return err
	})
	if err != nil {
		return store.Pairing{}, err
	}
	return p, nil
}

// ApprovePairing approves a pending code, ignoring case and surrounding
// spaces. A code that is unknown, already approved, older than store.PairingTTL
// or made before the clock jumped back is store.ErrNotFound.
func (s *Store) ApprovePairing(ctx context.Context, code string) (store.Pairing, error) {
	code = store.NormalCode(code)
	now := s.now()
	after, until := store.Approvable(now)
	p := store.Pairing{Code: code, Approved: true}
	var created int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `UPDATE pairings SET approved = 1, approved_at = ?
			WHERE code = ? AND approved = 0 AND created_at > ? AND created_at <= ?
			RETURNING platform, user_id, user_name, created_at`,
			now.UnixMilli(), code, after, until).Scan(&p.Platform, &p.UserID, &p.UserName, &created)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Pairing{}, fmt.Errorf("sqlite store: approve pairing %q: %w", code, store.ErrNotFound)
	case err != nil:
		return store.Pairing{}, fmt.Errorf("sqlite store: approve pairing %q: %w", code, err)
	}
	p.CreatedAt = fromMillis(created)
	return p, nil
}

// IsPaired reports whether a user was approved through pairing.
func (s *Store) IsPaired(ctx context.Context, platform, userID string) (bool, error) {
	var ok bool
	err := s.stmts.isPaired.QueryRowContext(ctx, platform, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite store: is %s user %q paired: %w", platform, userID, err)
	}
	return ok, nil
}
