package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-chat/herald/internal/chat"
)

// ErrTooLarge says an image is over the platform's size cap.
var ErrTooLarge = errors.New("it is larger than the limit")

// FetchImage downloads an image a user sent with req, reading at most
// limit bytes, as an attachment named name; declared is the type the
// platform stated, used when the bytes do not tell. A web page in place of
// the image (what Slack serves a request without the right token) is an
// error. Errors never quote the URL: its query may sign the download.
func FetchImage(ctx context.Context, client *http.Client, req *http.Request, limit int64, name, declared string) (chat.Attachment, error) {
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return chat.Attachment{}, fmt.Errorf("downloading: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return chat.Attachment{}, fmt.Errorf("downloading: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("downloading: %w", err)
	}
	if int64(len(data)) > limit {
		return chat.Attachment{}, ErrTooLarge
	}
	mime := declared
	switch detected := http.DetectContentType(data); {
	case strings.HasPrefix(detected, "image/"):
		mime = detected
	case strings.HasPrefix(detected, "text/html"):
		return chat.Attachment{}, errors.New("downloading: the server answered with a web page, not the image")
	}
	return chat.Attachment{Kind: "image", MIMEType: mime, Name: name, Data: data}, nil
}

// WebsocketDialer dials websockets the way client dials HTTP: through its
// transport's dialer (a test's in-memory network), proxy and TLS settings,
// else the proxy of the environment, as net/http's.
func WebsocketDialer(client *http.Client, handshake time.Duration) *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.HandshakeTimeout = handshake
	if tr, ok := client.Transport.(*http.Transport); ok {
		d.NetDialContext, d.Proxy, d.TLSClientConfig = tr.DialContext, tr.Proxy, tr.TLSClientConfig
	}
	return &d
}

// Transport is a new HTTP transport for a platform's requests, through
// proxy when it is set (a URL config.Proxy accepted).
func Transport(proxy string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, err
		}
		t.Proxy = http.ProxyURL(u)
	}
	return t, nil
}
