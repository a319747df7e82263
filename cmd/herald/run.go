package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
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
	b.WriteString("Run the gateway in the foreground until SIGINT or SIGTERM. SIGHUP reads the configuration again:\n" +
		"the allowlists and how answers are shown change at once; the log names what waits for a restart.\n\n" +
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
			load := func() (*config.Config, error) {
				return config.Load(config.Options{File: opts.configFile, RequireBackend: true})
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			log := newLogger(opts.stderr, cfg.LogLevel, cfg.LogFormat)
			a, err := app.Build(cmd.Context(), cfg, app.Options{Logger: log, Version: version})
			if err != nil {
				return err
			}
			stop := reloadOnHangUp(cmd.Context(), a, load, log)
			defer stop()
			return a.Run(cmd.Context())
		},
	}
}

// reloadOnHangUp reads the configuration again on each SIGHUP and gives
// the running gateway what it can take (see app.Reload); a configuration
// with problems is refused whole, and the running settings stay. stop
// ends it.
func reloadOnHangUp(ctx context.Context, a *app.App, load func() (*config.Config, error), log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			cfg, err := load()
			if err != nil {
				log.Error("SIGHUP: the configuration has problems; the running settings stay", "error", err)
				continue
			}
			a.Reload(cfg)
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
