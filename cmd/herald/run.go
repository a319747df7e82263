package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/ops"
)

// shutdownGrace is how long a listener may take to close.
const shutdownGrace = 10 * time.Second

func newRunCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the gateway in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGateway(cmd.Context(), opts)
		},
	}
}

func runGateway(ctx context.Context, opts *options) error {
	cfg, err := config.Load(config.Options{File: opts.configFile, RequireBackend: true})
	if err != nil {
		return err
	}
	log := newLogger(opts.stderr, cfg.LogLevel)
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return fmt.Errorf("creating HERALD_HOME: %w", err)
	}
	backend := newBackend(cfg, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HERALD_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	var ready ops.Ready
	ready.Set(true) // no platform to wait for yet
	log.Info("herald started", "version", version, "backend", backend.Name(), "http", ln.Addr().String(), "home", cfg.Home)
	err = serve(ctx, ln, ops.Handler(&ready))
	log.Info("herald stopped")
	return err
}
