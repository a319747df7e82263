package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/gateway"
	"github.com/herald-chat/herald/internal/ops"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/webchat"
	"github.com/herald-chat/herald/internal/store/sqlite"
	"github.com/herald-chat/herald/internal/wiring"
)

// shutdownGrace is how long a listener may take to close.
const shutdownGrace = 10 * time.Second

func newRunCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the gateway in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile, RequireBackend: true})
			if err != nil {
				return err
			}
			log := newLogger(opts.stderr, cfg.LogLevel)
			return runGateway(cmd.Context(), cfg, wiring.Backend(cfg, log), log, nil)
		},
	}
}

// runGateway opens the store, starts the enabled platforms and the HTTP
// listener, and relays until ctx ends. onListening, if set, is told the
// listener's address once it accepts connections.
func runGateway(ctx context.Context, cfg *config.Config, backend agent.Backend, log *slog.Logger, onListening func(addr string)) error {
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fmt.Errorf("creating HERALD_HOME %s: %w", cfg.Home, err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.Home, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	pruneCtx, stopPruning := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() { defer close(pruned); pruneRegularly(pruneCtx, st, log) }()
	defer func() { stopPruning(); <-pruned }()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HERALD_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()

	metrics := ops.NewMetrics()
	var runner *gateway.Runner
	var adapters []platform.Adapter
	var web *webchat.Adapter
	access := wiring.Access(cfg)
	if cfg.Webchat.Enabled {
		web, err = webchat.New(webchat.Options{
			Token:        cfg.Webchat.Token,
			RequireToken: !config.IsLoopback(ln.Addr().String()),
			History: func(ctx context.Context, src chat.Source) ([]chat.Message, error) {
				return runner.Transcript(ctx, src)
			},
			Logger: log,
		})
		if err != nil {
			return fmt.Errorf("web chat (WEBCHAT_TOKEN, HERALD_HTTP_ADDR): %w", err)
		}
		adapters = append(adapters, web)
		// The web chat is reachable only on this listener (and with the
		// token off loopback), so its users are allowed unless an
		// allowlist says otherwise.
		if _, listed := access.Platforms[webchat.Name]; !listed {
			access.Platforms[webchat.Name] = gateway.Allowlist{AllowAll: true}
		}
	}
	others, err := configuredPlatforms(cfg, st, log)
	if err != nil {
		return err
	}
	adapters = append(adapters, others...)
	if len(adapters) == 0 {
		return fmt.Errorf("no platform is enabled: enable the web chat (WEBCHAT_ENABLED=true) or configure a platform")
	}
	opts := wiring.RunnerOptions(cfg, log, metrics)
	opts.Access = access
	runner = gateway.New(opts, backend, st, adapters...)

	var app = ops.Handler(runner.Ready, metrics, nil)
	if web != nil {
		app = ops.Handler(runner.Ready, metrics, web.Handler())
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, ln, app) }()
	log.Info("herald started", "version", version, "backend", backend.Name(), "http", "http://"+ln.Addr().String(), "home", cfg.Home)
	if onListening != nil {
		onListening(ln.Addr().String())
	}

	runErr := runner.Run(ctx)
	stopServing()
	if err := <-served; err != nil && runErr == nil {
		runErr = err
	}
	log.Info("herald stopped")
	return runErr
}

// keepJournal is how long seen event ids and settled turns are kept: far
// longer than any platform redelivers a message.
const keepJournal = 30 * 24 * time.Hour

// pruneRegularly keeps the journal from growing forever, once at start and
// then daily, until ctx ends.
func pruneRegularly(ctx context.Context, st *sqlite.Store, log *slog.Logger) {
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		seen, err1 := st.PruneSeen(ctx, keepJournal)
		turns, err2 := st.PruneTurns(ctx, keepJournal)
		if err := errors.Join(err1, err2); err != nil && ctx.Err() == nil {
			log.Warn("pruning the journal failed", "error", err)
		} else if seen+turns > 0 {
			log.Info("pruned the journal", "events", seen, "turns", turns)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
