package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/app"
	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/store"
)

func newPairingCmd(opts *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pairing",
		Short: "Let in users who asked through a pairing code (unauthorized_dm_behavior: pair)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "approve CODE",
		Short: "Approve a pairing code: its user may talk to the agent from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile})
			if err != nil {
				return err
			}
			st, err := app.OpenStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := st.ApprovePairing(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no pending pairing code %q (codes expire after an hour)", args[0])
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(opts.stdout, "approved: %s user %s (%s)\n", p.Platform, p.UserID, p.UserName)
			return err
		},
	})
	return cmd
}
