package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
)

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
			return runGateway(cmd.Context(), cfg, app.Options{Logger: newLogger(opts.stderr, cfg.LogLevel)})
		},
	}
}

// runGateway builds the gateway and runs it until ctx ends.
func runGateway(ctx context.Context, cfg *config.Config, o app.Options) error {
	o.Version = version
	a, err := app.Build(ctx, cfg, o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
