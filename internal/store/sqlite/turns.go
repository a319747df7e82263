package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

// Receive journals an inbound message as a Received turn. The seen-event
// check and the insert are one transaction: a message whose (platform, event
// id) was seen before returns store.ErrDuplicate and writes nothing. A
// message without an event id is never a duplicate. The Inbound is kept as
// JSON with its Received time in UTC, and comes back exactly so.
func (s *Store) Receive(ctx context.Context, sessionKey string, in chat.Inbound) (store.Turn, error) {
	in, body, source, err := store.EncodeInbound(in)
	if err != nil {
		return store.Turn{}, fmt.Errorf("sqlite store: receive: %w", err)
	}
	src := in.Source
	now := s.millis()
	var id int64
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if in.EventID != "" {
			res, err := tx.StmtContext(ctx, s.stmts.insertSeen).ExecContext(ctx, in.Source.Platform, in.EventID, now)
			if err != nil {
				return fmt.Errorf("record event: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("record event: %w", err)
			} else if n == 0 {
				return store.ErrDuplicate
			}
		}
		res, err := tx.StmtContext(ctx, s.stmts.insertTurn).ExecContext(ctx, sessionKey, string(body), store.Received, now, now)
		if err != nil {
			return fmt.Errorf("journal turn: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("journal turn: %w", err)
		}
		if _, err := tx.StmtContext(ctx, s.stmts.seeChat).ExecContext(ctx, sessionKey, src.Platform, src.ChatID, src.ThreadID, string(source), now); err != nil {
			return fmt.Errorf("record chat: %w", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return store.Turn{}, fmt.Errorf("sqlite store: receive %s event %q: %w", in.Source.Platform, in.EventID, err)
	case err != nil:
		return store.Turn{}, fmt.Errorf("sqlite store: receive: %w", err)
	}
	return store.Turn{
		ID:         id,
		SessionKey: sessionKey,
		Inbound:    in,
		Status:     store.Received,
		CreatedAt:  fromMillis(now),
		UpdatedAt:  fromMillis(now),
	}, nil
}

// SetTurnStatus moves a turn on. errText is kept for a turn that ended
// (Delivered or Failed) and cleared otherwise. An unknown id is
// store.ErrNotFound.
func (s *Store) SetTurnStatus(ctx context.Context, id int64, status store.TurnStatus, errText string) error {
	switch status {
	case store.Received, store.Running:
		errText = ""
	case store.Delivered, store.Failed:
	default:
		return fmt.Errorf("sqlite store: set turn %d status: unknown status %q", id, status)
	}
	err := s.updateTurn(ctx, id, s.stmts.setTurnStatus, status, errText)
	if err != nil {
		return fmt.Errorf("sqlite store: set turn %d status %s: %w", id, status, err)
	}
	return nil
}

// MarkShown records that answer text of the turn reached the user. An
// unknown id is store.ErrNotFound.
func (s *Store) MarkShown(ctx context.Context, id int64) error {
	if err := s.updateTurn(ctx, id, s.stmts.markShown); err != nil {
		return fmt.Errorf("sqlite store: mark turn %d shown: %w", id, err)
	}
	return nil
}

// SetTurnFinal records the final text a turn is about to deliver and the
// messages it edits into it.
func (s *Store) SetTurnFinal(ctx context.Context, id int64, f store.Final) error {
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("sqlite store: set turn %d final: %w", id, err)
	}
	if err := s.updateTurn(ctx, id, s.stmts.setFinal, string(body)); err != nil {
		return fmt.Errorf("sqlite store: set turn %d final: %w", id, err)
	}
	return nil
}

// SetTurnProgress records where a running turn has got to.
func (s *Store) SetTurnProgress(ctx context.Context, id int64, p store.Progress) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("sqlite store: set turn %d progress: %w", id, err)
	}
	if err := s.updateTurn(ctx, id, s.stmts.setProgress, string(body)); err != nil {
		return fmt.Errorf("sqlite store: set turn %d progress: %w", id, err)
	}
	return nil
}

// updateTurn runs update, a statement that sets columns of one turn, with
// args followed by the turn's new updated_at and its id.
func (s *Store) updateTurn(ctx context.Context, id int64, update *sql.Stmt, args ...any) error {
	args = append(args, s.millis(), id)
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, update).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// PendingTurns lists the turns left Received or Running, oldest first.
func (s *Store) PendingTurns(ctx context.Context) ([]store.Turn, error) {
	return s.turns(ctx, "pending turns", "WHERE status IN ('received', 'running') ORDER BY id")
}

// Turns lists the last limit turns filter keeps, newest first.
func (s *Store) Turns(ctx context.Context, filter store.TurnFilter, limit int) ([]store.Turn, error) {
	where := map[store.TurnFilter]string{
		store.AllTurns:         "",
		store.PendingTurnsOnly: "WHERE status IN ('received', 'running')",
		store.FailedTurnsOnly:  "WHERE error <> ''",
	}[filter]
	return s.turns(ctx, "turns", where+" ORDER BY id DESC LIMIT ?", limit)
}

// turns reads the turns that rest (a WHERE, ORDER and LIMIT) selects.
func (s *Store) turns(ctx context.Context, what, rest string, args ...any) ([]store.Turn, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, session_key, inbound, status, shown, final, progress, error, created_at, updated_at
		FROM turns `+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	defer rows.Close()
	var turns []store.Turn
	for rows.Next() {
		var (
			t                store.Turn
			body             []byte
			final, progress  []byte
			created, updated int64
		)
		if err := rows.Scan(&t.ID, &t.SessionKey, &body, &t.Status, &t.Shown, &final, &progress, &t.Error, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		if err := store.DecodeTurn(&t, body, final, progress); err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		t.CreatedAt, t.UpdatedAt = fromMillis(created), fromMillis(updated)
		turns = append(turns, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return turns, nil
}

// PruneTurns deletes Delivered and Failed turns last updated more than
// olderThan ago, so the journal does not grow forever, and the deliveries
// made that long ago whose every send is settled (their keys with them);
// pending turns and deliveries are never pruned. It returns how many turns
// and deliveries it deleted.
func (s *Store) PruneTurns(ctx context.Context, olderThan time.Duration) (int64, error) {
	turns, err := s.prune(ctx, `DELETE FROM turns
		WHERE status IN ('delivered', 'failed') AND updated_at < ?`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: prune turns: %w", err)
	}
	deliveries, err := s.prune(ctx, `DELETE FROM deliveries WHERE created_at < ?1 AND NOT EXISTS (
		SELECT 1 FROM delivery_sends WHERE delivery_id = deliveries.id AND (status IN ('queued', 'sending') OR updated_at >= ?1))`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: prune deliveries: %w", err)
	}
	return turns + deliveries, nil
}

// PruneSeen forgets platform events received more than olderThan ago, so the
// seen table does not grow forever. A platform that redelivers an event
// after that is no longer deduplicated: olderThan must be well beyond any
// platform's redelivery window (a day or more). It returns how many it
// deleted.
func (s *Store) PruneSeen(ctx context.Context, olderThan time.Duration) (int64, error) {
	n, err := s.prune(ctx, "DELETE FROM seen WHERE at < ?", olderThan)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: prune seen events: %w", err)
	}
	return n, nil
}

func (s *Store) prune(ctx context.Context, query string, olderThan time.Duration) (int64, error) {
	cutoff := s.now().Add(-olderThan).UnixMilli()
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, cutoff)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
