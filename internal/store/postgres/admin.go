package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-chat/herald/internal/store"
)

// Pairings lists the approvable pending codes and the approved users,
// newest first.
func (s *Store) Pairings(ctx context.Context) ([]store.Pairing, error) {
	after, until := store.Approvable(s.now())
	rows, err := s.pool.Query(ctx, `SELECT code, platform, user_id, user_name, created_at, approved FROM pairings
		WHERE approved OR (created_at > $1 AND created_at <= $2) ORDER BY created_at DESC`, after, until)
	if err != nil {
		return nil, fmt.Errorf("postgres store: pairings: %w", err)
	}
	defer rows.Close()
	var list []store.Pairing
	for rows.Next() {
		var (
			p       store.Pairing
			name    []byte
			created int64
		)
		if err := rows.Scan(&p.Code, &p.Platform, &p.UserID, &name, &created, &p.Approved); err != nil {
			return nil, fmt.Errorf("postgres store: pairings: %w", err)
		}
		p.UserName, p.CreatedAt = string(name), fromMillis(created)
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: pairings: %w", err)
	}
	return list, nil
}

// RevokePairing deletes a user's approval and pending codes;
// store.ErrNotFound if the user was not paired.
func (s *Store) RevokePairing(ctx context.Context, platform, userID string) error {
	var approved int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM pairings WHERE platform = $1 AND user_id = $2 AND approved", platform, userID)
		if err != nil {
			return err
		}
		if approved = tag.RowsAffected(); approved == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, "DELETE FROM pairings WHERE platform = $1 AND user_id = $2", platform, userID)
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("postgres store: revoke %s user %q: %w", platform, userID, err)
	case approved == 0:
		return fmt.Errorf("postgres store: revoke %s user %q: %w", platform, userID, store.ErrNotFound)
	}
	return nil
}

// Conversations lists the chats messages came from with their current
// session, last active first.
func (s *Store) Conversations(ctx context.Context, platform string) ([]store.Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.session_key, c.source, c.seen_at, COALESCE(s.session_id, '')
		FROM chats c LEFT JOIN sessions s ON s.key = c.session_key
		WHERE $1 = '' OR c.platform = $1 ORDER BY c.seen_at DESC`, platform)
	if err != nil {
		return nil, fmt.Errorf("postgres store: conversations: %w", err)
	}
	defer rows.Close()
	var list []store.Conversation
	for rows.Next() {
		var (
			c      store.Conversation
			source []byte
			seen   int64
		)
		if err := rows.Scan(&c.SessionKey, &source, &seen, &c.SessionID); err != nil {
			return nil, fmt.Errorf("postgres store: conversations: %w", err)
		}
		if err := json.Unmarshal(source, &c.Source); err != nil {
			return nil, fmt.Errorf("postgres store: conversations: decode source: %w", err)
		}
		c.SeenAt = fromMillis(seen)
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: conversations: %w", err)
	}
	return list, nil
}
