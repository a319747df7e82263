package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/store"
)

func newSessionsCmd(opts *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "The conversations Herald keeps and their agent sessions",
	}
	var platform string
	list := listCmd(opts, "list", "The conversations messages came from, last active first: platform, chat, session id",
		func(cmd *cobra.Command, st store.Store) (any, func(io.Writer), error) {
			list, err := st.Conversations(cmd.Context(), platform)
			if err != nil {
				return nil, nil, err
			}
			type row struct {
				Platform   string    `json:"platform"`
				ChatID     string    `json:"chat_id"`
				ThreadID   string    `json:"thread_id,omitempty"`
				ChatType   string    `json:"chat_type"`
				SessionKey string    `json:"session_key"`
				SessionID  string    `json:"session_id"`
				LastActive time.Time `json:"last_active"`
			}
			rows := make([]row, len(list))
			for i, c := range list {
				src := c.Source
				rows[i] = row{src.Platform, src.ChatID, src.ThreadID, string(src.ChatType), c.SessionKey, c.SessionID, c.SeenAt.UTC()}
			}
			return rows, func(w io.Writer) {
				fmt.Fprintln(w, "PLATFORM\tCHAT\tTHREAD\tTYPE\tSESSION\tLAST ACTIVE\tCONVERSATION")
				for _, r := range rows {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Platform, r.ChatID, dash(r.ThreadID), r.ChatType, dash(r.SessionID),
						r.LastActive.Format(time.RFC3339), r.SessionKey)
				}
			}, nil
		})
	list.Flags().StringVar(&platform, "platform", "", "only this platform's conversations (telegram, matrix, webchat, …)")
	cmd.AddCommand(list)
	return cmd
}

func newTurnsCmd(opts *options) *cobra.Command {
	var (
		pending, failed bool
		limit           int
	)
	cmd := listCmd(opts, "turns", "The last turns of the journal, newest first, with the error of each that failed; never what was written",
		func(cmd *cobra.Command, st store.Store) (any, func(io.Writer), error) {
			filter := store.AllTurns
			switch {
			case pending && failed:
				return nil, nil, fmt.Errorf("--pending and --failed: choose one")
			case pending:
				filter = store.PendingTurnsOnly
			case failed:
				filter = store.FailedTurnsOnly
			}
			turns, err := st.Turns(cmd.Context(), filter, limit)
			if err != nil {
				return nil, nil, err
			}
			type row struct {
				ID        int64     `json:"id"`
				CreatedAt time.Time `json:"created_at"`
				UpdatedAt time.Time `json:"updated_at"`
				Platform  string    `json:"platform"`
				ChatID    string    `json:"chat_id"`
				Status    string    `json:"status"`
				Shown     bool      `json:"shown"`
				Error     string    `json:"error,omitempty"`
			}
			rows := make([]row, len(turns))
			for i, t := range turns {
				src := t.Inbound.Source
				rows[i] = row{t.ID, t.CreatedAt.UTC(), t.UpdatedAt.UTC(), src.Platform, src.ChatID, string(t.Status), t.Shown, t.Error}
			}
			return rows, func(w io.Writer) {
				fmt.Fprintln(w, "TURN\tCREATED\tPLATFORM\tCHAT\tSTATUS\tERROR")
				for _, r := range rows {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedAt.Format(time.RFC3339), r.Platform, r.ChatID, r.Status, dash(r.Error))
				}
			}, nil
		})
	cmd.Flags().BoolVar(&pending, "pending", false, "only the turns not finished (received or running)")
	cmd.Flags().BoolVar(&failed, "failed", false, "only the turns that ended with an error (the agent server's, or their delivery's)")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many turns")
	return cmd
}
