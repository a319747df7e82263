package hermes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/agent/completions"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/sim"
	"github.com/herald-chat/herald/internal/sse"
)

// simulator runs the Hermes API simulator with opts on a real server.
func simulator(t *testing.T, opts sim.Options) *httptest.Server {
	t.Helper()
	opts.Key = "k"
	opts.Logger = slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(sim.New(opts))
	t.Cleanup(srv.Close)
	return srv
}

func limited(url string, maxEvent int) *Backend {
	return New(Config{URL: url, Key: "k", ConnectTimeout: 5 * time.Second, IdleTimeout: time.Minute, Limits: completions.Limits{MaxEventBytes: maxEvent}})
}

// Data lines without the blank line that ends their event fail the turn
// at the bound, keeping what was streamed before, with an error that names
// the setting.
func TestEndlessEventFailsTheTurn(t *testing.T) {
	srv := simulator(t, sim.Options{EndlessEventBytes: 3 << 20})
	res, _ := run(t, limited(srv.URL, 1<<20), turn())
	if !errors.Is(res.Err, agent.ErrTooLarge) || !errors.Is(res.Err, sse.ErrEventTooLarge) {
		t.Fatalf("err = %v, want an event too large", res.Err)
	}
	if msg := res.Err.Error(); !strings.Contains(msg, "gateway.max_event_bytes") || !strings.Contains(msg, "1048576") {
		t.Errorf("err = %q, want the limit and the setting named", msg)
	}
	if !strings.HasPrefix(res.FinalResponse, "[Hermes \n\n⚠️ The answer was interrupted: ") || res.Text != "[Hermes " {
		t.Errorf("final = %q, want the first token and the interrupted notice", res.FinalResponse)
	}
}

// A JSON answer is one piece, bounded like an event.
func TestHugeJSONAnswerFailsTheTurn(t *testing.T) {
	srv := simulator(t, sim.Options{JSONAnswerBytes: 2 << 20})
	res, _ := run(t, limited(srv.URL, 1<<20), turn())
	if !errors.Is(res.Err, agent.ErrTooLarge) || !strings.Contains(res.Err.Error(), "gateway.max_event_bytes") {
		t.Fatalf("err = %v, want the JSON answer too large, naming the setting", res.Err)
	}
	if !strings.HasPrefix(res.FinalResponse, "⚠️ The answer was interrupted: ") {
		t.Errorf("final = %q", res.FinalResponse)
	}

	srv = simulator(t, sim.Options{JSONAnswerBytes: 1000})
	res, _ = run(t, limited(srv.URL, 1<<20), turn())
	if res.Err != nil || len(res.Text) != 1000 {
		t.Errorf("a JSON answer within the bound: err = %v, %d bytes of text; want 1000", res.Err, len(res.Text))
	}
}

// A 200 web page (a login portal, a misrouted proxy) is no answer, and the
// user is told so rather than that a connection closed.
func TestWebPageIsNotAStream(t *testing.T) {
	srv := simulator(t, sim.Options{HTMLAnswer: true})
	res, _ := run(t, limited(srv.URL, 0), turn())
	if !errors.Is(res.Err, agent.ErrNotAStream) {
		t.Fatalf("err = %v, want ErrNotAStream", res.Err)
	}
	if !strings.Contains(res.FinalResponse, "the agent server did not answer with a stream") ||
		strings.Contains(res.FinalResponse, "closed") || strings.Contains(res.FinalResponse, "<") {
		t.Errorf("final = %q", res.FinalResponse)
	}

	// Another type holding no event at all was not a stream either.
	plain, _ := upstream(t, 200, http.Header{"Content-Type": {"text/plain"}}, "It works!\n")
	res, _ = run(t, newBackend(plain.URL, ""), turn())
	if !errors.Is(res.Err, agent.ErrNotAStream) {
		t.Errorf("text/plain without events: err = %v, want ErrNotAStream", res.Err)
	}
	// An event stream that closes early did close early.
	empty, _ := upstream(t, 200, nil, ": keepalive\n\n")
	res, _ = run(t, newBackend(empty.URL, ""), turn())
	if !errors.Is(res.Err, agent.ErrIncomplete) {
		t.Errorf("empty event stream: err = %v, want ErrIncomplete", res.Err)
	}
}

// recorder is a server on another port that records what reaches it.
type recorder struct {
	mu   sync.Mutex
	seen []string // "METHOD path", the key, the identity headers and the body
}

func (rec *recorder) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Method+" "+r.URL.Path, "Authorization: "+r.Header.Get("Authorization"),
			"X-Hermes-User-Id: "+r.Header.Get("X-Hermes-User-Id"), "body: "+string(body))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, okStream)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (rec *recorder) got() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.seen
}

