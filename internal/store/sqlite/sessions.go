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
	err := s.stmts.session.QueryRowContext(ctx, key).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("sqlite store: read session of %q: %w", key, err)
	}
	return id, true, nil
}

// SetSessionID starts a new session for a conversation, whatever its
// current one; the old session's transcript is kept under its own id.
func (s *Store) SetSessionID(ctx context.Context, key, id string) error {
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.stmts.setSession).ExecContext(ctx, key, id, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: set session of %q: %w", key, err)
	}
	return nil
}

// SwapSessionID moves a conversation from session old ("" for none) to
// session new only if old is still its current one.
func (s *Store) SwapSessionID(ctx context.Context, key, old, new string) (bool, error) {
	now := s.millis()
	var swapped bool
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var res sql.Result
		var err error
		if old == "" {
			res, err = tx.StmtContext(ctx, s.stmts.startSession).ExecContext(ctx, key, new, now)
		} else {
			res, err = tx.StmtContext(ctx, s.stmts.swapSession).ExecContext(ctx, new, now, key, old)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		swapped = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite store: swap session of %q: %w", key, err)
	}
	return swapped, nil
}

// Append adds entries to the end of a session's transcript, all or none. An
// entry with a zero At is stamped with the current time.
func (s *Store) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	now := s.millis()
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var last int64
		if err := tx.StmtContext(ctx, s.stmts.lastSeq).QueryRowContext(ctx, sessionID).Scan(&last); err != nil {
			return err
		}
		insert := tx.StmtContext(ctx, s.stmts.appendEntry)
		for i, e := range entries {
			at := now
			if !e.At.IsZero() {
				at = e.At.UnixMilli()
			}
			if _, err := insert.ExecContext(ctx, sessionID, last+int64(i)+1, e.Role, e.Content, e.MessageID, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite store: append to session %q: %w", sessionID, err)
	}
	return nil
}

// History returns a session's last limit entries, oldest first; all of them
// when limit <= 0. Times come back in UTC, to the millisecond.
func (s *Store) History(ctx context.Context, sessionID string, limit int) ([]store.Entry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.stmts.history.QueryContext(ctx, sessionID, limit)
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
