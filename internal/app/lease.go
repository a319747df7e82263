package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/store"
)

// leaseName is the lease the replicas of one gateway share: its holder
// runs the platform connections and answers; the others stand by.
const leaseName = "gateway"

// errStandingBy is the readiness of a replica that stands by.
var errStandingBy = errors.New("standing by: other replicas hold the leases")

// newHolder names this process among the replicas: host, pid and a random
// part, so that a restarted process is a new holder (its lease, if it had
// one, lapses rather than being renewed by a process that lost track).
func newHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// The lease's timing, as parts of its TTL: a holder renews every third;
// it stops a fifth before its lease could lapse without a renewal, so
// that it is gone before another replica can take over (fencing); a
// replica standing by tries every tenth.
const (
	renewParts  = 3
	marginParts = 5
	tryParts    = 10
)

// tryLease asks for a lease once, bounded by a third of its TTL.
func (a *App) tryLease(ctx context.Context, l store.Leaser, name string) (token int64, held bool, err error) {
	ttl := a.cfg.Database.LeaseTTL
	ctx, cancel := context.WithTimeout(ctx, ttl/renewParts)
	defer cancel()
	return l.TakeLease(ctx, name, a.holder, ttl)
}

// keepLease renews a lease this replica took at start (when it asked for
// it) every third of its TTL until release is called. If a renewal does
// not succeed in time, or finds another holder, lose is called with why:
// for a lease that guards a platform connection it must stop the process
// at once, before another replica can take the lease over (fencing).
// release stops the renewals and lets the lease go, for a replica
// standing by to take it at once.
func (a *App) keepLease(l store.Leaser, name string, start time.Time, lose func(why string)) (release func()) {
	ttl := a.cfg.Database.LeaseTTL
	limit := ttl - ttl/marginParts
	var lostOnce sync.Once
	lost := time.AfterFunc(time.Until(start.Add(limit)), func() {
		lostOnce.Do(func() { lose("the lease " + name + " was not renewed in time") })
	})
	renewCtx, stop := context.WithCancel(context.Background())
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(ttl / renewParts)
		defer tick.Stop()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-tick.C:
			}
			t0 := time.Now()
			switch _, held, err := a.tryLease(renewCtx, l, name); {
			case held:
				lost.Reset(time.Until(t0.Add(limit)))
			case renewCtx.Err() != nil:
			case err == nil:
				// Another replica holds it: this one's lapsed while its
				// clock stood still (a suspended host, a paused VM).
				lostOnce.Do(func() { lose("another replica holds the lease " + name) })
				return
			default:
				a.log.Warn("renewing a lease failed; it is given up unless a renewal succeeds in time", "lease", name, "error", err)
			}
		}
	}()
	return func() {
		stop()
		<-renewed
		lost.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.ReleaseLease(ctx, name, a.holder); err != nil {
			a.log.Warn("releasing a lease failed; a replica standing by takes it when it lapses", "lease", name, "error", err)
		}
	}
}

// fence is what a replica does when it could not keep a lease that
// guards platform connections: it stops at once (Options.OnLeaseLost), so
// that the replica taking over is the only one answering.
func (a *App) fence(why string) {
	a.log.Error(why+": stopping at once, so that the replica taking over is the only one answering", "ttl", a.cfg.Database.LeaseTTL)
	a.opts.OnLeaseLost()
}

// holdLease stands by until this replica holds the gateway's lease (nil,
// nil when ctx ends first), then keeps it (see keepLease): two replicas
// never answer the same chat. release lets the lease go, for a replica
// standing by to take over at once.
func (a *App) holdLease(ctx context.Context, l store.Leaser) (release func(), err error) {
	ttl := a.cfg.Database.LeaseTTL
	var (
		start time.Time
		token int64
		held  bool
		tries int
	)
	for ; ; tries++ {
		start = time.Now()
		token, held, err = a.tryLease(ctx, l, leaseName)
		if held {
			break
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("asking for the gateway's lease failed", "error", err)
		}
		if tries == 0 {
			a.log.Info("standing by: another replica holds the gateway's lease; taking over when it lapses", "ttl", ttl)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(max(ttl/tryParts, 100*time.Millisecond)):
		}
	}
	if tries > 0 {
		a.Metrics.LeaseTakeovers.Inc()
	}
	a.holding.Store(true)
	a.Metrics.LeaseHeld.Inc()
	a.log.Info("holding the gateway's lease", "token", token, "holder", a.holder)
	let := a.keepLease(l, leaseName, start, a.fence)
	// Replicas standing by forward the web chat's and the delivery API's
	// requests here; said once renewals run, bounded like them.
	sayCtx, said := context.WithTimeout(ctx, ttl/renewParts)
	if err := a.store.SetState(sayCtx, holderState, a.cfg.ReplicaURL()); err != nil {
		a.log.Warn("saying where this replica listens failed; replicas standing by cannot forward requests to it", "error", err)
	}
	said()
	return func() {
		let()
		a.Metrics.LeaseHeld.Dec()
	}, nil
}

// readiness is what /readyz answers: whether this replica is ready, and
// how the agent server, each platform it runs and the leases stand.
func (a *App) readiness() ops.Readiness {
	agent, platforms := a.Runner.Status()
	if !a.holding.Load() {
		platforms = map[string]string{} // those under the gateway's lease run elsewhere
	}
	held := a.accountsHeld()
	var names []string
	for _, acct := range held {
		_, theirs := acct.runner.Status()
		maps.Copy(platforms, theirs)
		names = append(names, acct.name)
	}
	parts := map[string]any{"agent": agent, "platforms": platforms}
	if a.leaser != nil {
		parts["lease"] = "held"
		if !a.holdsAny(held) {
			parts["lease"] = "standing by"
			delete(parts, "platforms") // not connected here, by design
		}
		if len(a.accounts) > 0 {
			parts["accounts"] = names
		}
	}
	return ops.Readiness{Err: a.ready(held), Parts: parts}
}

// holdsAny tells whether this replica holds a lease that has it run
// platforms: the gateway's, or an account's (held).
func (a *App) holdsAny(held []running) bool {
	return a.holding.Load() && len(a.adapters) > 0 || len(held) > 0
}

// ready is nil when this replica is ready, else why not: it runs what
// it holds, and what it runs is connected.
func (a *App) ready(held []running) error {
	if a.leaser != nil && !a.holdsAny(held) {
		return errStandingBy
	}
	if a.holding.Load() {
		if err := a.Runner.Ready(); err != nil {
			return err
		}
	}
	for _, acct := range held {
		if err := acct.runner.Ready(); err != nil {
			return fmt.Errorf("account %s: %w", acct.name, err)
		}
	}
	return nil
}
