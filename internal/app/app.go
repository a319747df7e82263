// Package app builds a whole gateway from its configuration (the store,
// the HTTP listener with the operations endpoints, the enabled platforms,
// the agent backend and the runner) and runs it. `herald run`, `herald
// demo` and the benchmarks' gateway are all built here; the benchmarks
// differ only in the measuring wrappers they pass.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/agent/openai"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/deliver"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/homelock"
	"github.com/herald-chat/herald/internal/httpserve"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/store/postgres"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/stream"
)

// Options say what to build beyond what the configuration says.
type Options struct {
	// Backend is the agent backend; nil means the one the configuration
	// selects (see NewBackend).
	Backend agent.Backend
	// Logger receives every part's logs; nil discards them.
	Logger *slog.Logger
	// Version is logged at start.
	Version string
	// WrapStore, WrapBackend and WrapAdapter are given what the app built
	// and return what it uses instead, for the benchmarks' measurements;
	// nil uses it as it is.
	WrapStore   func(store.Store) store.Store
	WrapBackend func(agent.Backend) agent.Backend
	WrapAdapter func(platform.Adapter) platform.Adapter
	// Routes are served on the listener beside the operations endpoints,
	// by pattern (the benchmarks' own endpoints).
	Routes map[string]http.Handler
	// OnLeaseLost is called when a replica on a shared store could not
	// renew the gateway's lease in time: it must stop the process at
	// once; nil exits with status 3.
	OnLeaseLost func()
}

// App is a gateway, built and not yet running.
type App struct {
	// Runner is the gateway's pipeline.
	Runner *gateway.Runner
	// Metrics are what /metrics serves.
	Metrics *ops.Metrics

	cfg      *config.Config
	opts     Options
	log      *slog.Logger
	lock     *homelock.Lock
	store    store.Store
	ln       net.Listener
	handler  http.Handler
	adapters []platform.Adapter
	backend  string
	moder    agent.Moder // nil for a backend of one mode
	// holder names this replica among those sharing the store's leases;
	// holding is true while it holds the gateway's lease (always, for a
	// store of one process, or with nothing under that lease): until then
	// it stands by, from the start.
	holder  string
	holding atomic.Bool
	leaser  store.Leaser // nil for a store of one process
	// accounts are the platforms' further accounts (see account), each
	// with a runner of its own; their fields are under accountsMu.
	accounts   []*account
	accountsMu sync.Mutex
	// agent and runnerOptions are what an account's runner is built
	// with; Reload replaces the options.
	agent         agent.Backend
	runnerOptions atomic.Pointer[gateway.Options]
	// stopTracing flushes the traces and stops sending them, at exit.
	stopTracing func(context.Context) error
}

