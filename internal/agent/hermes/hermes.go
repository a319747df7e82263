// Package hermes is the proxy backend: it relays each turn to a Hermes API
// server (gateway proxy mode), which runs the agent and keeps the session.
package hermes

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
)

// SessionHeader carries the conversation's session id both ways.
const SessionHeader = "X-Hermes-Session-Id"

// Config configures the backend.
type Config struct {
	URL            string // the API server's base URL, without a trailing slash
	Key            string // bearer key; empty sends no Authorization header
	Model          string // default "hermes-agent"
	ConnectTimeout time.Duration
	IdleTimeout    time.Duration
	completions.Limits
	Logger *slog.Logger
	// HTTPClient sends the requests; nil means a client of the backend's
	// own, with ConnectTimeout.
	HTTPClient *http.Client
}

// Backend relays turns to a Hermes API server.
type Backend struct {
	client completions.Client
	base   string
	log    *slog.Logger
	runs   atomic.Int32 // runsUnknown, runsYes or runsNo: see usesRuns
	steers atomic.Bool  // the server steers running runs, as last checked
}

// New returns a backend for the API server at cfg.URL.
func New(cfg Config) *Backend {
	if cfg.Model == "" {
		cfg.Model = "hermes-agent"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = completions.NewHTTPClient(cfg.ConnectTimeout)
	}
	return &Backend{
		client: completions.Client{
			Endpoint:    strings.TrimRight(cfg.URL, "/") + "/v1/chat/completions",
			Key:         cfg.Key,
			Model:       cfg.Model,
			Server:      "Proxy",
			HTTP:        client,
			IdleTimeout: cfg.IdleTimeout,
			Limits:      cfg.Limits,
			Logger:      log,
		},
		base: strings.TrimRight(cfg.URL, "/"),
		log:  log,
	}
}

// Ping implements agent.Pinger with the API server's /health.
func (b *Backend) Ping(ctx context.Context) error {
	return b.client.Ping(ctx, b.base+"/health")
}

// Probe implements agent.Prober: /health answers without a key on a
// Hermes API server; /v1/models needs the key, so a wrong one shows there.
func (b *Backend) Probe(ctx context.Context) []agent.Probe {
	var probes []agent.Probe
	for _, path := range []string{"/health", "/v1/models"} {
		probes = append(probes, agent.Probe{Endpoint: b.base + path, Err: b.client.Ping(ctx, b.base+path)})
	}
	return probes
}

// Name implements agent.Backend.
func (b *Backend) Name() string { return "hermes" }

// Run implements agent.Backend. Where the server serves runs, the turn is
// a run (see runs.go; a message with images goes through chat completions,
// whose content parts carry them). No system message is sent (who is
// speaking and where go in the X-Hermes-* headers); the history is sent as
// well, for servers that keep no sessions.
// When the server answers with a different session id (it rotates ids after
// compressing the context), the Result carries the new one.
func (b *Backend) Run(ctx context.Context, turn agent.Turn, emit func(agent.Event)) agent.Result {
	if turn.RunID != "" || (len(turn.Images) == 0 && b.usesRuns(ctx)) {
		if res, ran := b.runTurn(ctx, turn, emit); ran {
			return res
		}
	}
	res, header := b.client.Run(ctx, completions.Call{
		Turn:   turn,
		Header: identityHeaders(turn),
	}, emit)
	res.SessionID = b.adoptSession(turn, header.Get(SessionHeader))
	return res
}

// adoptSession is the session id to keep after the server named id for
// the turn's session: id where the server rotated it (after compressing
// the context), else the turn's own.
func (b *Backend) adoptSession(turn agent.Turn, id string) string {
	switch id = strings.TrimSpace(id); {
	case id == "" || id == turn.SessionID:
	case id != headerValue(id):
		// Kept, it would be sent back changed: another session.
		b.log.Warn("agent server answered with a session id that cannot be sent back; keeping the session", "session", turn.SessionID, "bytes", len(id))
	default:
		b.log.Info("agent server rotated the session id", "from", turn.SessionID, "to", id)
		return id
	}
	return turn.SessionID
}

// identityHeaders tells the agent who is speaking and where. Each value
// is made valid for HTTP whatever the platform gave (see headerValue); a
// value with nothing left is not sent.
func identityHeaders(turn agent.Turn) http.Header {
	h := http.Header{}
	set := func(name, value string) {
		if v := headerValue(value); v != "" {
			h.Set(name, v)
		}
	}
	src := turn.Source
	set(SessionHeader, turn.SessionID)
	set("X-Hermes-User-Id", src.UserID)
	set("X-Hermes-User-Name", src.UserName)
	set("X-Hermes-Chat-Id", src.ChatID)
	set("X-Hermes-Chat-Name", src.ChatName)
	set("X-Hermes-Chat-Type", string(src.ChatType))
	set("X-Hermes-Thread-Id", src.ThreadID)
	return h
}

// maxHeaderValue bounds one identity header value, in bytes: our choice,
// far above any platform's name or id, and well under the 8190 bytes that
// aiohttp (the Hermes API server's HTTP library) accepts in one header
// field before it refuses the whole request.
const maxHeaderValue = 1024

// headerValue makes s a field value that HTTP allows (RFC 9110, section
// 5.5) and Go's client sends: control characters are removed (CR, LF and
// NUL could smuggle headers; Go and aiohttp refuse the other C0 controls
// and DEL; the C1 controls are invisible), a tab becomes a space, white
// space at either end is trimmed, and the value is cut to maxHeaderValue
// bytes on a character boundary. Other text is sent as UTF-8, unencoded,
// which RFC 9110 allows as obs-text: the Hermes API server reads these
// headers as they come, and aiohttp decodes a header's bytes as UTF-8, so
// "Zoë" arrives as "Zoë" where percent-encoding would show the agent
// "Zo%C3%AB". Invalid UTF-8 becomes U+FFFD.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) > maxHeaderValue {
		cut := maxHeaderValue
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}
