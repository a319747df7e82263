package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/store"
)

func newPairingCmd(opts *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pairing",
		Short: "Let in users who asked through a pairing code (unauthorized_dm_behavior: pair), list them, or let them go",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "approve CODE",
		Short: "Approve a pairing code: its user may talk to the agent from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, opts, func(st store.Store) error {
				p, err := st.ApprovePairing(cmd.Context(), args[0])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no pending pairing code %q (codes expire after an hour)", args[0])
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(opts.stdout, "approved: %s user %s (%s)\n", p.Platform, p.UserID, p.UserName)
				return err
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke PLATFORM USER_ID",
		Short: "Take a paired user's approval back: the gateway refuses their next message",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, opts, func(st store.Store) error {
				err := st.RevokePairing(cmd.Context(), args[0], args[1])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("%s user %s was not paired (herald pairing list shows who is)", args[0], args[1])
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(opts.stdout, "revoked: %s user %s\n", args[0], args[1])
				return err
			})
		},
	})
	cmd.AddCommand(listCmd(opts, "list", "The pending pairing codes (newest first) and the users approved",
		func(cmd *cobra.Command, st store.Store) (any, func(io.Writer), error) {
			list, err := st.Pairings(cmd.Context())
			if err != nil {
				return nil, nil, err
			}
			type row struct {
				Platform  string    `json:"platform"`
				UserID    string    `json:"user_id"`
				UserName  string    `json:"user_name"`
				Approved  bool      `json:"approved"`
				Code      string    `json:"code,omitempty"`
				CreatedAt time.Time `json:"created_at"`
			}
			rows := make([]row, len(list))
			for i, p := range list {
				rows[i] = row{p.Platform, p.UserID, p.UserName, p.Approved, p.Code, p.CreatedAt.UTC()}
				if p.Approved {
					rows[i].Code = "" // spent: it lets nobody else in
				}
			}
			return rows, func(w io.Writer) {
				fmt.Fprintln(w, "PLATFORM\tUSER\tNAME\tSTATE\tCODE\tCREATED")
				for _, r := range rows {
					state := "approved"
					if !r.Approved {
						state = "pending, expires " + r.CreatedAt.Add(store.PairingTTL).Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Platform, r.UserID, r.UserName, state, dash(r.Code), r.CreatedAt.Format(time.RFC3339))
				}
			}, nil
		}))
	return cmd
}
