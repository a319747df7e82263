package webchat

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/httpserve"
)

// Limits on what a page may post.
const (
	maxText = 32 << 10  // bytes of message text
	maxBody = 256 << 10 // bytes of request body: JSON escaping inflates text
)

// writeTimeout bounds each write to an event stream, so that a page that
// stopped reading cannot hold a goroutine forever. A stream sets it before
// each write in place of the listener's write timeout, which bounds a whole
// response; the keepalive writes at least every 15 s.
const writeTimeout = 30 * time.Second

// streamRetryAfter is the Retry-After of a 503 for too many event streams,
// in seconds (our choice): streams come free as pages close.
const streamRetryAfter = "5"

// csp allows only the page's own files: no inline script, no other sites,
// no framing. It also keeps images in answers from calling other servers.
const csp = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

//go:embed static
var static embed.FS

// Handler serves the page, its assets and its API. Mount it at "/": it
// answers only "/", "/assets/..." and "/api/...".
func (a *Adapter) Handler() http.Handler { return a.handler }

func (a *Adapter) routes() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	page, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	assets := http.FileServerFS(files)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		assets.ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /api/messages", a.postMessage)
	mux.HandleFunc("GET /api/events", a.streamEvents)
	mux.HandleFunc("GET /api/history", a.history)
	return a.guard(mux)
}

// guard sets the security headers and refuses requests from other sites,
// API requests without the token or from a client locked out for wrong
// ones, and (without a token) requests for a host name that is not local,
// which is how DNS rebinding would reach a loopback listener.
func (a *Adapter) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch {
		case !sameOrigin(r):
			writeError(w, http.StatusForbidden, "", "requests from other sites are refused")
		case a.opts.Token == "" && !localHost(r.Host):
			writeError(w, http.StatusForbidden, "", "without a token the web chat answers only on localhost or an IP address")
		case !strings.HasPrefix(r.URL.Path, "/api/") || a.authorized(w, r):
			next.ServeHTTP(w, r)
		}
	})
}

// sameOrigin reports whether a request comes from a page of this server:
// browsers send Origin on cross-site requests, and another site cannot
// make it name this host.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser, or a same-origin request without it
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p // behind a TLS-terminating proxy; browsers cannot set it cross-site
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// localHost reports whether host (with or without a port) is a localhost
// name or an IP address, which DNS rebinding cannot put in a Host header.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || net.ParseIP(host) != nil
}

// authorized checks an API request's bearer token (the scheme in any case,
// as RFC 6750 allows), answering 401 or 429 itself when it fails. A wrong
// token counts against the client (see lockout) and a right one trusts it
// for a while; a request without one does not count, as it guesses
// nothing: a page opened without its #token link retries without one.
func (a *Adapter) authorized(w http.ResponseWriter, r *http.Request) bool {
	if !a.token.Required() {
		return true
	}
	client, now := httpserve.Client(r.RemoteAddr), time.Now()
	if wait := a.failures.wait(client, now); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "", "too many wrong tokens from your address: try again later")
		return false
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		if a.token.Matches(strings.TrimSpace(got)) {
			a.failures.pass(client, now)
			return true
		}
		if a.failures.fail(client, now) {
			a.log.Warn("refusing a client for a while: too many wrong web chat tokens", "client", client, "for", failureWindow)
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	writeError(w, http.StatusUnauthorized, "", "a valid token is required: open the link that ends in #token=...")
	return false
}

// postRequest is the body of POST /api/messages.
type postRequest struct {
	Conversation string `json:"conversation"`
	Text         string `json:"text"`
	// ID is the page's idempotency id: a retry with the same id is one message.
	ID string `json:"id"`
}

// postMessage hands a page's message to the gateway and answers 202 only
// once the gateway journalled it, so that the page can tell the user to
// retry when it did not.
func (a *Adapter) postMessage(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "", "the body must be application/json")
		return
	}
	var req postRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		if _, big := errors.AsType[*http.MaxBytesError](err); big {
			writeError(w, http.StatusRequestEntityTooLarge, "", "the body is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "", "the body is not valid JSON")
		return
	}
	if field, msg := req.validate(); field != "" {
		writeError(w, http.StatusBadRequest, field, field+": "+msg)
		return
	}
	h, runCtx := a.running()
	if h == nil {
		writeError(w, http.StatusServiceUnavailable, "", "the web chat is not running")
		return
	}

	eventID := rand.Text()
	if req.ID != "" {
		// Scoped to the conversation, so that one page cannot suppress
		// another's message by reusing its id.
		eventID = req.Conversation + "/" + req.ID
	}
	post, added := a.remember(req.Conversation, eventID, req.Text)
	in := chat.Inbound{
		Source:    source(req.Conversation, post.id),
		Text:      req.Text,
		Mentioned: true,
		EventID:   eventID,
		Received:  time.Now(),
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(runCtx, cancel)()
	if err := h(ctx, in); err != nil {
		if added {
			a.forget(req.Conversation, post)
		}
		a.log.Warn("the gateway did not take a message", "conversation", req.Conversation, "error", err)
		writeError(w, http.StatusServiceUnavailable, "", "the message was not taken, try again: "+err.Error())
		return
	}
	a.taken(req.Conversation, post)
	a.log.Debug("message taken", "conversation", req.Conversation, "id", post.id, "bytes", len(req.Text))
	writeJSON(w, http.StatusAccepted, map[string]string{"id": post.id})
}

// validate returns the first bad field and what is wrong with it.
func (p postRequest) validate() (field, msg string) {
	switch {
	case !validID(p.Conversation):
		return "conversation", "must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -"
	case strings.TrimSpace(p.Text) == "":
		return "text", "must not be empty"
	case len(p.Text) > maxText:
		return "text", fmt.Sprintf("must be at most %d bytes", maxText)
	case p.ID != "" && !validID(p.ID):
		return "id", "must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -"
	}
	return "", ""
}

// validID reports whether s is 8 to 64 characters of [A-Za-z0-9_-]: long
// enough not to be guessed by chance, safe in logs and keys.
func validID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// conversationParam reads and checks the conversation query parameter,
// answering 400 when it is bad.
func conversationParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	conv := r.URL.Query().Get("conversation")
	if !validID(conv) {
		writeError(w, http.StatusBadRequest, "conversation", "conversation: must be 8 to 64 characters of A-Z, a-z, 0-9, _ and -")
		return "", false
	}
	return conv, true
}

