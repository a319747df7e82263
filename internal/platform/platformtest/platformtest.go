// Package platformtest runs platform adapters in their tests.
package platformtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform"
)

// Run runs a with the handler h until the test ends or the returned stop
// is called, and returns once a is ready; a that stops before, or is not
// ready within readyWithin, fails the test, and so does an error from Run.
func Run(t testing.TB, a platform.Adapter, h platform.Handler, readyWithin time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", a.Name(), err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("%s stopped before it was ready: %v", a.Name(), err)
	case <-time.After(readyWithin):
		t.Fatalf("%s was not ready within %v", a.Name(), readyWithin)
	}
	return stop
}
