package store

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
)

// The pieces below are what the stores (SQLite, PostgreSQL) share apart
// from their SQL: how their schemas are versioned, and how values are
// written into rows and read back, so that the two keep the same shapes.

// Migration is one step of a store's schema: the version it brings the
// database to, and its SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the migrations in dir of fsys, in order. Their names
// start with the version they bring the database to, counting from 1
// without gaps.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its version", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// EncodeInbound is an inbound message as a store keeps it: with its
// Received time in UTC, as JSON, and its chat's source (without the
// message's id) as JSON for the chats it records.
func EncodeInbound(in chat.Inbound) (_ chat.Inbound, body, source []byte, err error) {
	in.Received = in.Received.UTC()
	if body, err = json.Marshal(in); err != nil {
		return in, nil, nil, fmt.Errorf("encode inbound: %w", err)
	}
	src := in.Source
	src.MessageID = ""
	if source, err = json.Marshal(src); err != nil {
		return in, nil, nil, fmt.Errorf("encode source: %w", err)
	}
	return in, body, source, nil
}

// DecodeTurn fills a turn's Inbound, Final and Progress from their JSON
// columns; nil is a column left empty.
func DecodeTurn(t *Turn, inbound, final, progress []byte) error {
	if err := json.Unmarshal(inbound, &t.Inbound); err != nil {
		return fmt.Errorf("decode turn %d: %w", t.ID, err)
	}
	if final != nil {
		t.Final = new(Final)
		if err := json.Unmarshal(final, t.Final); err != nil {
			return fmt.Errorf("decode turn %d's final: %w", t.ID, err)
		}
	}
	if progress != nil {
		if err := json.Unmarshal(progress, &t.Progress); err != nil {
			return fmt.Errorf("decode turn %d's progress: %w", t.ID, err)
		}
	}
	return nil
}

// EncodeTargets are a delivery's sends' targets as JSON, one a send.
func EncodeTargets(d Delivery) ([][]byte, error) {
	targets := make([][]byte, len(d.Sends))
	for i, send := range d.Sends {
		var err error
		if targets[i], err = json.Marshal(send.Target); err != nil {
			return nil, fmt.Errorf("encode target: %w", err)
		}
	}
	return targets, nil
}

// Enqueued is a delivery as Enqueue journalled it at now: every send
// queued.
func Enqueued(d Delivery, now time.Time) Delivery {
	d.CreatedAt = now
	for i := range d.Sends {
		d.Sends[i].Status, d.Sends[i].Error, d.Sends[i].MessageIDs = Queued, "", nil
		d.Sends[i].UpdatedAt = now
	}
	return d
}

// SendRecord is what SetSendStatus writes: the error text where the
// status keeps one, and the message ids as JSON.
func SendRecord(status SendStatus, errText string, messageIDs []string) (string, []byte, error) {
	if status != NotSent && status != Uncertain {
		errText = ""
	}
	if messageIDs == nil {
		messageIDs = []string{}
	}
	ids, err := json.Marshal(messageIDs)
	return errText, ids, err
}

// AddSendRow adds a row of a deliveries-and-sends query, ordered by
// delivery and send, to ds: the send goes to the last delivery when it is
// d, else d starts a new one. target and ids are the send's JSON columns.
func AddSendRow(ds []Delivery, d Delivery, send Send, target, ids []byte) ([]Delivery, error) {
	if err := json.Unmarshal(target, &send.Target); err != nil {
		return nil, fmt.Errorf("decode delivery %d's target: %w", d.ID, err)
	}
	if err := json.Unmarshal(ids, &send.MessageIDs); err != nil {
		return nil, fmt.Errorf("decode delivery %d's messages: %w", d.ID, err)
	}
	if n := len(ds); n > 0 && ds[n-1].ID == d.ID {
		ds[n-1].Sends = append(ds[n-1].Sends, send)
		return ds, nil
	}
	d.Sends = []Send{send}
	return append(ds, d), nil
}

// FirstDelivery is the delivery a query by id or by key found, its error
// ErrNotFound when it found none.
func FirstDelivery(ds []Delivery, err error) (Delivery, error) {
	if err == nil && len(ds) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Delivery{}, err
	}
	return ds[0], nil
}
