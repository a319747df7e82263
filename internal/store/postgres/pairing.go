package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-chat/herald/internal/store"
)

// CreatePairing returns a pairing code for a user: the user's pending code
// if one is still approvable, otherwise a new one (their expired codes are
// deleted). Calls for one user take turns (an advisory lock on the user),
// so that two at once cannot both find no code and make two.
func (s *Store) CreatePairing(ctx context.Context, platform, userID, userName string) (store.Pairing, error) {
	p, err := s.createPairing(ctx, platform, userID, userName)
	if err != nil {
		return store.Pairing{}, fmt.Errorf("postgres store: create pairing for %s user %q: %w", platform, userID, err)
	}
	return p, nil
}

func (s *Store) createPairing(ctx context.Context, platform, userID, userName string) (store.Pairing, error) {
	now := s.now()
	after, until := store.Approvable(now)
	var p store.Pairing
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		p = store.Pairing{Platform: platform, UserID: userID}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2 || E'\\n' || $3))",
			lockClassPairingOfUser, platform, userID); err != nil {
			return err
		}
		var (
			created int64
			name    []byte
		)
		err := tx.QueryRow(ctx, `SELECT code, user_name, created_at FROM pairings
			WHERE platform = $1 AND user_id = $2 AND NOT approved AND created_at > $3 AND created_at <= $4
			ORDER BY created_at DESC LIMIT 1`, platform, userID, after, until).Scan(&p.Code, &name, &created)
		if err == nil {
			p.UserName, p.CreatedAt = string(name), fromMillis(created)
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		_, err = tx.Exec(ctx, "DELETE FROM pairings WHERE platform = $1 AND user_id = $2 AND NOT approved", platform, userID)
		if err != nil {
			return err
		}
		p.UserName, created = userName, now.UnixMilli()
		p.Code, err = store.PlacePairingCode(func(code string) (bool, error) {
			tag, err := tx.Exec(ctx, `INSERT INTO pairings (code, platform, user_id, user_name, created_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING`, code, platform, userID, []byte(userName), created)
			return tag.RowsAffected() == 1, err
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
// or made before the clock jumped back is store.ErrNotFound. Of two
// approvals of one code at once, one finds it approved already.
func (s *Store) ApprovePairing(ctx context.Context, code string) (store.Pairing, error) {
	code = store.NormalCode(code)
	now := s.now()
	after, until := store.Approvable(now)
	p := store.Pairing{Code: code, Approved: true}
	var (
		created int64
		name    []byte
	)
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `UPDATE pairings SET approved = true, approved_at = $1
			WHERE code = $2 AND NOT approved AND created_at > $3 AND created_at <= $4
			RETURNING platform, user_id, user_name, created_at`,
			now.UnixMilli(), code, after, until).Scan(&p.Platform, &p.UserID, &name, &created)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Pairing{}, fmt.Errorf("postgres store: approve pairing %q: %w", code, store.ErrNotFound)
	case err != nil:
		return store.Pairing{}, fmt.Errorf("postgres store: approve pairing %q: %w", code, err)
	}
	p.UserName, p.CreatedAt = string(name), fromMillis(created)
	return p, nil
}

// IsPaired reports whether a user was approved through pairing.
func (s *Store) IsPaired(ctx context.Context, platform, userID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pairings WHERE platform = $1 AND user_id = $2 AND approved)",
		platform, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres store: is %s user %q paired: %w", platform, userID, err)
	}
	return ok, nil
}
