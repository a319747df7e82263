package app

import (
	"context"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
)

// account is a further account of a platform (see platform.Accounts),
// run by a runner of its own: over a shared store, replicas spread the
// accounts, each holding its share of them by a lease per account. The
// web chat, the delivery API and the platforms' main accounts stay
// together under the gateway's lease.
type account struct {
	name     string
	settings platform.Settings

	// While it runs here (under App.accountsMu):
	runner  *gateway.Runner
	adapter platform.Adapter
	stop    context.CancelFunc // ends its runner, which shuts down as at exit
	done    chan struct{}      // closed once its runner has returned
	let     func()             // releases its lease (nil without leases)
	leaving bool               // given up to rebalance: stopping
	// failed is when its runner last stopped on an error (a revoked
	// token): not taken again before accountRetry has passed.
	failed time.Time
}

// accountRetry is how long an account whose runner failed waits before
// this replica runs it again (our choice: a token revoked or a platform
// refusing it is not mended in seconds, and another replica may try).
const accountRetry = time.Minute

// accountPrefix and replicaPrefix name the leases of the accounts and the
// lease each replica holds while it is alive, by which replicas count
// each other.
const (
	accountPrefix = "account/"
	replicaPrefix = "replica/"
)

// accountsOf returns the further accounts the configuration names, by
// name.
func accountsOf(cfg *config.Config) []*account {
	var all []*account
	for _, kind := range slices.Sorted(maps.Keys(cfg.Platforms)) {
		multi, ok := cfg.Platforms[kind].(platform.Accounts)
		if !ok {
			continue
		}
		for name, settings := range multi.Accounts() {
			all = append(all, &account{name: name, settings: settings})
		}
	}
	slices.SortFunc(all, func(a, b *account) int { return strings.Compare(a.name, b.name) })
	return all
}

// forAccounts gives each further account its platform's settings in the
// runner's options, which name platforms by their adapters' names.
func forAccounts(o *gateway.Options, cfg *config.Config) {
	o.PairUnknownDMs = maps.Clone(o.PairUnknownDMs)
	o.PlatformStreaming = maps.Clone(o.PlatformStreaming)
	o.PlatformToolProgress = maps.Clone(o.PlatformToolProgress)
	for _, kind := range slices.Sorted(maps.Keys(cfg.Platforms)) {
		multi, ok := cfg.Platforms[kind].(platform.Accounts)
		if !ok {
			continue
		}
		for name := range multi.Accounts() {
			if l, ok := o.Access.Platforms[kind]; ok {
				o.Access.Platforms[name] = l
			}
			if v, ok := o.PairUnknownDMs[kind]; ok {
				o.PairUnknownDMs[name] = v
			}
			if v, ok := o.PlatformStreaming[kind]; ok {
				o.PlatformStreaming[name] = v
			}
			if v, ok := o.PlatformToolProgress[kind]; ok {
				o.PlatformToolProgress[name] = v
			}
			if slices.Contains(o.NoTyping, kind) {
				o.NoTyping = append(slices.Clip(o.NoTyping), name)
			}
			if slices.Contains(o.QuietRestarts, kind) {
				o.QuietRestarts = append(slices.Clip(o.QuietRestarts), name)
			}
		}
	}
}

// build makes acct's adapter and runner, not yet running.
func (a *App) build(acct *account) error {
	adapter, err := acct.settings.Adapter(a.deps(acct.name))
	if err != nil {
		return err
	}
	acct.adapter = wrap(a.opts.WrapAdapter, adapter)
	acct.runner = gateway.New(a.runnerOpts(), a.agent, a.store, acct.adapter)
	return nil
}

// start runs acct's runner (built) until stop is called; then, or when
// it fails, its lease is let go (see let).
func (a *App) start(acct *account) {
	ctx, stop := context.WithCancel(context.Background())
	acct.stop, acct.done = stop, make(chan struct{})
	runner, done, let := acct.runner, acct.done, acct.let
	go func() {
		defer close(done)
		err := runner.Run(ctx)
		if let != nil {
			let()
			a.Metrics.LeaseHeld.Dec()
		}
		a.accountsMu.Lock()
		defer a.accountsMu.Unlock()
		if err != nil {
			acct.failed = time.Now()
			a.log.Error("an account's runner stopped", "account", acct.name, "error", err)
		}
		acct.runner, acct.adapter, acct.stop, acct.let, acct.leaving = nil, nil, nil, nil, false
	}()
}

// runAccounts runs the further accounts until ctx ends: all of them in a
// process of its own store, this replica's share of them over a shared
// one (see spread).
func (a *App) runAccounts(ctx context.Context) {
	if len(a.accounts) == 0 {
		return
	}
	if a.leaser != nil {
		a.spread(ctx, a.leaser)
	} else {
		a.accountsMu.Lock()
		for _, acct := range a.accounts {
			a.start(acct) // built by Build
		}
		a.accountsMu.Unlock()
		<-ctx.Done()
	}
	a.stopAccounts()
}

// stopAccounts stops the accounts' runners, each as at exit (its running
// turns finish within the grace period, the others are left journalled
// for whoever runs the account next), and waits for them.
func (a *App) stopAccounts() {
	var stopping []chan struct{}
	a.accountsMu.Lock()
	for _, acct := range a.accounts {
		if acct.stop != nil {
			acct.stop()
			stopping = append(stopping, acct.done)
		}
	}
	a.accountsMu.Unlock()
	for _, done := range stopping {
		<-done
	}
}

