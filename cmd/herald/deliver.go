package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/config"
	"github.com/herald-chat/herald/internal/deliver"
)

// deliverPoll is how often --wait asks how a delivery stands.
const deliverPoll = 500 * time.Millisecond

func newDeliverCmd(opts *options) *cobra.Command {
	var (
		req  deliver.Request
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deliver --target TARGET [TEXT | -]",
		Short: "Send a message through a running Herald's delivery API (for cron jobs and scripts on any host)",
		Long: `Send a message to chats through a running Herald, as the agent's scheduled jobs do.
The text is markdown; without TEXT, or with -, it is read from standard input.
TARGET is home, all, a platform (its home channel), <platform>:<chat>[:<thread>],
origin:<session id>, or several of these separated by commas.
HERALD_DELIVERY_TOKEN must be set as on the gateway; HERALD_DELIVERY_URL says
where Herald listens when it is not this host's http.addr.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile})
			if err != nil {
				return err
			}
			if cfg.Delivery.Token == "" {
				return errors.New("HERALD_DELIVERY_TOKEN is not set: give it the gateway's delivery token")
			}
			if req.Text, err = deliverText(args, cmd.InOrStdin()); err != nil {
				return err
			}
			c := &deliver.Client{URL: cfg.DeliveryURL(), Token: cfg.Delivery.Token}
			st, err := c.Deliver(cmd.Context(), req)
			if err != nil {
				return err
			}
			if wait > 0 {
				ctx, cancel := context.WithTimeout(cmd.Context(), wait)
				defer cancel()
				for st.State == "queued" {
					select {
					case <-ctx.Done():
						printDelivery(opts, st)
						return fmt.Errorf("delivery %s is still queued after %s", st.ID, wait)
					case <-time.After(deliverPoll):
					}
					if st, err = c.State(ctx, st.ID); err != nil {
						return err
					}
				}
			}
			printDelivery(opts, st)
			if st.State == "failed" || st.State == "uncertain" {
				return fmt.Errorf("delivery %s %s", st.ID, st.State)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Target, "target", "", "where to deliver: home, all, <platform>, <platform>:<chat>[:<thread>], origin:<session id>")
	cmd.Flags().StringVar(&req.IdempotencyKey, "key", "", "idempotency key: the same key never delivers twice (default: a new one)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until the message is sent, and fail if it is not")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

// deliverText is the text to deliver: the arguments, or standard input
// when there are none or the one argument is "-".
func deliverText(args []string, stdin io.Reader) (string, error) {
	if len(args) > 0 && !(len(args) == 1 && args[0] == "-") {
		return strings.Join(args, " "), nil
	}
	data, err := io.ReadAll(io.LimitReader(stdin, deliver.MaxText+1))
	if err != nil {
		return "", fmt.Errorf("reading the text from standard input: %w", err)
	}
	return string(data), nil
}

// printDelivery writes a line for the delivery and one for each chat.
func printDelivery(opts *options, st deliver.Status) {
	fmt.Fprintf(opts.stdout, "delivery %s (%s): %s\n", st.ID, st.IdempotencyKey, st.State)
	for _, s := range st.Sends {
		where := s.Platform + ":" + s.Chat
		if s.Thread != "" {
			where += ":" + s.Thread
		}
		line := "  " + where + " " + s.State
		if s.Error != "" {
			line += ": " + s.Error
		}
		fmt.Fprintln(opts.stdout, line)
	}
}
