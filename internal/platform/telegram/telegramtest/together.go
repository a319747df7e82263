package telegramtest

import (
	"io"
	"log"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/herald-chat/herald/internal/platform/platformtest"
)

// Together serves several fake bots at one address, as api.telegram.org
// serves every bot: a request goes to the server whose token its path
// names (/bot<token>/… and /file/bot<token>/…); an unknown token gets the
// first server's answer to it (401 Unauthorized). For a gateway running
// several bots with one TELEGRAM_BASE_URL. The caller closes it.
func Together(servers ...*Server) *httptest.Server {
	byToken := map[string]*url.URL{}
	for _, s := range servers {
		byToken[s.Token], _ = url.Parse(s.URL)
	}
	first, _ := url.Parse(servers[0].URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		path := strings.TrimPrefix(r.In.URL.Path, "/file")
		token, _, _ := strings.Cut(strings.TrimPrefix(path, "/bot"), "/")
		target := byToken[token]
		if target == nil {
			target = first
		}
		r.SetURL(target)
	}, ErrorLog: log.New(io.Discard, "", 0)} // a long poll cut at shutdown is no news
	return platformtest.Serve(proxy, nil)
}