// streamEvents sends what the gateway does in a conversation, after
// bringing the page up to date from the cursor it passes as "after".
func (a *Adapter) streamEvents(w http.ResponseWriter, r *http.Request) {
	conv, ok := conversationParam(w, r)
	if !ok {
		return
	}
	client := httpserve.Client(r.RemoteAddr)
	if err := a.streams.Take(client); err != nil {
		msg := "too many event streams are open: try again later"
		if errors.Is(err, httpserve.ErrClientFull) {
			msg = "too many event streams are open from your address: close other tabs of the chat, or try again later"
		}
		w.Header().Set("Retry-After", streamRetryAfter)
		writeError(w, http.StatusServiceUnavailable, "", msg)
		return
	}
	defer a.streams.Give(client)
	sub, replay, ok := a.subscribe(conv, r.URL.Query().Get("after"))
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "", "the web chat is not running")
		return
	}
	defer a.unsubscribe(conv, sub)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	// Events go straight into the response's own buffer and are flushed:
	// a page's stream keeps no buffer of its own, however long the answer.
	send := func(comment string, evs ...event) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		for _, ev := range evs {
			if writeEvent(w, ev) != nil {
				return false
			}
		}
		if comment != "" {
			if _, err := io.WriteString(w, ": "+comment+"\n\n"); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !send("ready", replay...) { // the comment flushes the headers even with nothing to replay
		return
	}

	keepalive := time.NewTicker(a.keepalive)
	defer keepalive.Stop()
	for {
		select {
		case ev, open := <-sub.ch:
			if !open {
				return // fell behind: the page reconnects and catches up
			}
			if !send("", ev) {
				return
			}
		case <-keepalive.C:
			if !send("keepalive") {
				return
			}
		case <-r.Context().Done():
			return
		case <-a.done:
			return
		}
	}
}

// writeEvent writes one event in the text/event-stream format.
func writeEvent(w io.Writer, ev event) error {
	head := "event: " + ev.name + "\ndata: "
	if ev.cursor != "" {
		head = "id: " + ev.cursor + "\n" + head
	}
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	if _, err := w.Write(ev.data); err != nil { // JSON: no raw newlines
		return err
	}
	_, err := io.WriteString(w, "\n\n")
	return err
}

// historyEntry is one message of GET /api/history.
type historyEntry struct {
	ID   string    `json:"id,omitempty"` // set for messages this process keeps
	Role chat.Role `json:"role"`
	Text string    `json:"text"`
	HTML string    `json:"html,omitempty"` // assistant messages, rendered
}

// history returns the conversation for a (re)loaded page: the saved
// transcript, then what this process holds that is not saved yet, and the
// cursor to open the event stream from.
func (a *Adapter) history(w http.ResponseWriter, r *http.Request) {
	conv, ok := conversationParam(w, r)
	if !ok {
		return
	}
	if h, _ := a.running(); h == nil {
		writeError(w, http.StatusServiceUnavailable, "", "the web chat is not running")
		return
	}
	var msgs []chat.Message
	if a.transcript != nil {
		var err error
		if msgs, err = a.transcript(r.Context(), source(conv, "")); err != nil {
			a.log.Warn("reading a web chat history failed", "conversation", conv, "error", err)
			writeError(w, http.StatusServiceUnavailable, "", "the conversation could not be read, try again")
			return
		}
	}
	out := []historyEntry{}
	saved := map[string]bool{} // what the transcript's answers and notices say
	for _, m := range msgs {
		switch {
		case m.Content == "":
		case m.Role == chat.User:
			out = append(out, historyEntry{Role: chat.User, Text: m.Content})
		case m.Role == chat.Assistant || m.Role == chat.Notice:
			// A notice is the gateway's own message (a restart cut an
			// answer short), kept so that a page that was not open then
			// shows it.
			out = append(out, historyEntry{Role: chat.Assistant, Text: m.Content, HTML: renderHTML(m.Content)})
			saved[m.Content] = true
		}
	}
	a.mu.Lock()
	if c := a.convs[conv]; c != nil {
		for _, it := range c.unsaved(msgs) {
			if !it.user && !c.answersKeptPost(it) && saved[it.text] {
				// It answers a post from before a restart, which this
				// process does not keep: once the transcript holds the
				// answer (or notice), it shows from there only.
				continue
			}
			e := historyEntry{ID: it.id, Role: chat.Assistant, Text: it.text, HTML: it.html}
			if it.user {
				e.Role, e.HTML = chat.User, ""
			}
			out = append(out, e)
		}
	}
	cursor := a.cursor(a.seq)
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "cursor": cursor})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}, with "field" naming the bad field of
// a 400.
func writeError(w http.ResponseWriter, status int, field, msg string) {
	body := map[string]string{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, body)
}
