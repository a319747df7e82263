package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-chat/herald/internal/config"
)

func newHealthCmd(opts *options) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Ask the running gateway's /readyz: exit status 0 when it is ready (a container's health check)",
		Long: "health asks the /readyz of the gateway on this host (HERALD_HTTP_ADDR, on loopback when it listens on\n" +
			"every interface), prints its answer, and exits with status 0 when the gateway is ready, 1 when not or\n" +
			"when it does not answer. Container images without curl use it as their health check.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Options{File: opts.configFile})
			if err != nil {
				return err
			}
			url := cfg.LocalURL() + "/readyz"
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get(url)
			if err != nil {
				return fmt.Errorf("%s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			fmt.Fprintf(opts.stdout, "%s", body)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			var r struct{ Reason string }
			if json.Unmarshal(body, &r) != nil || r.Reason == "" {
				return fmt.Errorf("%s answered %s", url, resp.Status)
			}
			return errors.New("not ready: " + r.Reason)
		},
	}
}
