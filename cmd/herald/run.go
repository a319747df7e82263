package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
)

// mainSettings are what a first herald run needs: the agent server, where
// Herald keeps its state and listens, who may talk, and what turns each
// platform on. run --help lists them with the registry's descriptions.
var mainSettings = []string{
	"GATEWAY_PROXY_URL", "GATEWAY_PROXY_KEY", "HERALD_AGENT_BASE_URL", "HERALD_AGENT_MODEL",
	"HERALD_HOME", "HERALD_HTTP_ADDR", "GATEWAY_ALLOWED_USERS",
	"WEBCHAT_ENABLED", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
	"MATRIX_HOMESERVER", "MATRIX_ACCESS_TOKEN",
}

// runHelp is run's long help: what it does and its main settings.
func runHelp() string {
	var b strings.Builder
	b.WriteString("Run the gateway in the foreground until SIGINT or SIGTERM.\n\n" +
		"Main settings (environment variables; also read from $HERALD_HOME/.env, and as keys of config.yaml):\n\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, name := range mainSettings {
		v, ok := config.Lookup(name)
		if !ok {
			panic("herald run --help names " + name + ", which is not a setting")
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, firstClause(v.Description))
	}
	tw.Flush()
	b.WriteString("\nEvery setting: herald env. The effective values: herald check. What is wrong: herald doctor.\n" +
		"To try Herald without an agent server: herald demo.")
	return b.String()
}

// firstClause is a description up to its first semicolon, short enough
// for a line of help.
func firstClause(description string) string {
	clause, _, _ := strings.Cut(description, "; ")
	return clause
}

func newRunCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the gateway in the foreground",
		Long:  runHelp(),
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
