// Command herald is a chat gateway for AI agents: it connects chat platforms
// to an agent server over the Hermes API and streams the answers back.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
}

// options are the flags every subcommand shares.
type options struct {
	configFile string
	stdout     io.Writer
	stderr     io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	opts := &options{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "herald",
		Short:         "A chat gateway for AI agents",
		Long:          "Herald connects chat platforms to an agent server over the Hermes API and streams the answers back into the chat.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Version = version
	root.SetVersionTemplate(versionLine() + "\n")
	root.PersistentFlags().StringVar(&opts.configFile, "config", "", "config.yaml to read instead of $HERALD_HOME/config.yaml")
	root.AddCommand(
		newRunCmd(opts),
		newDemoCmd(opts),
		newPairingCmd(opts),
		newSessionsCmd(opts),
		newTurnsCmd(opts),
		newDeliverCmd(opts),
		newSimCmd(opts),
		newEnvCmd(opts),
		newCheckCmd(opts),
		newDoctorCmd(opts),
		newHealthCmd(opts),
		newVersionCmd(opts),
	)
	return root
}

// newLogger logs to w from the given level, as text lines or, with format
// "json", one JSON object a line.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
