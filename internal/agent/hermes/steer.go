package hermes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
)

// Steer implements agent.Steerer with POST /v1/runs/{id}/steer: the agent
// reads the text after its next tool call. A server that steers no runs,
// or a run that is no longer running (404, 409), is agent.ErrNotSteered.
func (b *Backend) Steer(ctx context.Context, runID, text string) error {
	if !b.steers.Load() {
		return fmt.Errorf("%w: the agent server does not steer runs", agent.ErrNotSteered)
	}
	body, err := json.Marshal(struct {
		Input string `json:"input"`
	}{text})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.runURL(runID)+"/steer", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Send(req)
	if err != nil {
		return completions.TransportError(ctx, ctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusConflict:
		return fmt.Errorf("%w: %w", agent.ErrNotSteered, b.client.StatusError(resp, resp.Body))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return b.client.StatusError(resp, resp.Body)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxStatusBody))
	return nil
}
