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
	"github.com/herald-chat/herald/internal/platform"
)

func newCheckCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings, secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile, RequireBackend: true})
			var problems *config.Error
			if errors.As(err, &problems) && cfg != nil {
				// The settings as far as they were read, then what is wrong.
				if err := printSettings(opts, cfg); err != nil {
					return err
				}
				fmt.Fprintln(opts.stdout)
				return err
			}
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
	if err := printSettings(opts, cfg); err != nil {
		return err
	}
	w := opts.stdout
	for _, d := range cfg.Differences() {
		fmt.Fprintf(w, "\ndiffers from Hermes: %s", d)
	}
	for _, warning := range cfg.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warning)
	}
	_, err := fmt.Fprintln(w, "\n\nconfiguration OK")
	return err
}

// printSettings prints where the configuration comes from and every
// setting's effective value (normalised, defaults applied) and origin.
func printSettings(opts *options, cfg *config.Config) error {
	w := opts.stdout
	file := cfg.File
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		file += " (not found: defaults and environment only)"
	}
	fmt.Fprintf(w, "home:    %s\nconfig:  %s\nbackend: %s\n\n", cfg.Home, file, cfg.Backend())
	open := openPlatforms(cfg)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tFROM")
	for _, e := range cfg.Effective() {
		value := shown(e)
		if open[e.Key] {
			value = `"true" (no allowlist: anyone who reaches it)`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Key, value, e.Origin)
	}
	return tw.Flush()
}

// openPlatforms are the allow_all_users keys of the platforms open to
// everyone because no allowlist names anyone (platform.OpenByDefault):
// the gateway lets everyone in there, whatever the key says.
func openPlatforms(cfg *config.Config) map[string]bool {
	open := map[string]bool{}
	for name, section := range cfg.Platforms {
		allow := cfg.PlatformAccess[name]
		if _, ok := section.(platform.OpenByDefault); ok && !allow.AllowAll && len(allow.Users) == 0 {
			open["platforms."+name+".allow_all_users"] = true
		}
	}
	return open
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
