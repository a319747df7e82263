package postgres

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/store"
)

var _ store.Leaser = (*Store)(nil)

// A lease is held by one holder until it lapses or is released; each new
// holder gets a greater token; a renewal keeps it.
func TestLeases(t *testing.T) {
	a, dbURL := openTest(t)
	b := openURL(t, dbURL) // another replica
	ctx := context.Background()
	take := func(s *Store, name, holder string, ttl time.Duration) (int64, bool) {
		t.Helper()
		token, held, err := s.TakeLease(ctx, name, holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return token, held
	}
	if token, held := take(a, "gateway", "A", time.Hour); !held || token != 1 {
		t.Fatalf("A on a free lease: token %d, held %v; want 1, held", token, held)
	}
	if _, held := take(b, "gateway", "B", time.Hour); held {
		t.Fatal("B took a lease A holds")
	}
	if token, held := take(a, "gateway", "A", 200*time.Millisecond); !held || token != 1 {
		t.Fatalf("A renewing: token %d, held %v; want 1, held", token, held)
	}
	if _, held := take(b, "gateway", "B", time.Hour); held {
		t.Fatal("B took the lease A just renewed")
	}
	time.Sleep(300 * time.Millisecond) // past the renewal's expiry, by the database's clock
	if token, held := take(b, "gateway", "B", time.Hour); !held || token != 2 {
		t.Fatalf("B on the lapsed lease: token %d, held %v; want 2, held", token, held)
	}
	if _, held := take(a, "gateway", "A", time.Hour); held {
		t.Fatal("A renewed a lease that lapsed and went to B")
	}
	if err := b.ReleaseLease(ctx, "gateway", "A"); err != nil {
		t.Fatal(err)
	}
	if _, held := take(a, "gateway", "A", time.Hour); held {
		t.Fatal("A's release of B's lease freed it")
	}
	if err := b.ReleaseLease(ctx, "gateway", "B"); err != nil {
		t.Fatal(err)
	}
	if token, held := take(a, "gateway", "A", time.Hour); !held || token != 3 {
		t.Fatalf("A after B's release: token %d, held %v; want 3, held", token, held)
	}
	if token, held, err := b.TakeLease(ctx, "telegram", "B", time.Hour); err != nil || !held || token != 1 {
		t.Fatalf("another name is another lease: token %d, held %v, %v", token, held, err)
	}
	if _, held := take(b, "lapsing", "B", 100*time.Millisecond); !held {
		t.Fatal("B could not take a free lease")
	}
	time.Sleep(200 * time.Millisecond) // past its expiry
	if held, err := b.Leases(ctx); err != nil || !maps.Equal(held, map[string]string{"gateway": "A", "telegram": "B"}) {
		t.Errorf("the leases held: %v (%v), want gateway by A and telegram by B, the lapsed one not", held, err)
	}
}
