package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client posts deliveries to a Herald: herald deliver, and any Go program
// on the agent's side.
type Client struct {
	// URL is Herald's base URL, such as http://127.0.0.1:8643.
	URL   string
	Token string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Deliver asks Herald to deliver a message and returns the delivery as it
// stands once journalled.
func (c *Client) Deliver(ctx context.Context, req Request) (Status, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Status{}, err
	}
	return c.do(ctx, http.MethodPost, Path, bytes.NewReader(body))
}

// State returns a delivery as it stands.
func (c *Client) State(ctx context.Context, id string) (Status, error) {
	return c.do(ctx, http.MethodGet, Path+"/"+id, nil)
}

// do makes one request and reads its answer: a Status, or an Error whose
// message it returns.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (Status, error) {
	url := strings.TrimSuffix(c.URL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return Status{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("reaching Herald at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Status{}, fmt.Errorf("reading Herald's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return Status{}, fmt.Errorf("%s (HTTP %d)", e.Error.Message, resp.StatusCode)
		}
		return Status{}, fmt.Errorf("%s %s answered HTTP %d (is %s Herald's address, with the delivery API on?)", method, url, resp.StatusCode, c.URL)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return Status{}, fmt.Errorf("reading Herald's answer: %w", err)
	}
	return st, nil
}
