package app

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// holderState names the store state where the replica holding the
// gateway's lease says where it listens (config's ReplicaURL).
const holderState = "gateway/holder_url"

// forwardedHeader marks a request one replica forwarded to another: it is
// never forwarded again.
const forwardedHeader = "X-Herald-Forwarded"

// forwarding serves h's requests while this replica holds the lease, and
// forwards them to the holder while it stands by, so that any replica
// behind a load balancer serves the web chat and the delivery API: a page
// on a replica standing by talks to the holder through it, its event
// stream included.
func (a *App) forwarding(h http.Handler) http.Handler {
	if a.leaser == nil {
		return h
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			target, _ := r.In.Context().Value(holderKey{}).(*url.URL)
			r.SetURL(target)
			r.Out.Host = r.In.Host // the page's origin checks see the address it uses
			r.SetXForwarded()
			r.Out.Header.Set(forwardedHeader, "1")
		},
		FlushInterval: -1, // event streams go through as they are written
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.log.Warn("forwarding a request to the replica holding the lease failed", "path", r.URL.Path, "error", err)
			http.Error(w, "the replica holding the gateway's lease does not answer; try again", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.holding.Load() {
			h.ServeHTTP(w, r)
			return
		}
		target := a.holderURL(r.Context())
		if target == nil || r.Header.Get(forwardedHeader) != "" {
			http.Error(w, errStandingBy.Error()+"; no replica to forward to", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), holderKey{}, target)))
	})
}

// holderKey carries the holder's URL to the proxy's Rewrite.
type holderKey struct{}

// holderURL is where the holder of the lease listens, as it said; nil when
// unknown or when it is this replica's own URL (a stale record).
func (a *App) holderURL(ctx context.Context) *url.URL {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, ok, err := a.store.State(ctx, holderState)
	if err != nil || !ok || v == a.cfg.ReplicaURL() {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil
	}
	return u
}
