// Package apptest runs a built gateway in a test, as net/http/httptest
// runs a server: in the background, ready before the test goes on, and
// stopped when the test ends.
package apptest

import (
	"context"
	"sync"
	"testing"

	"github.com/herald-chat/herald/internal/app"
)

// Run runs a until the test ends, and returns once its platforms are
// connected (the test fails if they never are). stop ends it earlier and
// returns Run's error; called again, it returns the same.
func Run(t testing.TB, a *app.App) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-ran })
	t.Cleanup(func() { _ = stop() })
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	return stop
}
