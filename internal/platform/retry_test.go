package platform

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesUpToItsMaxWithJitter(t *testing.T) {
	a, b := Backoff{Max: 5 * time.Second}, Backoff{Max: 5 * time.Second}
	nominal := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	same := 0
	for i, n := range nominal {
		da, db := a.Next(), b.Next()
		for _, d := range []time.Duration{da, db} {
			if d > n || d < n*3/4 {
				t.Errorf("pause %d is %v, want between %v and %v", i+1, d, n*3/4, n)
			}
		}
		if da == db {
			same++
		}
	}
	if same == len(nominal) {
		t.Error("two backoffs paused in step: no jitter")
	}
	a.Reset()
	if d := a.Next(); d > time.Second {
		t.Errorf("after Reset the pause is %v, want at most 1s", d)
	}
	var zero Backoff
	for range 10 {
		zero.Next()
	}
	if d := zero.Next(); d > time.Minute || d < 45*time.Second {
		t.Errorf("the zero Backoff grows to %v, want about a minute", d)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep reported the whole wait with its context ended")
	}
	if !Sleep(context.Background(), time.Millisecond) || !Sleep(context.Background(), 0) {
		t.Error("Sleep reported an ended context")
	}
	if Sleep(ctx, 0) {
		t.Error("Sleep(0) reported its ended context alive")
	}
}
