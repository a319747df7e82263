package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/herald-chat/herald/internal/store"
)

// Pairings lists the approvable pending codes and the approved users,
// newest first.
func (s *Store) Pairings(ctx context.Context) ([]store.Pairing, error) {
	after, until := store.Approvable(s.now())
	rows, err := s.r.QueryContext(ctx, `SELECT code, platform, user_id, user_name, created_at, approved FROM pairings
		WHERE approved = 1 OR (created_at > ? AND created_at <= ?) ORDER BY created_at DESC`, after, until)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: pairings: %w", err)
	}
	defer rows.Close()
	var list []store.Pairing
	for rows.Next() {
		var (
			p       store.Pairing
			created int64
		)
		if err := rows.Scan(&p.Code, &p.Platform, &p.UserID, &p.UserName, &created, &p.Approved); err != nil {
			return nil, fmt.Errorf("sqlite store: pairings: %w", err)
		}
		p.CreatedAt = fromMillis(created)
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: pairings: %w", err)
	}
	return list, nil
}

// RevokePairing deletes a user's approval and pending codes;
// store.ErrNotFound if the user was not paired.
func (s *Store) RevokePairing(ctx context.Context, platform, userID string) error {
	var approved int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM pairings WHERE platform = ? AND user_id = ? AND approved = 1", platform, userID)
		if err != nil {
			return err
		}
		if approved, err = res.RowsAffected(); err != nil || approved == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM pairings WHERE platform = ? AND user_id = ?", platform, userID)
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("sqlite store: revoke %s user %q: %w", platform, userID, err)
	case approved == 0:
		return fmt.Errorf("sqlite store: revoke %s user %q: %w", platform, userID, store.ErrNotFound)
	}
	return nil
}

// Conversations lists the chats messages came from with their current
// session, last active first.
func (s *Store) Conversations(ctx context.Context, platform string) ([]store.Conversation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.session_key, c.source, c.seen_at, COALESCE(s.session_id, '')
		FROM chats c LEFT JOIN sessions s ON s.key = c.session_key
		WHERE ? = '' OR c.platform = ? ORDER BY c.seen_at DESC`, platform, platform)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: conversations: %w", err)
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
			return nil, fmt.Errorf("sqlite store: conversations: %w", err)
		}
		if err := json.Unmarshal(source, &c.Source); err != nil {
			return nil, fmt.Errorf("sqlite store: conversations: decode source: %w", err)
		}
		c.SeenAt = fromMillis(seen)
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: conversations: %w", err)
	}
	return list, nil
}
