package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/agent/hermes"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/httpserve"
	"github.com/herald-chat/herald/internal/platform/webchat"
	"github.com/herald-chat/herald/internal/sim"
)

func newDemoCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Try Herald in a browser: the simulator and the gateway with its web chat, on loopback",
		Long: "demo starts the Hermes API simulator in-process and the gateway with the web chat\n" +
			"relaying to it, prints the web chat's URL and runs until Ctrl-C. Answers come from\n" +
			"the simulator, not from an agent. Settings (HERALD_HTTP_ADDR, streaming) are read as\n" +
			"for run; the agent server settings are replaced by the simulator. Its state (sessions,\n" +
			"transcripts) is kept apart from a real gateway's, in $HERALD_HOME/demo, always in SQLite.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile})
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), opts, cfg, func(addr string) {
				fmt.Fprintf(opts.stdout, "\nHerald demo: open http://%s/ in a browser (answers come from the simulator). Ctrl-C stops.\n\n", addr)
			})
		},
	}
}

// runDemo runs the demo until ctx ends; onListening gets the web chat's
// address once the gateway is built.
func runDemo(ctx context.Context, opts *options, cfg *config.Config, onListening func(addr string)) error {
	log := newLogger(opts.stderr, cfg.LogLevel, cfg.LogFormat)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("simulator listener: %w", err)
	}
	simulator := sim.New(sim.Options{
		AllowSessionWithoutKey: true,
		FirstTokenDelay:        400 * time.Millisecond,
		TokensPerSecond:        25,
		AnswerTokens:           3 * sim.SentenceWords, // three whole sentences
		ToolProgress:           true,
		Logger:                 log,
	})
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- httpserve.Serve(simCtx, ln, simulator, httpserve.Limits{}) }()
	defer func() { stopSim(); <-simDone }()

	cfg.Platforms[webchat.Name].(*webchat.Options).Serve = true
	// The demo's conversations are not a real gateway's: a state of their
	// own, beside it, and never in a shared database.
	cfg.Home, cfg.Database.URL = filepath.Join(cfg.Home, "demo"), ""
	a, err := app.Build(ctx, cfg, app.Options{
		Backend: hermes.New(hermes.Config{
			URL:            "http://" + ln.Addr().String(),
			ConnectTimeout: cfg.ConnectTimeout,
			IdleTimeout:    cfg.IdleTimeout,
			Logger:         log,
		}),
		Logger:  log,
		Version: version,
	})
	if err != nil {
		return err
	}
	onListening(a.Addr())
	return a.Run(ctx)
}
