package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
var errStandingBy = errors.New("standing by: another replica holds the gateway's lease")

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

// holdLease stands by until this replica holds the gateway's lease (nil,
// nil when ctx ends first), then keeps renewing it. If a renewal does not
// succeed in time, the process stops at once (Options.OnLeaseLost), before
// another replica can take the lease: two replicas never answer the same
// chat. release lets the lease go, for a replica standing by to take over
// at once.
func (a *App) holdLease(ctx context.Context, l store.Leaser) (release func(), err error) {
	ttl := a.cfg.Database.LeaseTTL
	try := func(ctx context.Context) (int64, bool, error) {
		ctx, cancel := context.WithTimeout(ctx, ttl/renewParts)
		defer cancel()
		return l.TakeLease(ctx, leaseName, a.holder, ttl)
	}
	var (
		start time.Time
		token int64
		held  bool
		tries int
	)
	for ; ; tries++ {
		start = time.Now()
		token, held, err = try(ctx)
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
	a.Metrics.LeaseHeld.Set(1)
	a.log.Info("holding the gateway's lease", "token", token, "holder", a.holder)

	limit := ttl - ttl/marginParts
	var lostOnce sync.Once
	lose := func(why string) {
		lostOnce.Do(func() {
			a.log.Error(why+": stopping at once, so that the replica taking over is the only one answering", "ttl", ttl)
			a.opts.OnLeaseLost()
		})
	}
	lost := time.AfterFunc(time.Until(start.Add(limit)), func() { lose("the gateway's lease was not renewed in time") })
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
			switch _, held, err := try(renewCtx); {
			case held:
				lost.Reset(time.Until(t0.Add(limit)))
			case renewCtx.Err() != nil:
			case err == nil:
				// Another replica holds it: this one's lapsed while its
				// clock stood still (a suspended host, a paused VM).
				lose("another replica holds the gateway's lease")
				return
			default:
				a.log.Warn("renewing the gateway's lease failed; stopping unless it succeeds in time", "error", err)
			}
		}
	}()
	// Replicas standing by forward the web chat's and the delivery API's
	// requests here; said once renewals run, bounded like them.
	sayCtx, said := context.WithTimeout(ctx, ttl/renewParts)
	if err := a.store.SetState(sayCtx, holderState, a.cfg.ReplicaURL()); err != nil {
		a.log.Warn("saying where this replica listens failed; replicas standing by cannot forward requests to it", "error", err)
	}
	said()
	return func() {
		stop()
		<-renewed
		lost.Stop()
		a.Metrics.LeaseHeld.Set(0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.ReleaseLease(ctx, leaseName, a.holder); err != nil {
			a.log.Warn("releasing the gateway's lease failed; a replica standing by takes over when it lapses", "error", err)
		}
	}, nil
}

// readiness is what /readyz answers: whether this replica is ready, and
// how the agent server, each platform and the lease stand.
func (a *App) readiness() ops.Readiness {
	agent, platforms := a.Runner.Status()
	parts := map[string]any{"agent": agent, "platforms": platforms}
	if a.leaser != nil {
		parts["lease"] = "held"
		if !a.holding.Load() {
			parts["lease"] = "standing by"
			delete(parts, "platforms") // not connected here, by design
		}
	}
	return ops.Readiness{Err: a.ready(), Parts: parts}
}

// ready is nil when this replica is ready, else why not.
func (a *App) ready() error {
	if !a.holding.Load() {
		return errStandingBy
	}
	return a.Runner.Ready()
}
