package platformtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/sqlite"
)

// ErrDiskFull is SQLite's error when the disk is full (SQLITE_FULL).
var ErrDiskFull = errors.New("database or disk is full")

// DiskFull is a store whose writes (the gateway's and the platforms'
// positions) fail with ErrDiskFull while Full is set, as on a full disk;
// reads go on.
type DiskFull struct {
	*sqlite.Store
	Full atomic.Bool
}

var (
	_ gateway.Store       = (*DiskFull)(nil)
	_ platform.StateStore = (*DiskFull)(nil)
)

func (d *DiskFull) check(op string) error {
	if d.Full.Load() {
		return fmt.Errorf("sqlite store: %s: %w", op, ErrDiskFull)
	}
	return nil
}

func (d *DiskFull) Receive(ctx context.Context, key string, in chat.Inbound) (store.Turn, error) {
	if err := d.check("receive"); err != nil {
		return store.Turn{}, err
	}
	return d.Store.Receive(ctx, key, in)
}

func (d *DiskFull) SetTurnStatus(ctx context.Context, id int64, status store.TurnStatus, errText string) error {
	if err := d.check("set turn status"); err != nil {
		return err
	}
	return d.Store.SetTurnStatus(ctx, id, status, errText)
}

func (d *DiskFull) MarkShown(ctx context.Context, id int64) error {
	if err := d.check("mark shown"); err != nil {
		return err
	}
	return d.Store.MarkShown(ctx, id)
}

func (d *DiskFull) SetTurnFinal(ctx context.Context, id int64, f store.Final) error {
	if err := d.check("set turn final"); err != nil {
		return err
	}
	return d.Store.SetTurnFinal(ctx, id, f)
}

func (d *DiskFull) SetSessionID(ctx context.Context, key, id string) error {
	if err := d.check("set session"); err != nil {
		return err
	}
	return d.Store.SetSessionID(ctx, key, id)
}

func (d *DiskFull) SwapSessionID(ctx context.Context, key, old, new string) (bool, error) {
	if err := d.check("swap session"); err != nil {
		return false, err
	}
	return d.Store.SwapSessionID(ctx, key, old, new)
}

func (d *DiskFull) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	if err := d.check("append"); err != nil {
		return err
	}
	return d.Store.Append(ctx, sessionID, entries...)
}

func (d *DiskFull) SetState(ctx context.Context, name, value string) error {
	if err := d.check("set state"); err != nil {
		return err
	}
	return d.Store.SetState(ctx, name, value)
}
