package memnet

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// HTTP works over the network inside a bubble, where a handler's sleep
// takes no real time; a closed or unknown address refuses connections.
func TestHTTPInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n Network
		url := n.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(time.Hour)
			io.WriteString(w, "late")
		}))
		client := n.Client()
		defer client.CloseIdleConnections()
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "late" || time.Since(start) != time.Hour {
			t.Errorf("got %q after %v, want \"late\" after exactly an hour of fake time", body, time.Since(start))
		}

		closed := n.Listen()
		closed.Close()
		for _, addr := range []string{closed.Addr().String(), "nowhere.memnet:80"} {
			if _, err := n.Dial(t.Context(), "tcp", addr); err == nil || !errors.As(err, new(*net.OpError)) {
				t.Errorf("dial %s: %v, want a refused connection", addr, err)
			}
		}
	})
}