// A redirect to another port of the same host is not followed: the key,
// the body and the identity headers go to the configured server only.
// This holds for a client passed in (which would follow it) and for Ping.
func TestRedirectIsNotFollowed(t *testing.T) {
	var rec recorder
	elsewhere := rec.start(t)
	srv := simulator(t, sim.Options{RedirectTo: elsewhere.URL})

	for name, b := range map[string]*Backend{
		"own client":    limited(srv.URL, 0),
		"client passed": New(Config{URL: srv.URL, Key: "k", IdleTimeout: time.Minute, HTTPClient: &http.Client{}}),
	} {
		res, _ := run(t, b, turn())
		want := "⚠️ Proxy error (307): Temporary Redirect to " + elsewhere.URL + "; redirects are not followed"
		if res.FinalResponse != want {
			t.Errorf("%s: final = %q, want %q", name, res.FinalResponse, want)
		}
		if err := b.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "307") {
			t.Errorf("%s: ping = %v, want the redirect status", name, err)
		}
	}
	if seen := rec.got(); len(seen) > 0 {
		t.Errorf("the other port received %q", seen)
	}
}

// Seed for item 5: a control character in a name (a Telegram display name
// can hold U+0001) made Go's client refuse every request.
func TestControlCharacterInNameStillSendsTheTurn(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	src := source()
	src.UserName = "Ann\x01 \x7fLee\u0085"
	src.ChatName = "\x1b[1mTeam\tRoom"
	res, _ := run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "s", Message: "hi", Source: src})
	if res.Err != nil || res.FinalResponse != "ok" {
		t.Fatalf("final = %q, err = %v; want the answer", res.FinalResponse, res.Err)
	}
	h := (<-seen).Header
	if got := h.Get("X-Hermes-User-Name"); got != "Ann Lee" {
		t.Errorf("X-Hermes-User-Name = %q, want %q", got, "Ann Lee")
	}
	if got := h.Get("X-Hermes-Chat-Name"); got != "[1mTeam Room" {
		t.Errorf("X-Hermes-Chat-Name = %q, want %q", got, "[1mTeam Room")
	}
}

// Names beyond ASCII are sent as UTF-8, which the Hermes API server (aiohttp)
// decodes as such.
func TestNonASCIINamesArriveAsUTF8(t *testing.T) {
	srv, seen := upstream(t, 200, nil, okStream)
	src := source()
	src.UserName, src.ChatName = "Zoë 😀", "Семья"
	run(t, newBackend(srv.URL, ""), agent.Turn{SessionID: "s", Message: "hi", Source: src})
	h := (<-seen).Header
	if h.Get("X-Hermes-User-Name") != "Zoë 😀" || h.Get("X-Hermes-Chat-Name") != "Семья" {
		t.Errorf("names arrived as %q and %q", h.Get("X-Hermes-User-Name"), h.Get("X-Hermes-Chat-Name"))
	}
}

// validFieldValue is RFC 9110's field-value (section 5.5): visible ASCII,
// obs-text (bytes 0x80-0xFF), and spaces or tabs between them.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != ' ' && c != '\t' && (c < 0x21 || c == 0x7f) {
			return false
		}
	}
	return strings.TrimLeft(v, " \t") == v && strings.TrimRight(v, " \t") == v
}

// Whatever a platform puts in a name or an id, every X-Hermes-* header is
// a valid field value that Go's client sends and its server reads back
// unchanged, and an ordinary name is sent as it is.
func FuzzIdentityHeaders(f *testing.F) {
	for _, s := range []string{"testuser", "Ann\x01", "evil\r\nX-Injected: 1\x00", "Zoë 😀", " pad ", "\xff\xfe", "\t", strings.Repeat("é", 700)} {
		f.Add(s, "!room:server.org")
	}
	var mu sync.Mutex
	var got http.Header
	srv := httptest.NewServer(beforeRuns(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
	}))
	defer srv.Close()

	f.Fuzz(func(t *testing.T, name, id string) {
		turn := agent.Turn{SessionID: id, Source: chat.Source{UserID: id, UserName: name, ChatID: id, ChatName: name, ChatType: chat.ChatType(name), ThreadID: id}}
		h := identityHeaders(turn)
		for k, vs := range h {
			v := vs[0]
			if !validFieldValue(v) || !utf8.ValidString(v) || len(v) > maxHeaderValue || v == "" {
				t.Fatalf("%s = %q: not a valid field value of at most %d bytes", k, v, maxHeaderValue)
			}
		}
		for in, out := range map[string]string{name: h.Get("X-Hermes-User-Name"), id: h.Get("X-Hermes-User-Id")} {
			if ordinary(in) && out != in {
				t.Fatalf("the ordinary value %q was sent as %q", in, out)
			}
		}

		req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
		req.Header = h
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("Go refused the headers %q: %v", h, err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		for k := range h {
			if got.Get(k) != h.Get(k) {
				t.Fatalf("%s arrived as %q, sent %q", k, got.Get(k), h.Get(k))
			}
		}
	})
}

// ordinary tells a value that needs no cleaning: valid UTF-8 without control
// characters or white space at either end, within the size bound.
func ordinary(s string) bool {
	if !utf8.ValidString(s) || len(s) > maxHeaderValue || strings.TrimSpace(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}
