package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
)

func newCheckCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile, RequireBackend: true})
			if err != nil {
				return err
			}
			if err := printConfig(opts, cfg); err != nil {
				return err
			}
			return printMode(cmd.Context(), opts, cfg)
		},
	}
}

func printConfig(opts *options, cfg *config.Config) error {
	w := opts.stdout
	file := cfg.File
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		file += " (not found: defaults and environment only)"
	}
	fmt.Fprintf(w, "home:    %s\nconfig:  %s\nbackend: %s\n\n", cfg.Home, file, cfg.Backend())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, e := range cfg.Effective() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Key, shown(e), e.Origin)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range cfg.Differences() {
		fmt.Fprintf(w, "\ndiffers from Hermes: %s", d)
	}
	for _, warning := range cfg.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warning)
	}
	_, err := fmt.Fprintln(w, "\n\nconfiguration OK")
	return err
}

// shown masks secrets and passwords in URLs; a value is quoted so that
// leading or trailing spaces are visible.
func shown(e config.Effective) string {
	switch {
	case e.Value == "":
		return "(unset)"
	case e.Secret:
		return "******** (set)"
	}
	if u, err := url.Parse(e.Value); err == nil && u.User != nil {
		return fmt.Sprintf("%q", u.Redacted())
	}
	return fmt.Sprintf("%q", e.Value)
}

// printMode says how turns reach the agent server, asking it, where the
// backend has more than one way (the Hermes API server's runs, or chat
// completions). A server that does not answer is not a configuration
// error: the line says so.
func printMode(ctx context.Context, opts *options, cfg *config.Config) error {
	m, ok := app.NewBackend(cfg, slog.New(slog.DiscardHandler)).(agent.Moder)
	if !ok {
		return nil
	}
	mode, err := m.Mode(ctx)
	if err != nil {
		mode = "not known: the agent server does not answer (" + err.Error() + ")"
	}
	_, err = fmt.Fprintf(opts.stdout, "agent:   %s\n", mode)
	return err
}
