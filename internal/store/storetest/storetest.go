// Package storetest is the contract every store.Store keeps, as tests
// that run against each implementation (SQLite, PostgreSQL), so that they
// cannot drift apart.
package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/store"
)

// Opener opens a new, empty store for one test (or benchmark), with now
// as its clock, and closes it when the test ends. reopen, given the same test, opens the
// same store again (after Close), to show what survives a restart.
type Opener func(t testing.TB, now func() time.Time) (s store.Store, reopen func() store.Store)

// Clock is a settable time source for a store under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed time.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on (or back, with a negative d).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run runs the contract against the stores open makes.
func Run(t *testing.T, open Opener) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) { c.test(t, open) })
	}
}

// contract is every test of the contract, by name.
var contract []struct {
	name string
	test func(t *testing.T, open Opener)
}
