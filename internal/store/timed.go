package store

import (
	"context"
	"time"

	"github.com/herald-chat/herald/internal/chat"
)

// Timed is a store whose journal writes (what a turn waits on) are timed:
// observe is told each one's name and how long it took, failed or not.
// Every other method is the store's own.
func Timed(s Store, observe func(op string, took time.Duration)) Store {
	return &timed{Store: s, observe: observe}
}

type timed struct {
	Store
	observe func(op string, took time.Duration)
}

// time reports how long since start to observe, under op.
func (t *timed) time(op string, start time.Time) { t.observe(op, time.Since(start)) }

func (t *timed) Receive(ctx context.Context, sessionKey string, in chat.Inbound) (Turn, error) {
	defer t.time("receive", time.Now())
	return t.Store.Receive(ctx, sessionKey, in)
}

func (t *timed) SetTurnStatus(ctx context.Context, id int64, status TurnStatus, errText string) error {
	defer t.time("turn_status", time.Now())
	return t.Store.SetTurnStatus(ctx, id, status, errText)
}

func (t *timed) MarkShown(ctx context.Context, id int64) error {
	defer t.time("mark_shown", time.Now())
	return t.Store.MarkShown(ctx, id)
}

func (t *timed) SetTurnFinal(ctx context.Context, id int64, f Final) error {
	defer t.time("turn_final", time.Now())
	return t.Store.SetTurnFinal(ctx, id, f)
}

func (t *timed) SetTurnProgress(ctx context.Context, id int64, p Progress) error {
	defer t.time("turn_progress", time.Now())
	return t.Store.SetTurnProgress(ctx, id, p)
}

func (t *timed) Append(ctx context.Context, sessionID string, entries ...Entry) error {
	defer t.time("append", time.Now())
	return t.Store.Append(ctx, sessionID, entries...)
}

func (t *timed) Enqueue(ctx context.Context, d Delivery) (Delivery, error) {
	defer t.time("enqueue", time.Now())
	return t.Store.Enqueue(ctx, d)
}

func (t *timed) SetSendStatus(ctx context.Context, id int64, send int, status SendStatus, errText string, messageIDs []string) error {
	defer t.time("send_status", time.Now())
	return t.Store.SetSendStatus(ctx, id, send, status, errText, messageIDs)
}