// Build locks $HERALD_HOME (see package homelock), opens the store
// ($HERALD_HOME/state.db) and the listener
// (HERALD_HTTP_ADDR), and builds the enabled platforms, the backend and the
// runner. What it opened is closed again when it fails.
func Build(ctx context.Context, cfg *config.Config, o Options) (_ *App, err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.OnLeaseLost == nil {
		o.OnLeaseLost = func() { os.Exit(3) }
	}
	a := &App{cfg: cfg, opts: o, log: log, Metrics: ops.NewMetrics(), holder: newHolder()}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("creating HERALD_HOME %s: %w", cfg.Home, err)
	}
	// One process per state directory, before anything in it is read.
	if a.lock, err = homelock.Acquire(cfg.Home); err != nil {
		return nil, err
	}
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.leaser, _ = db.(store.Leaser)
	a.store = wrap(o.WrapStore, store.Timed(db, func(op string, took time.Duration) {
		a.Metrics.StoreWrites.WithLabelValues(op).Observe(took.Seconds())
	}))
	if a.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HERALD_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}

	backend := o.Backend
	if backend == nil {
		backend = NewBackend(cfg, log)
	}
	backend = wrap(o.WrapBackend, backend)
	a.agent, a.backend = backend, backend.Name()
	a.moder, _ = backend.(agent.Moder)

	ropts := runnerOptions(cfg, log, a.Metrics)
	if ropts.Tracing, a.stopTracing, err = ops.Tracing(ctx, cfg.TracesURL(), o.Version, log); err != nil {
		return nil, err
	}
	a.runnerOptions.Store(&ropts)
	var site http.Handler
	for _, name := range slices.Sorted(maps.Keys(cfg.Platforms)) {
		settings := cfg.Platforms[name].(platform.Settings)
		if !settings.Enabled() {
			continue
		}
		adapter, err := settings.Adapter(a.deps(name))
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", name, err)
		}
		if h, ok := adapter.(platform.HTTPHandler); ok {
			site = h.Handler()
		}
		if homed, ok := settings.(platform.Homed); ok {
			if home, ok := homed.Home(); ok {
				ropts.Homes[name] = home
			}
		}
		a.adapters = append(a.adapters, wrap(o.WrapAdapter, adapter))
	}
	a.accounts = accountsOf(cfg)
	if len(a.adapters) == 0 && len(a.accounts) == 0 {
		return nil, errors.New("no platform is enabled: enable the web chat (WEBCHAT_ENABLED=true) or configure a platform")
	}
	// Without leases every account runs here, from the start; with them,
	// each is built when this replica takes it.
	for _, acct := range a.accounts {
		if a.leaser != nil {
			break
		}
		if err := a.build(acct); err != nil {
			return nil, fmt.Errorf("platform account %s: %w", acct.name, err)
		}
	}
	a.holding.Store(a.leaser == nil || len(a.adapters) == 0)
	a.Runner = gateway.New(ropts, backend, a.store, a.adapters...)

	mux := http.NewServeMux()
	for pattern, h := range o.Routes {
		mux.Handle(pattern, h)
	}
	if cfg.Delivery.Token != "" {
		api := a.forwarding(deliver.Handler(cfg.Delivery.Token, a.Runner, a.Metrics))
		mux.Handle(deliver.Path, api)
		mux.Handle(deliver.Path+"/", api)
	}
	if site != nil {
		site = a.forwarding(site)
	}
	mux.Handle("/", ops.Handler(a.readiness, a.Metrics, site))
	a.handler = mux
	return a, nil
}

// deps is what the adapter of the platform (or account) name is built
// with.
func (a *App) deps(name string) platform.Deps {
	return platform.Deps{
		Dir:      filepath.Join(a.cfg.Home, name),
		State:    a.store,
		Allows:   func(user string) bool { return a.Runner.Allows(name, user) }, // a.Runner is set in Build, before anything runs
		History:  gateway.Transcripts(a.store, a.runnerOpts().SessionKeys),
		HTTPAddr: a.ln.Addr().String(),
		Database: a.cfg.Database.URL,
		Logger:   a.log,
		// The web chat's event streams: bounded apart from other requests.
		MaxEventStreams:          a.cfg.HTTP.MaxEventStreams,
		MaxEventStreamsPerClient: a.cfg.HTTP.MaxEventStreamsPerClient,
	}
}

// runnerOpts are the runners' options as the configuration last set them.
func (a *App) runnerOpts() gateway.Options { return *a.runnerOptions.Load() }

// OpenStore opens the store the configuration names: the PostgreSQL
// database of HERALD_DATABASE_URL, else $HERALD_HOME/state.db.
func OpenStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Database.URL != "" {
		db, err := postgres.Open(ctx, cfg.Database.URL, postgres.Options{MaxConns: int32(cfg.Database.MaxConnections)})
		if err != nil {
			return nil, fmt.Errorf("HERALD_DATABASE_URL: %w", err)
		}
		return db, nil
	}
	return sqlite.Open(ctx, filepath.Join(cfg.Home, "state.db"))
}

// wrap applies a measuring wrapper, if there is one.
func wrap[T any](w func(T) T, v T) T {
	if w == nil {
		return v
	}
	return w(v)
}

// Addr is the address the listener took (HERALD_HTTP_ADDR may ask for port 0).
func (a *App) Addr() string { return a.ln.Addr().String() }

