package crash

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The gateway's own HTTP endpoints, as the crash run, the faults and the
// soak use them.

// get fetches one of the gateway's endpoints: its status and body, or
// status 0 and the error while the gateway does not answer.
func get(c *http.Client, addr, path string) (int, string) {
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric is the line of the gateway's /metrics that starts with name, or
// "" without one.
func metric(c *http.Client, addr, name string) string {
	_, body := get(c, addr, "/metrics")
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, c *http.Client, addr string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, _ := get(c, addr, "/readyz"); code == http.StatusOK {
			return
		}
	}
	t.Fatal("the gateway did not become ready")
}

// post posts a web chat message, with an idempotency id made of its
// text, again and again until the gateway takes it (it may be killed and
// started again meanwhile) or within has passed.
func post(c *http.Client, addr, conv, text string, within time.Duration) error {
	body, _ := json.Marshal(map[string]string{"conversation": conv, "text": text, "id": "message-" + text})
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, rerr := c.Do(req)
		if rerr != nil {
			err = rerr
			continue
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			return nil
		}
		err = fmt.Errorf("%s: %s", resp.Status, answer)
	}
	return fmt.Errorf("the web chat did not take %s: %w", text, err)
}
