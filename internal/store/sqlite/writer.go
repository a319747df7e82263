package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// maxBatch bounds how many writes share a transaction, so that one commit
// (and the wait of the first write in it) stays short.
const maxBatch = 128

// writeFunc is one write, run by the writer goroutine inside a
// transaction. Its ctx is the writer's, not the caller's: a caller giving
// up must not interrupt a transaction that holds other callers' writes.
// It may run more than once (if its batch cannot commit, it runs again in
// a transaction of its own), so it must set whatever it hands back to its
// caller afresh each time.
type writeFunc func(ctx context.Context, tx *sql.Tx) error

// writeReq is a write waiting for the writer goroutine, and its outcome.
type writeReq struct {
	ctx     context.Context // the caller's
	fn      writeFunc
	started bool          // fn has started: it is not skipped any more
	err     error         // the outcome, once done is closed
	done    chan struct{} // closed when the write is committed or has failed
}

// mayRun reports whether the request's function may run. One whose
// caller's ctx ended before it started is skipped with ctx.Err(); once
// started, it is seen through.
func (r *writeReq) mayRun() bool {
	if !r.started {
		if r.err = r.ctx.Err(); r.err != nil {
			return false
		}
		r.started = true
	}
	return true
}

// write runs fn in the writer goroutine and returns once it is committed,
// with fn's error or the transaction's. After Close it returns ErrClosed.
func (s *Store) write(ctx context.Context, fn writeFunc) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.queue = append(s.queue, req)
	s.mu.Unlock()
	s.signal()
	if s.testHookQueued != nil {
		s.testHookQueued()
	}
	// No select on ctx: the writer itself skips a request whose ctx is done
	// before it starts, so the caller learns whether it was written.
	<-req.done
	return req.err
}

// signal wakes the writer goroutine, unless a wake-up is pending already.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// writeLoop is the writer goroutine: it commits batches of queued writes
// until the store is closed and the queue is empty.
func (s *Store) writeLoop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		// Taking the whole queue leaves no array behind holding done writes.
		batch, rest := s.queue, []*writeReq(nil)
		if len(batch) > maxBatch {
			batch, rest = batch[:maxBatch:maxBatch], batch[maxBatch:]
		}
		s.queue = rest
		closed := s.closed
		s.mu.Unlock()
		switch {
		case len(batch) > 0:
			s.commit(batch)
		case closed:
			return
		default:
			<-s.wake
		}
	}
}

// commit runs a batch of writes and tells each caller its outcome. If the
// batch's transaction fails as a whole once writes ran in it (its COMMIT,
// or a savepoint), each write runs again in a transaction of its own, so
// that every caller gets its own true result rather than the batch's.
func (s *Store) commit(batch []*writeReq) {
	// A lone write needs no savepoint.
	if len(batch) == 1 || !s.commitBatch(batch) {
		for _, req := range batch {
			s.commitOne(req)
		}
	}
	for _, req := range batch {
		close(req.done)
	}
}

// commitBatch runs the batch in one transaction, each write in a savepoint
// that is rolled back if the write fails, and commits it. It reports
// whether every write has its outcome; if not, nothing of the batch is
// written and each write must run again alone.
func (s *Store) commitBatch(batch []*writeReq) bool {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		// Nothing ran; alone, each write would meet the same failure (and
		// wait out the busy timeout again).
		for _, req := range batch {
			if req.mayRun() {
				req.err = err
			}
		}
		return true
	}
	defer func() { _ = tx.Rollback() }() // a no-op once committed
	exec := func(stmt *sql.Stmt) bool {
		_, err := tx.StmtContext(ctx, stmt).ExecContext(ctx)
		return err == nil
	}
	for _, req := range batch {
		if !req.mayRun() {
			continue
		}
		if !exec(s.stmts.savepoint) {
			return false
		}
		if req.err = req.fn(ctx, tx); req.err != nil && !exec(s.stmts.rollbackTo) {
			return false
		}
		if !exec(s.stmts.release) {
			return false
		}
	}
	if tx.Commit() != nil {
		return false
	}
	s.commits.Add(1)
	return true
}

// commitOne runs one write in a transaction of its own.
func (s *Store) commitOne(req *writeReq) {
	if !req.mayRun() {
		return
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		req.err = err
		return
	}
	if req.err = req.fn(ctx, tx); req.err != nil {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		req.err = fmt.Errorf("commit: %w", err)
		return
	}
	s.commits.Add(1)
}