// Run serves the listener and relays messages until ctx ends, then shuts
// down as the runner does (letting running turns finish within the grace
// period) and closes the store and the listener.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	pruneCtx, stopPruning := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() { defer close(pruned); a.pruneRegularly(pruneCtx) }()
	defer func() { stopPruning(); <-pruned }()

	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- httpserve.Serve(serveCtx, a.ln, a.handler, httpLimits(a.cfg.HTTP, a.log)) }()
	a.log.Info("herald started", "version", a.opts.Version, "backend", a.backend, "http", "http://"+a.Addr(), "home", a.cfg.Home)
	for _, w := range a.cfg.Warnings {
		a.log.Warn(w)
	}
	if a.cfg.Delivery.Token != "" {
		a.log.Info("the delivery API is on", "url", "http://"+a.Addr()+deliver.Path)
	}
	for _, d := range a.cfg.Differences() {
		a.log.Info("differs from Hermes: " + d)
	}
	a.warnOrphanedTurns(ctx)
	var modeChecked sync.WaitGroup
	defer modeChecked.Wait()
	if a.moder != nil {
		// The backend logs the mode it finds; the first turn asks again.
		modeChecked.Go(func() {
			if _, err := a.moder.Mode(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("the agent server's mode is not known yet: it does not answer", "error", err)
			}
		})
	}
	accountsCtx, stopAccounts := context.WithCancel(ctx)
	accountsRan := make(chan struct{})
	go func() { defer close(accountsRan); a.runAccounts(accountsCtx) }()
	var runErr error
	if a.leaser != nil && len(a.adapters) > 0 {
		release, err := a.holdLease(ctx, a.leaser)
		switch {
		case err != nil:
			runErr = err
		case release != nil:
			runErr = a.Runner.Run(ctx)
			release()
		}
	} else {
		runErr = a.Runner.Run(ctx)
	}
	stopAccounts()
	<-accountsRan
	stopServing()
	if err := <-served; err != nil && runErr == nil {
		runErr = err
	}
	a.log.Info("herald stopped")
	return runErr
}

// warnOrphanedTurns says which unfinished turns no runner takes up: those
// of a platform (or account) no longer enabled. They stay journalled for
// when it is enabled again.
func (a *App) warnOrphanedTurns(ctx context.Context) {
	pending, err := a.store.PendingTurns(ctx)
	if err != nil {
		return // the runners read them too, and say so
	}
	enabled := map[string]bool{}
	for _, ad := range a.adapters {
		enabled[ad.Name()] = true
	}
	for _, acct := range a.accounts {
		enabled[acct.name] = true
	}
	left := map[string]int{}
	for _, turn := range pending {
		if name := turn.Inbound.Source.Platform; !enabled[name] {
			left[name]++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(left)) {
		a.log.Warn("unfinished turns of a platform that is not enabled are left journalled", "platform", name, "turns", left[name])
	}
}

// WaitReady returns once every platform is connected, or with ctx's error.
func (a *App) WaitReady(ctx context.Context) error {
	adapters := slices.Clone(a.adapters)
	a.accountsMu.Lock()
	for _, acct := range a.accounts {
		if acct.adapter != nil { // built by Build: the accounts of one process
			adapters = append(adapters, acct.adapter)
		}
	}
	a.accountsMu.Unlock()
	for _, ad := range adapters {
		select {
		case <-ad.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// tracesFlushTimeout bounds the wait for the collector at exit (our
// choice: a collector that is down must not hold the exit up).
const tracesFlushTimeout = 5 * time.Second

// close closes what Build opened.
func (a *App) close() {
	if a.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), tracesFlushTimeout)
		if err := a.stopTracing(ctx); err != nil {
			a.log.Warn("sending the last traces failed", "error", err)
		}
		cancel()
	}
	if a.ln != nil {
		a.ln.Close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error("closing the store", "error", err)
		}
	}
	a.lock.Release() // last: the store is closed
}

// httpLimits are the listener's bounds as the configuration sets them;
// the health checks are answered even over the connection caps.
func httpLimits(l config.HTTPLimits, log *slog.Logger) httpserve.Limits {
	return httpserve.Limits{
		MaxConnections: l.MaxConnections, MaxConnectionsPerClient: l.MaxConnectionsPerClient,
		ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
		Probes: []string{ops.HealthPath, ops.ReadyPath},
		Logger: log,
	}
}

// keepJournal is how long seen event ids and settled turns are kept: far
// longer than any platform redelivers a message.
const keepJournal = 30 * 24 * time.Hour

