package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/herald-chat/herald/internal/store"
)

// SessionID returns the current session id of a conversation.
func (s *Store) SessionID(ctx context.Context, key string) (string, bool, error) {
	var id string
	err := s.r.QueryRowContext(ctx, "SELECT session_id FROM sessions WHERE key = ?", key).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("sqlite store: read session of %q: %w", key, err)
	}
	return id, true, nil
}

// SetSessionID starts a session for a conversation, or rotates it to a new
// one; the old session's transcript is kept under its own id.
func (s *Store) SetSessionID(ctx context.Context, key, id string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (key, session_id, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`,
		key, id, s.millis())
	if err != nil {
		return fmt.Errorf("sqlite store: set session of %q: %w", key, err)
	}
	return nil
}

// Append adds entries to the end of a session's transcript, all or none. An
// entry with a zero At is stamped with the current time.
func (s *Store) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.append(ctx, sessionID, entries); err != nil {
		return fmt.Errorf("sqlite store: append to session %q: %w", sessionID, err)
	}
	return nil
}

func (s *Store) append(ctx context.Context, sessionID string, entries []store.Entry) error {
	now := s.millis()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var last int64
	err = tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM transcript WHERE session_id = ?", sessionID).Scan(&last)
	if err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx,
		"INSERT INTO transcript (session_id, seq, role, content, message_id, at) VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, e := range entries {
		at := now
		if !e.At.IsZero() {
			at = e.At.UnixMilli()
		}
		if _, err := stmt.ExecContext(ctx, sessionID, last+int64(i)+1, e.Role, e.Content, e.MessageID, at); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// History returns a session's last limit entries, oldest first; all of them
// when limit <= 0. Times come back in UTC, to the millisecond.
func (s *Store) History(ctx context.Context, sessionID string, limit int) ([]store.Entry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT role, content, message_id, at FROM (
			SELECT seq, role, content, message_id, at FROM transcript
			WHERE session_id = ? ORDER BY seq DESC LIMIT ?
		) ORDER BY seq`, sessionID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: history of session %q: %w", sessionID, err)
	}
	defer rows.Close()
	var entries []store.Entry
	for rows.Next() {
		var (
			e  store.Entry
			at int64
		)
		if err := rows.Scan(&e.Role, &e.Content, &e.MessageID, &at); err != nil {
			return nil, fmt.Errorf("sqlite store: history of session %q: %w", sessionID, err)
		}
		e.At = fromMillis(at)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: history of session %q: %w", sessionID, err)
	}
	return entries, nil
}
