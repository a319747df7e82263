package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/store"
)

// Receive journals an inbound message as a Received turn. The seen-event
// check and the insert are one transaction: a message whose (platform, event
// id) was seen before returns store.ErrDuplicate and writes nothing. A
// message without an event id is never a duplicate. The Inbound is kept as
// JSON with its Received time in UTC, and comes back exactly so.
//
// Of several transactions receiving the same event at once (replicas, or
// goroutines), PostgreSQL makes all but the first wait on the seen row and
// then find it there: exactly one journals the turn.
func (s *Store) Receive(ctx context.Context, sessionKey string, in chat.Inbound) (store.Turn, error) {
	in, body, source, err := store.EncodeInbound(in)
	if err != nil {
		return store.Turn{}, fmt.Errorf("postgres store: receive: %w", err)
	}
	src := in.Source
	now := s.millis()
	var id int64
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if in.EventID != "" {
			tag, err := tx.Exec(ctx, "INSERT INTO seen (platform, event_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
				in.Source.Platform, in.EventID, now)
			if err != nil {
				return fmt.Errorf("record event: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return store.ErrDuplicate
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO turns (session_key, inbound, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, sessionKey, string(body), store.Received, now, now).Scan(&id)
		if err != nil {
			return fmt.Errorf("journal turn: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO chats (session_key, platform, chat_id, thread_id, source, seen_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (session_key) DO UPDATE SET platform = excluded.platform, chat_id = excluded.chat_id,
				thread_id = excluded.thread_id, source = excluded.source, seen_at = excluded.seen_at`,
			sessionKey, src.Platform, src.ChatID, src.ThreadID, string(source), now)
		if err != nil {
			return fmt.Errorf("record chat: %w", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return store.Turn{}, fmt.Errorf("postgres store: receive %s event %q: %w", in.Source.Platform, in.EventID, err)
	case err != nil:
		return store.Turn{}, fmt.Errorf("postgres store: receive: %w", err)
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
		return fmt.Errorf("postgres store: set turn %d status: unknown status %q", id, status)
	}
	err := s.updateTurn(ctx, id, "status = $1, error = $2", status, []byte(errText))
	if err != nil {
		return fmt.Errorf("postgres store: set turn %d status %s: %w", id, status, err)
	}
	return nil
}

// MarkShown records that answer text of the turn reached the user. An
// unknown id is store.ErrNotFound.
func (s *Store) MarkShown(ctx context.Context, id int64) error {
	if err := s.updateTurn(ctx, id, "shown = true"); err != nil {
		return fmt.Errorf("postgres store: mark turn %d shown: %w", id, err)
	}
	return nil
}

// SetTurnFinal records the final text a turn is about to deliver and the
// messages it edits into it. An unknown id is store.ErrNotFound.
func (s *Store) SetTurnFinal(ctx context.Context, id int64, f store.Final) error {
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("postgres store: set turn %d final: %w", id, err)
	}
	if err := s.updateTurn(ctx, id, "final = $1", string(body)); err != nil {
		return fmt.Errorf("postgres store: set turn %d final: %w", id, err)
	}
	return nil
}

// SetTurnProgress records where a running turn has got to. An unknown id
// is store.ErrNotFound.
func (s *Store) SetTurnProgress(ctx context.Context, id int64, p store.Progress) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("postgres store: set turn %d progress: %w", id, err)
	}
	if err := s.updateTurn(ctx, id, "progress = $1", string(body)); err != nil {
		return fmt.Errorf("postgres store: set turn %d progress: %w", id, err)
	}
	return nil
}

// updateTurn sets columns of one turn: set is the SET list, whose
// parameters are args, numbered from $1; the turn's new updated_at and its
// id follow them.
func (s *Store) updateTurn(ctx context.Context, id int64, set string, args ...any) error {
	n := len(args)
	query := fmt.Sprintf("UPDATE turns SET %s, updated_at = $%d WHERE id = $%d", set, n+1, n+2)
	args = append(args, s.millis(), id)
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
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
		store.FailedTurnsOnly:  "WHERE error <> ''::bytea",
	}[filter]
	return s.turns(ctx, "turns", where+" ORDER BY id DESC LIMIT $1", limit)
}

// turns reads the turns that rest (a WHERE, ORDER and LIMIT) selects.
func (s *Store) turns(ctx context.Context, what, rest string, args ...any) ([]store.Turn, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, session_key, inbound, status, shown, final, progress, error, created_at, updated_at
		FROM turns `+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	defer rows.Close()
	var turns []store.Turn
	for rows.Next() {
		var (
			t                store.Turn
			body, errText    []byte
			final, progress  []byte
			created, updated int64
		)
		if err := rows.Scan(&t.ID, &t.SessionKey, &body, &t.Status, &t.Shown, &final, &progress, &errText, &created, &updated); err != nil {
			return nil, fmt.Errorf("postgres store: %s: %w", what, err)
		}
		if err := store.DecodeTurn(&t, body, final, progress); err != nil {
			return nil, fmt.Errorf("postgres store: %s: %w", what, err)
		}
		t.Error = string(errText)
		t.CreatedAt, t.UpdatedAt = fromMillis(created), fromMillis(updated)
		turns = append(turns, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", what, err)
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
		WHERE status IN ('delivered', 'failed') AND updated_at < $1`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("postgres store: prune turns: %w", err)
	}
	deliveries, err := s.prune(ctx, `DELETE FROM deliveries WHERE created_at < $1 AND NOT EXISTS (
		SELECT 1 FROM delivery_sends WHERE delivery_id = deliveries.id AND (status IN ('queued', 'sending') OR updated_at >= $1))`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("postgres store: prune deliveries: %w", err)
	}
	return turns + deliveries, nil
}

// PruneSeen forgets platform events received more than olderThan ago, so the
// seen table does not grow forever. A platform that redelivers an event
// after that is no longer deduplicated: olderThan must be well beyond any
// platform's redelivery window (a day or more). It returns how many it
// deleted.
func (s *Store) PruneSeen(ctx context.Context, olderThan time.Duration) (int64, error) {
	n, err := s.prune(ctx, "DELETE FROM seen WHERE at < $1", olderThan)
	if err != nil {
		return 0, fmt.Errorf("postgres store: prune seen events: %w", err)
	}
	return n, nil
}

func (s *Store) prune(ctx context.Context, query string, olderThan time.Duration) (int64, error) {
	cutoff := s.now().Add(-olderThan).UnixMilli()
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, cutoff)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