// pruneRegularly keeps the journal from growing forever, once at start and
// then daily, until ctx ends.
func (a *App) pruneRegularly(ctx context.Context) {
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		seen, err1 := a.store.PruneSeen(ctx, keepJournal)
		turns, err2 := a.store.PruneTurns(ctx, keepJournal)
		if err := errors.Join(err1, err2); err != nil && ctx.Err() == nil {
			a.log.Warn("pruning the journal failed", "error", err)
		} else if seen+turns > 0 {
			a.log.Info("pruned the journal", "events", seen, "turns", turns)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// NewBackend picks the backend the configuration asks for: the Hermes API
// server when a proxy URL is set, else the model server. It returns nil
// when neither is configured; config.Load with RequireBackend reports that.
func NewBackend(cfg *config.Config, log *slog.Logger) agent.Backend {
	switch cfg.Backend() {
	case "hermes":
		return hermes.New(hermes.Config{
			URL:            cfg.Proxy.URL,
			Key:            cfg.Proxy.Key,
			Model:          cfg.Proxy.Model,
			ConnectTimeout: cfg.ConnectTimeout,
			IdleTimeout:    cfg.IdleTimeout,
			Limits:         answerLimits(cfg),
			Logger:         log,
		})
	case "openai":
		return openai.New(openai.Config{
			BaseURL:        cfg.Agent.BaseURL,
			APIKey:         cfg.Agent.APIKey,
			Model:          cfg.Agent.Model,
			SystemPrompt:   cfg.Agent.SystemPrompt,
			ConnectTimeout: cfg.ConnectTimeout,
			IdleTimeout:    cfg.IdleTimeout,
			Limits:         answerLimits(cfg),
			Logger:         log,
		})
	}
	return nil
}

// answerLimits bound what the agent server can make Herald hold of one answer.
func answerLimits(cfg *config.Config) completions.Limits {
	return completions.Limits{MaxEventBytes: cfg.MaxEventBytes, MaxAnswerBytes: cfg.MaxAnswerBytes}
}

// runnerOptions are the runner's options as the configuration sets them.
func runnerOptions(cfg *config.Config, log *slog.Logger, metrics *ops.Metrics) gateway.Options {
	access := gateway.Access{
		All:       gateway.Allowlist{AllowAll: cfg.Access.AllowAll, Users: cfg.Access.Users},
		Platforms: map[string]gateway.Allowlist{},
	}
	pair := map[string]bool{}
	for name, p := range cfg.PlatformAccess {
		_, open := cfg.Platforms[name].(platform.OpenByDefault)
		switch {
		case p.AllowAll || len(p.Users) > 0 || len(p.GroupUsers) > 0 || len(p.GroupChats) > 0:
			access.Platforms[name] = gateway.Allowlist{AllowAll: p.AllowAll, Users: p.Users, GroupUsers: p.GroupUsers, GroupChats: p.GroupChats}
		case open:
			access.Platforms[name] = gateway.Allowlist{AllowAll: true}
		}
		pair[name] = cfg.PairsUnknownDMs(name)
	}
	o := gateway.Options{
		SessionKeys:    chat.SessionKeyOptions{GroupPerUser: cfg.GroupSessionsPerUser, ThreadPerUser: cfg.ThreadSessionsPerUser},
		BusyMode:       cfg.BusyInputMode,
		Access:         access,
		PairUnknownDMs: pair,
		Homes:          map[string]chat.Target{},
		DeliverAnyChat: cfg.Delivery.AllowAnyChat,
		ResetTriggers:  cfg.ResetTriggers,
		BusyAck:        cfg.BusyAck,
		SessionReset: gateway.SessionReset{
			Mode:   cfg.SessionResetMode(),
			Idle:   time.Duration(cfg.SessionReset.IdleMinutes) * time.Minute,
			AtHour: cfg.SessionReset.AtHour,
			Notify: cfg.SessionReset.Notify,
			Quiet:  cfg.SessionReset.Quiet,
		},
		Streaming: stream.Options{
			Enabled:         cfg.Streaming.Enabled,
			Transport:       cfg.Streaming.Transport,
			EditInterval:    cfg.Streaming.EditInterval,
			BufferThreshold: cfg.Streaming.BufferThreshold,
			Cursor:          cfg.Streaming.Cursor,
			Logger:          log,
		},
		PlatformStreaming:    cfg.PlatformStreaming,
		NoTyping:             cfg.NoTyping,
		QuietRestarts:        cfg.QuietRestarts,
		ToolProgress:         cfg.ToolProgress,
		PlatformToolProgress: cfg.PlatformToolProgress,
		KeepThinking:         cfg.KeepThinking,
		ShutdownGrace:        cfg.ShutdownGrace,
		AgentUnreadyAfter:    cfg.AgentUnreadyAfter,
		AgentCheckInterval:   cfg.AgentCheckInterval,
		Logger:               log,
		Metrics:              metrics,
	}
	forAccounts(&o, cfg)
	return o
}
