package main

import (
	"encoding/json"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/store"
)

// withStore opens the store the configuration names, as herald run does,
// for a command that works beside a running gateway: it takes no lock on
// HERALD_HOME (SQLite lets the two share the file; PostgreSQL is shared).
func withStore(cmd *cobra.Command, opts *options, do func(store.Store) error) error {
	cfg, err := config.Load(config.Options{File: opts.configFile})
	if err != nil {
		return err
	}
	st, err := app.OpenStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return do(st)
}

// listCmd is an admin command that lists rows: as aligned columns, or as
// one JSON array with --json. read returns the rows for JSON and what
// prints them as a table.
func listCmd(opts *options, use, short string, read func(*cobra.Command, store.Store) (rows any, table func(io.Writer), err error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, opts, func(st store.Store) error {
				rows, table, err := read(cmd, st)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(opts.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				}
				tw := tabwriter.NewWriter(opts.stdout, 0, 4, 2, ' ', 0)
				table(tw)
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON array, for scripts")
	return cmd
}

// dash is s, or "-" for an empty column.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
