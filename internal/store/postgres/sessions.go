package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-chat/herald/internal/store"
)

// SessionID returns the current session id of a conversation.
func (s *Store) SessionID(ctx context.Context, key string) (string, bool, error) {
	var id string
	err := s.pool.QueryRow(ctx, "SELECT session_id FROM sessions WHERE key = $1", key).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("postgres store: read session of %q: %w", key, err)
	}
	return id, true, nil
}

// SetSessionID starts a new session for a conversation, whatever its
// current one; the old session's transcript is kept under its own id.
func (s *Store) SetSessionID(ctx context.Context, key, id string) error {
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (key, session_id, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`, key, id, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres store: set session of %q: %w", key, err)
	}
	return nil
}

// SwapSessionID moves a conversation from session old ("" for none) to
// session new only if old is still its current one. Each case is one
// statement, which PostgreSQL makes atomic against a concurrent
// SetSessionID: an INSERT that does nothing on a row already there, and an
// UPDATE whose condition is checked again on the row as a concurrent
// update left it.
func (s *Store) SwapSessionID(ctx context.Context, key, old, new string) (bool, error) {
	now := s.millis()
	var swapped bool
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		var n int64
		if old == "" {
			tag, e := tx.Exec(ctx, "INSERT INTO sessions (key, session_id, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
				key, new, now)
			n, err = tag.RowsAffected(), e
		} else {
			tag, e := tx.Exec(ctx, "UPDATE sessions SET session_id = $1, updated_at = $2 WHERE key = $3 AND session_id = $4",
				new, now, key, old)
			n, err = tag.RowsAffected(), e
		}
		swapped = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres store: swap session of %q: %w", key, err)
	}
	return swapped, nil
}

// Append adds entries to the end of a session's transcript, all or none. An
// entry with a zero At is stamped with the current time. Appends to one
// session take turns (an advisory lock on it), so that two at once cannot
// both number their entries from the same last one.
func (s *Store) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", lockClassTranscript, sessionID); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM transcript WHERE session_id = $1", sessionID).Scan(&last); err != nil {
			return err
		}
		for i, e := range entries {
			at := now
			if !e.At.IsZero() {
				at = e.At.UnixMilli()
			}
			if _, err := tx.Exec(ctx, `INSERT INTO transcript (session_id, seq, role, content, message_id, at)
				VALUES ($1, $2, $3, $4, $5, $6)`, sessionID, last+int64(i)+1, e.Role, []byte(e.Content), e.MessageID, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres store: append to session %q: %w", sessionID, err)
	}
	return nil
}

// History returns a session's last limit entries, oldest first; all of them
// when limit <= 0. Times come back in UTC, to the millisecond.
func (s *Store) History(ctx context.Context, sessionID string, limit int) ([]store.Entry, error) {
	var lim *int64 // NULL: no limit
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := s.pool.Query(ctx, `SELECT role, content, message_id, at FROM (
			SELECT seq, role, content, message_id, at FROM transcript
			WHERE session_id = $1 ORDER BY seq DESC LIMIT $2
		) last ORDER BY seq`, sessionID, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres store: history of session %q: %w", sessionID, err)
	}
	defer rows.Close()
	var entries []store.Entry
	for rows.Next() {
		var (
			e       store.Entry
			content []byte
			at      int64
		)
		if err := rows.Scan(&e.Role, &content, &e.MessageID, &at); err != nil {
			return nil, fmt.Errorf("postgres store: history of session %q: %w", sessionID, err)
		}
		e.Content = string(content)
		e.At = fromMillis(at)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: history of session %q: %w", sessionID, err)
	}
	return entries, nil
}
