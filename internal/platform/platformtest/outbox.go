package platformtest

import "sync"

// Outbox is what a fake server's websocket connection has to send: any
// goroutine queues frames, the connection's one writer takes them in order
// (a websocket takes one writer at a time). It is safe for concurrent use.
type Outbox[F any] struct {
	mu    sync.Mutex
	queue []F
	wake  chan struct{}
}

// NewOutbox returns an empty outbox.
func NewOutbox[F any]() *Outbox[F] {
	return &Outbox[F]{wake: make(chan struct{}, 1)}
}

// Push queues a frame and wakes the writer.
func (o *Outbox[F]) Push(f F) {
	o.mu.Lock()
	o.queue = append(o.queue, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Take returns the frames queued since the last Take, oldest first.
func (o *Outbox[F]) Take() []F {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queue
	o.queue = nil
	return q
}

// Wake receives after a Push, for the writer waiting for frames.
func (o *Outbox[F]) Wake() <-chan struct{} { return o.wake }
