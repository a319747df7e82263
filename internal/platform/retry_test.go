package platform

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesUpToItsMax(t *testing.T) {
	b := Backoff{Max: 5 * time.Second}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pauses %v, want %v", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Errorf("after Reset the pause is %v, want 1s", d)
	}
	var zero Backoff
	for range 10 {
		zero.Next()
	}
	if d := zero.Next(); d != time.Minute {
		t.Errorf("the zero Backoff grows to %v, want a minute", d)
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