// spread holds this replica's share of the further accounts while ctx
// lasts. A lease of its own says it is alive; each try it counts the live
// replicas and what each holds, takes a free account while it holds
// fewer than its share and gives up those over it (see share). An account
// given up stops as at exit before its lease goes, so that the replica
// taking it over resumes its unfinished turns as after a restart.
func (a *App) spread(ctx context.Context, l store.Leaser) {
	ttl := a.cfg.Database.LeaseTTL
	alive := replicaPrefix + a.holder
	start := time.Now()
	if _, _, err := a.tryLease(ctx, l, alive); err != nil && ctx.Err() == nil {
		a.log.Warn("saying this replica is alive failed; trying again", "error", err)
	}
	let := a.keepLease(l, alive, start, func(why string) {
		a.log.Warn(why + "; the other replicas may count this one out until it is renewed")
	})
	defer let()
	tick := time.NewTicker(max(ttl/tryParts, 100*time.Millisecond))
	defer tick.Stop()
	for {
		a.balance(ctx, l)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// balance takes one free account or gives up those over this replica's
// share, as the leases held now say.
func (a *App) balance(ctx context.Context, l store.Leaser) {
	listCtx, cancel := context.WithTimeout(ctx, a.cfg.Database.LeaseTTL/renewParts)
	held, err := l.Leases(listCtx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("reading the leases failed", "error", err)
		}
		return
	}
	// counts is what each live replica holds, starting from nothing;
	// this one is live, whether or not its own lease is listed yet.
	counts := map[string]int{a.holder: 0}
	for name, holder := range held {
		if strings.HasPrefix(name, replicaPrefix) {
			counts[holder] = 0
		}
	}
	units := len(a.accounts)
	if len(a.adapters) > 0 {
		units++ // the gateway's lease: its holder serves one unit less
		if holder, ok := held[leaseName]; ok && holder != a.holder {
			if _, live := counts[holder]; live {
				counts[holder]++
			}
		}
	}
	a.accountsMu.Lock()
	defer a.accountsMu.Unlock()
	var mine, free []*account
	for _, acct := range a.accounts {
		holder, taken := held[accountPrefix+acct.name]
		switch {
		case acct.stop != nil && !acct.leaving:
			mine = append(mine, acct)
		case acct.stop == nil && !taken && time.Since(acct.failed) >= accountRetry:
			free = append(free, acct)
		}
		if _, live := counts[holder]; taken && live && holder != a.holder {
			counts[holder]++
		}
	}
	if a.holding.Load() && len(a.adapters) > 0 {
		counts[a.holder]++
	}
	counts[a.holder] += len(mine)
	var others []int
	for holder, n := range counts {
		if holder != a.holder {
			others = append(others, n)
		}
	}
	release, take := share(units, counts[a.holder], others)
	for _, acct := range slices.Backward(mine) {
		if release == 0 {
			break
		}
		release--
		acct.leaving = true
		a.log.Info("giving an account up to another replica, to spread the accounts", "account", acct.name)
		acct.stop()
	}
	if !take || len(free) == 0 {
		return
	}
	// Each replica tries the free accounts from its own place in the
	// list, so that two rarely ask for the same one.
	h := fnv.New32a()
	h.Write([]byte(a.holder))
	first := int(h.Sum32() % uint32(len(free)))
	for _, acct := range slices.Concat(free[first:], free[:first]) {
		if a.takeAccount(ctx, l, acct) {
			return // one a try: the others get their turn
		}
	}
}

// takeAccount asks for acct's lease and runs it here when given it.
func (a *App) takeAccount(ctx context.Context, l store.Leaser, acct *account) bool {
	start := time.Now()
	token, held, err := a.tryLease(ctx, l, accountPrefix+acct.name)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("asking for an account's lease failed", "account", acct.name, "error", err)
	}
	if !held {
		return false
	}
	acct.let = a.keepLease(l, accountPrefix+acct.name, start, a.fence)
	a.Metrics.LeaseHeld.Inc()
	if token > 1 {
		a.Metrics.LeaseTakeovers.Inc()
	}
	if err := a.build(acct); err != nil {
		a.log.Error("building an account failed", "account", acct.name, "error", err)
		acct.failed = time.Now()
		acct.let()
		acct.let = nil
		a.Metrics.LeaseHeld.Dec()
		return false
	}
	a.log.Info("running an account", "account", acct.name, "token", token)
	a.start(acct)
	return true
}

// share says what a replica holding mine of units does, the other live
// replicas holding others: how many to give up, and whether to take one
// more. Each holds at most ceil(units / replicas); one over the even
// share, floor(units / replicas), gives up its extra ones while another
// replica holds fewer than that, and only takes more when none does, so
// that a replica that joins gets its part and nothing goes back and forth.
func share(units, mine int, others []int) (release int, take bool) {
	replicas := len(others) + 1
	even, most := units/replicas, (units+replicas-1)/replicas
	short := slices.ContainsFunc(others, func(n int) bool { return n < even })
	switch {
	case mine > most:
		return mine - most, false
	case short && mine > even:
		return mine - even, false
	}
	return 0, mine < even || mine < most && !short
}

// running is a further account running here, as it was when asked.
type running struct {
	name   string
	runner *gateway.Runner
}

// accountsHeld returns the further accounts running here, by name.
func (a *App) accountsHeld() []running {
	a.accountsMu.Lock()
	defer a.accountsMu.Unlock()
	var held []running
	for _, acct := range a.accounts {
		if acct.runner != nil && acct.stop != nil {
			held = append(held, running{acct.name, acct.runner})
		}
	}
	return held
}
