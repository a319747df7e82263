package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-chat/herald/internal/store"
)

// FindChat returns the conversation last seen in a chat (and thread, when
// threadID is not ""); store.ErrNotFound if no message came from there.
func (s *Store) FindChat(ctx context.Context, platform, chatID, threadID string) (store.Chat, error) {
	query := `SELECT session_key, source, seen_at FROM chats WHERE platform = $1 AND chat_id = $2`
	args := []any{platform, chatID}
	if threadID != "" {
		query += " AND thread_id = $3"
		args = append(args, threadID)
	}
	c, err := s.chat(ctx, query+" ORDER BY seen_at DESC LIMIT 1", args...)
	if err != nil {
		return c, fmt.Errorf("postgres store: find %s chat %q: %w", platform, chatID, err)
	}
	return c, nil
}

// ChatOfSession returns the conversation whose current session is
// sessionID; store.ErrNotFound if none.
func (s *Store) ChatOfSession(ctx context.Context, sessionID string) (store.Chat, error) {
	c, err := s.chat(ctx, `SELECT c.session_key, c.source, c.seen_at FROM sessions s
		JOIN chats c ON c.session_key = s.key WHERE s.session_id = $1 ORDER BY c.seen_at DESC LIMIT 1`, sessionID)
	if err != nil {
		return c, fmt.Errorf("postgres store: chat of session %q: %w", sessionID, err)
	}
	return c, nil
}

func (s *Store) chat(ctx context.Context, query string, args ...any) (store.Chat, error) {
	var (
		c      store.Chat
		source []byte
		seen   int64
	)
	err := s.pool.QueryRow(ctx, query, args...).Scan(&c.SessionKey, &source, &seen)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return c, store.ErrNotFound
	case err != nil:
		return c, err
	}
	if err := json.Unmarshal(source, &c.Source); err != nil {
		return c, fmt.Errorf("decode source: %w", err)
	}
	c.SeenAt = fromMillis(seen)
	return c, nil
}

// Enqueue journals a delivery with its sends, all queued, in one
// transaction; a key journalled before writes nothing and returns that
// delivery with store.ErrDuplicate. Of two transactions enqueueing one key
// at once, the second waits for the first and then finds the key taken.
func (s *Store) Enqueue(ctx context.Context, d store.Delivery) (store.Delivery, error) {
	targets, err := store.EncodeTargets(d)
	if err != nil {
		return d, fmt.Errorf("postgres store: enqueue %q: %w", d.Key, err)
	}
	now := s.millis()
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO deliveries (key, target, text, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (key) DO NOTHING RETURNING id`, d.Key, d.Target, []byte(d.Text), now).Scan(&d.ID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrDuplicate
		case err != nil:
			return err
		}
		for i, send := range d.Sends {
			if _, err := tx.Exec(ctx, `INSERT INTO delivery_sends (delivery_id, send, platform, target, status, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, d.ID, i, send.Platform, string(targets[i]), store.Queued, now); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		was, err := s.DeliveryByKey(ctx, d.Key)
		if err != nil {
			return d, fmt.Errorf("postgres store: enqueue %q: read the delivery of its key: %w", d.Key, err)
		}
		return was, fmt.Errorf("postgres store: enqueue %q: %w", d.Key, store.ErrDuplicate)
	case err != nil:
		return d, fmt.Errorf("postgres store: enqueue %q: %w", d.Key, err)
	}
	return store.Enqueued(d, fromMillis(now)), nil
}

// Delivery returns a delivery by id; store.ErrNotFound if none.
func (s *Store) Delivery(ctx context.Context, id int64) (store.Delivery, error) {
	d, err := store.FirstDelivery(s.deliveries(ctx, "WHERE id = $1", id))
	if err != nil {
		return d, fmt.Errorf("postgres store: delivery %d: %w", id, err)
	}
	return d, nil
}

// DeliveryByKey returns the delivery of an idempotency key;
// store.ErrNotFound if none.
func (s *Store) DeliveryByKey(ctx context.Context, key string) (store.Delivery, error) {
	d, err := store.FirstDelivery(s.deliveries(ctx, "WHERE key = $1", key))
	if err != nil {
		return d, fmt.Errorf("postgres store: delivery of key %q: %w", key, err)
	}
	return d, nil
}

// SetSendStatus moves a delivery's send on, with the messages that show
// it; errText is kept for a send that failed or is uncertain. An unknown
// send is store.ErrNotFound.
func (s *Store) SetSendStatus(ctx context.Context, id int64, send int, status store.SendStatus, errText string, messageIDs []string) error {
	errText, ids, err := store.SendRecord(status, errText, messageIDs)
	if err != nil {
		return fmt.Errorf("postgres store: set delivery %d send %d: %w", id, send, err)
	}
	now := s.millis()
	err = s.write(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE delivery_sends SET status = $1, error = $2, message_ids = $3, updated_at = $4
			WHERE delivery_id = $5 AND send = $6`, status, []byte(errText), string(ids), now, id, send)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres store: set delivery %d send %d %s: %w", id, send, status, err)
	}
	return nil
}

// UnsentDeliveries lists the deliveries with a send left queued or
// sending, oldest first.
func (s *Store) UnsentDeliveries(ctx context.Context) ([]store.Delivery, error) {
	ds, err := s.deliveries(ctx, `WHERE id IN (SELECT delivery_id FROM delivery_sends WHERE status IN ('queued', 'sending'))`)
	if err != nil {
		return nil, fmt.Errorf("postgres store: unsent deliveries: %w", err)
	}
	return ds, nil
}

// deliveries reads the deliveries a WHERE clause picks, oldest first, with
// their sends.
func (s *Store) deliveries(ctx context.Context, where string, args ...any) ([]store.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.key, d.target, d.text, d.created_at,
			ds.platform, ds.target, ds.status, ds.error, ds.message_ids, ds.updated_at
		FROM (SELECT * FROM deliveries `+where+`) d JOIN delivery_sends ds ON ds.delivery_id = d.id
		ORDER BY d.id, ds.send`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ds []store.Delivery
	for rows.Next() {
		var (
			d                store.Delivery
			send             store.Send
			text, errText    []byte
			target, ids      []byte
			created, updated int64
		)
		if err := rows.Scan(&d.ID, &d.Key, &d.Target, &text, &created, &send.Platform, &target, &send.Status, &errText, &ids, &updated); err != nil {
			return nil, err
		}
		send.Error = string(errText)
		send.UpdatedAt = fromMillis(updated)
		d.Text = string(text)
		d.CreatedAt = fromMillis(created)
		if ds, err = store.AddSendRow(ds, d, send, target, ids); err != nil {
			return nil, err
		}
	}
	return ds, rows.Err()
}
