package platformtest

import (
	"slices"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/store"
)

// Deliver asks the runner for a new delivery of the agent's own, failing
// the test if it refuses it or takes its key for one used before.
func Deliver(t testing.TB, r *gateway.Runner, key, target, text string) store.Delivery {
	t.Helper()
	d, created, err := r.Deliver(t.Context(), key, target, text)
	if err != nil || !created {
		t.Fatalf("delivering %q to %q: created %v, %v", key, target, created, err)
	}
	return d
}

// Settled waits until every send of a delivery is settled (sent, failed
// or uncertain), and returns the delivery. It polls: in a synctest bubble
// its sleeps pass once everything else waits.
func Settled(t testing.TB, r *gateway.Runner, id int64) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard, not a speed assertion
	for {
		d, err := r.DeliveryState(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(d.Sends, func(s store.Send) bool { return s.Status == store.Queued || s.Status == store.Sending }) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %q is still unsettled: %+v", d.Key, d.Sends)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckSent fails the test unless the delivery has one send, sent to the
// platform's chat (and thread) as the messages ids.
func CheckSent(t testing.TB, d store.Delivery, platform, chatID, thread string, ids ...string) {
	t.Helper()
	if len(d.Sends) != 1 {
		t.Fatalf("delivery %q has sends %+v, want one", d.Key, d.Sends)
	}
	s := d.Sends[0]
	if s.Platform != platform || s.Target.ChatID != chatID || s.Target.ThreadID != thread ||
		s.Status != store.Sent || s.Error != "" || !slices.Equal(s.MessageIDs, ids) {
		t.Errorf("delivery %q: send %+v, want sent to %s %s thread %q as messages %q", d.Key, s, platform, chatID, thread, ids)
	}
}
