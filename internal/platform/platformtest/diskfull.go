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

// write makes a write unless the disk is full.
func (d *DiskFull) write(op string, w func() error) error {
	if d.Full.Load() {
		return fmt.Errorf("sqlite store: %s: %w", op, ErrDiskFull)
	}
	return w()
}

func (d *DiskFull) Receive(ctx context.Context, key string, in chat.Inbound) (turn store.Turn, err error) {
	err = d.write("receive", func() (err error) {
		turn, err = d.Store.Receive(ctx, key, in)
		return err
	})
	return turn, err
}

func (d *DiskFull) SwapSessionID(ctx context.Context, key, old, new string) (swapped bool, err error) {
	err = d.write("swap session", func() (err error) {
		swapped, err = d.Store.SwapSessionID(ctx, key, old, new)
		return err
	})
	return swapped, err
}

func (d *DiskFull) SetTurnStatus(ctx context.Context, id int64, status store.TurnStatus, errText string) error {
	return d.write("set turn status", func() error { return d.Store.SetTurnStatus(ctx, id, status, errText) })
}

func (d *DiskFull) MarkShown(ctx context.Context, id int64) error {
	return d.write("mark shown", func() error { return d.Store.MarkShown(ctx, id) })
}

func (d *DiskFull) SetTurnProgress(ctx context.Context, id int64, p store.Progress) error {
	return d.write("set turn progress", func() error { return d.Store.SetTurnProgress(ctx, id, p) })
}

func (d *DiskFull) SetTurnFinal(ctx context.Context, id int64, f store.Final) error {
	return d.write("set turn final", func() error { return d.Store.SetTurnFinal(ctx, id, f) })
}

func (d *DiskFull) SetSessionID(ctx context.Context, key, id string) error {
	return d.write("set session", func() error { return d.Store.SetSessionID(ctx, key, id) })
}

func (d *DiskFull) Append(ctx context.Context, sessionID string, entries ...store.Entry) error {
	return d.write("append", func() error { return d.Store.Append(ctx, sessionID, entries...) })
}

func (d *DiskFull) SetState(ctx context.Context, name, value string) error {
	return d.write("set state", func() error { return d.Store.SetState(ctx, name, value) })
}
