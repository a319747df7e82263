package webchat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config/configtest"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

func TestNameAndCaps(t *testing.T) {
	a, err := New(Options{}, platform.Deps{HTTPAddr: "127.0.0.1:8643"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "webchat" {
		t.Errorf("Name %q", a.Name())
	}
	want := platform.Caps{
		MaxLength: 64000, Count: format.Runes, Edit: true, Typing: true, Cursor: true,
		Format: format.HTML,
	}
	if got := a.Caps(chat.Target{}); !reflect.DeepEqual(got, want) {
		t.Errorf("Caps %+v, want %+v", got, want)
	}
}

// Off loopback the web chat needs a token of at least 16 characters, both
// when it is built and when the configuration is checked; the error says
// which setting and how long, and never shows the token. On loopback any
// token, or none, is the user's choice.
func TestTokenRequiredOffLoopback(t *testing.T) {
	open := platform.Deps{HTTPAddr: "0.0.0.0:8643"}
	if _, err := New(Options{Serve: true}, open); err == nil || !strings.Contains(err.Error(), "WEBCHAT_TOKEN") {
		t.Errorf("New off loopback without a token: %v, want WEBCHAT_TOKEN asked for", err)
	}
	const short = "fifteen-chars-x"
	_, err := New(Options{Serve: true, Token: short}, open)
	if err == nil || !strings.Contains(err.Error(), "WEBCHAT_TOKEN") || !strings.Contains(err.Error(), "platforms.webchat.token") ||
		!strings.Contains(err.Error(), "16 characters") || strings.Contains(err.Error(), short) {
		t.Errorf("New off loopback with a 15-character token: %v, want an error naming the setting and 16 characters, without the token", err)
	}
	if _, err := New(Options{Serve: true, Token: "sixteen-chars-xy"}, open); err != nil {
		t.Errorf("New with a 16-character token: %v", err)
	}
	if _, err := New(Options{Serve: true, Token: "x"}, platform.Deps{HTTPAddr: "127.0.0.1:8643"}); err != nil {
		t.Errorf("New on loopback with a short token: %v", err)
	}
	for env, want := range map[string]map[string]string{
		"without a token":    {"HERALD_HTTP_ADDR": "0.0.0.0:8643"},
		"with a short token": {"HERALD_HTTP_ADDR": "0.0.0.0:8643", "WEBCHAT_TOKEN": short},
	} {
		if _, err := configtest.Load(t, "", want); err == nil || !strings.Contains(err.Error(), "WEBCHAT_TOKEN") {
			t.Errorf("config off loopback %s: %v, want WEBCHAT_TOKEN asked for", env, err)
		}
	}
	for env, ok := range map[string]map[string]string{
		"with a token":             {"HERALD_HTTP_ADDR": "0.0.0.0:8643", "WEBCHAT_TOKEN": testToken},
		"turned off":               {"HERALD_HTTP_ADDR": "0.0.0.0:8643", "WEBCHAT_ENABLED": "false"},
		"on loopback":              {"HERALD_HTTP_ADDR": "127.0.0.1:8643"},
		"on loopback, short token": {"HERALD_HTTP_ADDR": "127.0.0.1:8643", "WEBCHAT_TOKEN": "x"},
	} {
		if _, err := configtest.Load(t, "", ok); err != nil {
			t.Errorf("%s: %v", env, err)
		}
	}
}

// recorder is a platform.Handler that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	ins []chat.Inbound
	err error
}

func (r *recorder) handle(_ context.Context, in chat.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.ins = append(r.ins, in)
	return nil
}

func (r *recorder) inbound() []chat.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chat.Inbound(nil), r.ins...)
}

func TestPostMessage(t *testing.T) {
	var rec recorder
	_, ts := start(t, Options{}, platform.Deps{}, rec.handle)

	before := time.Now()
	got := decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
		map[string]string{"conversation": conv, "text": "hello **there**", "id": "idem-0001"}), http.StatusAccepted)
	after := time.Now()
	ins := rec.inbound()
	if len(ins) != 1 {
		t.Fatalf("handler got %d messages, want 1", len(ins))
	}
	in := ins[0]
	if in.Received.Before(before) || in.Received.After(after) {
		t.Errorf("Received %v not between %v and %v", in.Received, before, after)
	}
	in.Received = time.Time{}
	want := chat.Inbound{
		Source: chat.Source{
			Platform: "webchat", ChatID: conv, ChatType: chat.DM,
			UserID: "webchat:" + conv, UserName: "web user", MessageID: got["id"],
		},
		Text:      "hello **there**",
		Mentioned: true,
		EventID:   conv + "/idem-0001",
	}
	if fmt.Sprint(in) != fmt.Sprint(want) {
		t.Errorf("inbound\n got %+v\nwant %+v", in, want)
	}
	if got["id"] == "" {
		t.Error("no message id in the answer")
	}

	// Without an idempotency id, the event id is made up, and differs.
	decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
		map[string]string{"conversation": conv, "text": "again"}), http.StatusAccepted)
	decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
		map[string]string{"conversation": conv, "text": "again"}), http.StatusAccepted)
	ins = rec.inbound()
	if len(ins) != 3 || ins[1].EventID == "" || ins[1].EventID == ins[2].EventID || ins[1].Source.MessageID == ins[2].Source.MessageID {
		t.Errorf("generated ids not unique: %+v", ins[1:])
	}
}

func TestPostRetryIsOneMessage(t *testing.T) {
	var rec recorder
	a, ts := start(t, Options{}, platform.Deps{}, rec.handle)
	body := map[string]string{"conversation": conv, "text": "once", "id": "idem-0002"}
	first := decode[map[string]string](t, request(t, ts, "POST", "/api/messages", body), http.StatusAccepted)
	second := decode[map[string]string](t, request(t, ts, "POST", "/api/messages", body), http.StatusAccepted)
	if first["id"] != second["id"] {
		t.Errorf("a retry got id %q, the first %q", second["id"], first["id"])
	}
	ins := rec.inbound()
	if len(ins) != 2 || ins[0].EventID != ins[1].EventID {
		t.Errorf("the gateway must see the same event id twice (it drops the second): %+v", ins)
	}
	a.mu.Lock()
	n := len(a.convs[conv].items)
	a.mu.Unlock()
	if n != 1 {
		t.Errorf("%d posts kept, want 1", n)
	}
}

func TestPostValidation(t *testing.T) {
	var rec recorder
	_, ts := start(t, Options{}, platform.Deps{}, rec.handle)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"short conversation", map[string]string{"conversation": "abc", "text": "x"}, 400, "conversation"},
		{"long conversation", map[string]string{"conversation": strings.Repeat("a", 65), "text": "x"}, 400, "conversation"},
		{"bad conversation", map[string]string{"conversation": "abcdefgh/..", "text": "x"}, 400, "conversation"},
		{"no conversation", map[string]string{"text": "x"}, 400, "conversation"},
		{"empty text", map[string]string{"conversation": conv, "text": ""}, 400, "text"},
		{"blank text", map[string]string{"conversation": conv, "text": " \n\t"}, 400, "text"},
		{"long text", map[string]string{"conversation": conv, "text": strings.Repeat("é", 16<<10+1)}, 400, "text"},
		{"bad id", map[string]string{"conversation": conv, "text": "x", "id": "no spaces allowed"}, 400, "id"},
		{"not JSON", "{", 400, ""},
		{"huge body", `{"text":"` + strings.Repeat("a", 300<<10) + `"}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := decode[apiError](t, request(t, ts, "POST", "/api/messages", c.body), c.status)
			if e.Field != c.field || e.Error == "" || (c.field != "" && !strings.HasPrefix(e.Error, c.field+":")) {
				t.Errorf("error %+v, want one naming field %q", e, c.field)
			}
		})
	}
	t.Run("text of exactly 32 KiB", func(t *testing.T) {
		decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
			map[string]string{"conversation": conv, "text": strings.Repeat("a", 32<<10)}), http.StatusAccepted)
	})
	t.Run("not JSON content", func(t *testing.T) {
		e := decode[apiError](t, request(t, ts, "POST", "/api/messages", nil, "Content-Type: text/plain"), http.StatusUnsupportedMediaType)
		if e.Error == "" {
			t.Error("no error message")
		}
	})
	if n := len(rec.inbound()); n != 1 {
		t.Errorf("the handler got %d messages, want only the valid one", n)
	}
}

func TestPostHandlerFails(t *testing.T) {
	rec := recorder{err: errors.New("journal: disk full")}
	a, ts := start(t, Options{}, platform.Deps{}, rec.handle)
	e := decode[apiError](t, request(t, ts, "POST", "/api/messages",
		map[string]string{"conversation": conv, "text": "hi", "id": "idem-0003"}), http.StatusServiceUnavailable)
	if !strings.Contains(e.Error, "disk full") {
		t.Errorf("error %q does not say why", e.Error)
	}
	a.mu.Lock()
	n := len(a.convs[conv].items)
	a.mu.Unlock()
	if n != 0 {
		t.Errorf("a post the gateway refused is still kept (%d items)", n)
	}
}

func TestNotRunning(t *testing.T) {
	a, ts := newAdapter(t, Options{}, platform.Deps{})
	check := func(when string) {
		t.Helper()
		decode[apiError](t, request(t, ts, "POST", "/api/messages",
			map[string]string{"conversation": conv, "text": "hi"}), http.StatusServiceUnavailable)
		decode[apiError](t, request(t, ts, "GET", "/api/events?conversation="+conv, nil), http.StatusServiceUnavailable)
		decode[apiError](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil), http.StatusServiceUnavailable)
	}
	check("before Run")

	var rec recorder
	stop := run(t, a, rec.handle)
	s := openStream(t, ts, conv, "")
	s.waitComment("ready")
	stop()
	s.ends()
	check("after Run")
	if err := a.Run(context.Background(), rec.handle); err == nil {
		t.Error("a second Run: no error")
	}
	if len(rec.inbound()) != 0 {
		t.Error("the handler was called")
	}
}

func TestToken(t *testing.T) {
	var rec recorder
	_, ts := start(t, Options{Token: testToken}, platform.Deps{}, rec.handle)
	body := map[string]string{"conversation": conv, "text": "hi"}

	// Requests without a bearer token guess nothing: they do not count
	// towards a lockout, however many there are.
	for _, auth := range []string{"", "Basic " + testToken, testToken, "Bearer"} {
		resp := request(t, ts, "POST", "/api/messages", body, "Authorization: "+auth)
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q: no WWW-Authenticate", auth)
		}
		decode[apiError](t, resp, http.StatusUnauthorized)
		decode[apiError](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil, "Authorization: "+auth), http.StatusUnauthorized)
		decode[apiError](t, request(t, ts, "GET", "/api/events?conversation="+conv, nil, "Authorization: "+auth), http.StatusUnauthorized)
	}
	// Fewer wrong tokens than a lockout takes, one on each endpoint.
	wrong := []string{"Bearer wrong", "Bearer " + strings.ToUpper(testToken[:1]) + testToken[1:], "Bearer " + testToken + "-and-more"}
	decode[apiError](t, request(t, ts, "POST", "/api/messages", body, "Authorization: "+wrong[0]), http.StatusUnauthorized)
	decode[apiError](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil, "Authorization: "+wrong[1]), http.StatusUnauthorized)
	decode[apiError](t, request(t, ts, "GET", "/api/events?conversation="+conv, nil, "Authorization: "+wrong[2]), http.StatusUnauthorized)
	if len(rec.inbound()) != 0 {
		t.Fatal("a message got through without the token")
	}

	decode[map[string]string](t, request(t, ts, "POST", "/api/messages", body, "Authorization: Bearer "+testToken), http.StatusAccepted)
	decode[historyBody](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil, "Authorization: bearer "+testToken), http.StatusOK)
	openStream(t, ts, conv, "", "Authorization: Bearer "+testToken).waitComment("ready")

	// The page itself holds no secret: it loads without the token.
	resp := request(t, ts, "GET", "/", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the page: status %d", resp.StatusCode)
	}
}

func TestOrigin(t *testing.T) {
	_, ts := start(t, Options{}, platform.Deps{}, nil)
	host := strings.TrimPrefix(ts.URL, "http://")
	body := map[string]string{"conversation": conv, "text": "hi"}
	for _, origin := range []string{"http://evil.example", "null", "https://" + host, "http://" + host + ".evil.example", "http://localhost:1"} {
		decode[apiError](t, request(t, ts, "POST", "/api/messages", body, "Origin: "+origin), http.StatusForbidden)
		decode[apiError](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil, "Origin: "+origin), http.StatusForbidden)
	}
	decode[map[string]string](t, request(t, ts, "POST", "/api/messages", body, "Origin: "+ts.URL), http.StatusAccepted)
	// Behind a TLS-terminating proxy.
	decode[map[string]string](t, request(t, ts, "POST", "/api/messages", body, "Origin: https://"+host, "X-Forwarded-Proto: https"), http.StatusAccepted)
}

func TestHostWithoutToken(t *testing.T) {
	_, open := start(t, Options{}, platform.Deps{}, nil)
	_, locked := start(t, Options{Token: testToken}, platform.Deps{}, nil)
	for _, host := range []string{"localhost:8080", "app.localhost", "127.0.0.1:1", "[::1]:8080", "192.168.1.9"} {
		decode[historyBody](t, request(t, open, "GET", "/api/history?conversation="+conv, nil, "Host: "+host), http.StatusOK)
	}
	// A name that is not local is how DNS rebinding reaches a loopback
	// listener from another site: without a token, it is refused.
	decode[apiError](t, request(t, open, "GET", "/api/history?conversation="+conv, nil, "Host: rebind.evil.example"), http.StatusForbidden)
	decode[historyBody](t, request(t, locked, "GET", "/api/history?conversation="+conv, nil,
		"Host: chat.example.com", "Authorization: Bearer "+testToken), http.StatusOK)
}

func TestPageAndHeaders(t *testing.T) {
	_, ts := start(t, Options{}, platform.Deps{}, nil)
	for _, c := range []struct{ path, status, contentType, contains string }{
		{"/", "200", "text/html", `<script src="assets/app.js"`},
		{"/assets/app.js", "200", "text/javascript", "api/events"},
		{"/assets/app.css", "200", "text/css", ".msg.bot"},
		{"/assets/icon.svg", "200", "image/svg+xml", "<svg"},
		{"/assets/", "404", "", ""},
		{"/assets/nope.js", "404", "", ""},
		{"/healthz", "404", "", ""},
		{"/api/history?conversation=" + conv, "200", "application/json", `"messages":[]`},
	} {
		resp := request(t, ts, "GET", c.path, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := fmt.Sprint(resp.StatusCode); got != c.status {
			t.Errorf("%s: status %s, want %s", c.path, got, c.status)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), c.contentType) {
			t.Errorf("%s: Content-Type %q, want %q", c.path, resp.Header.Get("Content-Type"), c.contentType)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", c.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", c.path, h)
		}
	}
	// The page has no inline script or style for the policy to refuse.
	resp := request(t, ts, "GET", "/", nil)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, inline := range []string{"<script>", "<style", "style=", "onclick", "onload", "javascript:"} {
		if strings.Contains(string(page), inline) {
			t.Errorf("the page has inline %q", inline)
		}
	}
}

func TestEvents(t *testing.T) {
	a, ts := start(t, Options{}, platform.Deps{}, nil, fastKeepalive)
	ctx := t.Context()
	s := openStream(t, ts, conv, "")
	s.waitComment("ready")
	other := openStream(t, ts, "other-conversation", "")
	other.waitComment("ready")

	if err := a.Typing(ctx, target); err != nil {
		t.Fatal(err)
	}
	id, err := a.Send(ctx, target, "Hel")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Edit(ctx, target, id, "Hello **world** ▌"); err != nil {
		t.Fatal(err)
	}
	id2, err := a.Send(ctx, target, "second")
	if err != nil || id2 == id || id2 == "" {
		t.Fatalf("second Send: %q, %v", id2, err)
	}
	if err := a.Delete(ctx, target, id2); err != nil {
		t.Fatal(err)
	}

	want := []received{
		{Name: "typing"},
		{Name: "message", ID: id, Text: "Hel", HTML: "<p>Hel</p>\n"},
		{Name: "edit", ID: id, Text: "Hello **world** ▌", HTML: "<p>Hello <strong>world</strong> ▌</p>\n"},
		{Name: "message", ID: id2, Text: "second", HTML: "<p>second</p>\n"},
		{Name: "delete", ID: id2},
	}
	var cursors []string
	for _, w := range want {
		got := s.next()
		cursors = append(cursors, got.Cursor)
		got.Cursor = ""
		if got != w {
			t.Errorf("event\n got %+v\nwant %+v", got, w)
		}
	}
	if cursors[1] == "" || cursors[1] == cursors[2] || cursors[3] == cursors[4] {
		t.Errorf("cursors not set or not distinct: %q", cursors)
	}
	// Nothing leaked into the other conversation.
	other.quiet("keepalive")
}

func TestEditAndDeleteUnknown(t *testing.T) {
	var rec recorder
	a, ts := start(t, Options{}, platform.Deps{}, rec.handle)
	ctx := t.Context()
	if err := a.Edit(ctx, target, "nope", "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit in an unknown conversation: %v", err)
	}
	id, _ := a.Send(ctx, target, "x")
	if err := a.Edit(ctx, target, "nope", "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit of an unknown id: %v", err)
	}
	if err := a.Edit(ctx, chat.Target{ChatID: "another-conversation"}, id, "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit of a message of another conversation: %v", err)
	}
	posted := decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
		map[string]string{"conversation": conv, "text": "mine"}), http.StatusAccepted)
	if err := a.Edit(ctx, target, posted["id"], "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit of the user's message: %v", err)
	}
	if err := a.Delete(ctx, target, id); err != nil {
		t.Fatal(err)
	}
	if err := a.Edit(ctx, target, id, "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit of a deleted message: %v", err)
	}
	for _, id := range []string{id, "nope"} {
		if err := a.Delete(ctx, target, id); err != nil {
			t.Errorf("Delete of a message gone already: %v", err)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Send(canceled, target, "x"); err == nil {
		t.Error("Send with a cancelled context: no error")
	}
}

func TestReplay(t *testing.T) {
	a, ts := start(t, Options{}, platform.Deps{}, nil)
	ctx := t.Context()
	s := openStream(t, ts, conv, "")
	s.waitComment("ready")
	first, _ := a.Send(ctx, target, "one")
	gone, _ := a.Send(ctx, target, "two")
	seen := s.next()
	s.next()
	s.close() // the page loses its connection...

	// ...while the answer goes on.
	if err := a.Edit(ctx, target, first, "one, edited"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, target, gone); err != nil {
		t.Fatal(err)
	}
	third, _ := a.Send(ctx, target, "three")

	// Reconnecting from the last event it saw, it gets what changed.
	back := openStream(t, ts, conv, seen.Cursor)
	var got []string
	for range 3 {
		r := back.next()
		got = append(got, r.Name+" "+r.ID+" "+r.Text)
	}
	want := []string{"message " + first + " one, edited", "delete " + gone + " ", "message " + third + " three"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replay\n got %q\nwant %q", got, want)
	}
	back.quiet("ready")

	// A new page (no cursor, or one of an earlier process) gets every bot
	// message there is, in order.
	for _, after := range []string{"", "0123abcd.1", "garbage"} {
		fresh := openStream(t, ts, conv, after)
		one, three := fresh.next(), fresh.next()
		if one.ID != first || one.Text != "one, edited" || three.ID != third || one.Name != "message" || three.Name != "message" {
			t.Errorf("after %q: replay %+v %+v", after, one, three)
		}
		fresh.quiet("ready")
		// Live events follow the replay.
		a.Typing(ctx, target)
		if r := fresh.next(); r.Name != "typing" {
			t.Errorf("after the replay: %+v", r)
		}
		fresh.close()
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	a, ts := start(t, Options{}, platform.Deps{}, nil)
	ctx := t.Context()
	slow, _, ok := a.subscribe(conv, "") // never read
	if !ok {
		t.Fatal("subscribe failed")
	}
	s := openStream(t, ts, conv, "") // a live page, reading
	s.waitComment("ready")

	done := make(chan error, 1)
	go func() {
		id, err := a.Send(ctx, target, "start")
		for i := range 10 * subscriberBuffer {
			if err == nil {
				err = a.Edit(ctx, target, id, fmt.Sprint("edit ", i))
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send and Edit blocked on a subscriber that does not read")
	}
	// The slow one was cut off (it reconnects and catches up)...
	n := 0
	for range slow.ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("the slow subscriber got %d events before the cut, want %d", n, subscriberBuffer)
	}
	a.mu.Lock()
	_, still := a.convs[conv].subs[slow]
	a.mu.Unlock()
	if still {
		t.Error("the slow subscriber is still subscribed")
	}
	// ...and the page that kept up got everything, or was cut off too and
	// can catch up from its last cursor: either way it ends at the last edit.
	var last received
	for last.Text != fmt.Sprint("edit ", 10*subscriberBuffer-1) {
		select {
		case last = <-s.events:
		case <-s.done:
			s = openStream(t, ts, conv, last.Cursor)
		case <-time.After(5 * time.Second):
			t.Fatalf("the reading page stopped at %+v", last)
		}
	}
}

func TestKeepalive(t *testing.T) {
	_, ts := start(t, Options{}, platform.Deps{}, nil, fastKeepalive)
	s := openStream(t, ts, conv, "")
	s.waitComment("ready")
	s.waitComment("keepalive")
	s.waitComment("keepalive")
}

func TestHistory(t *testing.T) {
	var mu sync.Mutex
	saved := map[string][]chat.Message{}
	history := func(_ context.Context, src chat.Source) ([]chat.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		if src.Platform != "webchat" || src.ChatType != chat.DM || src.UserID != "webchat:"+src.ChatID {
			return nil, fmt.Errorf("unexpected source %+v", src)
		}
		if src.ChatID == "failing-store" {
			return nil, errors.New("store: locked")
		}
		return saved[src.ChatID], nil
	}
	save := func(msgs ...chat.Message) {
		mu.Lock()
		defer mu.Unlock()
		saved[conv] = append(saved[conv], msgs...)
	}
	a, ts := start(t, Options{}, platform.Deps{History: history}, nil)
	ctx := t.Context()
	get := func() []string {
		t.Helper()
		h := decode[historyBody](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil), http.StatusOK)
		if h.Cursor == "" {
			t.Error("no cursor")
		}
		var out []string
		for _, m := range h.Messages {
			s := string(m.Role) + ": " + m.Text
			if m.HTML != "" {
				s += " | " + strings.TrimSpace(m.HTML)
			}
			if m.ID != "" {
				s += " (live)"
			}
			out = append(out, s)
		}
		return out
	}
	post := func(text string) {
		t.Helper()
		decode[map[string]string](t, request(t, ts, "POST", "/api/messages",
			map[string]string{"conversation": conv, "text": text}), http.StatusAccepted)
	}
	check := func(when string, want ...string) {
		t.Helper()
		if got := get(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: history\n got %q\nwant %q", when, got, want)
		}
	}

	// A conversation of an earlier run, as the store has it.
	save(chat.Message{Role: chat.System, Content: "you are helpful"},
		chat.Message{Role: chat.User, Content: "earlier"},
		chat.Message{Role: chat.Tool, Content: "{}"},
		chat.Message{Role: chat.Assistant, Content: ""},
		chat.Message{Role: chat.Assistant, Content: "an *answer* <script>x</script>"})
	earlier := []string{"user: earlier", "assistant: an *answer* <script>x</script> | <p>an <em>answer</em> &lt;script&gt;x&lt;/script&gt;</p>"}
	check("from the store", earlier...)

	// Mid-answer, the store does not have the turn yet: the page still
	// sees the question and the answer so far.
	post("question")
	id, _ := a.Send(ctx, target, "partial ▌")
	check("mid-answer", append(earlier, "user: question (live)", "assistant: partial ▌ | <p>partial ▌</p> (live)")...)

	// Once the turn is saved, it comes from the store only.
	a.Edit(ctx, target, id, "done")
	save(chat.Message{Role: chat.User, Content: "question"}, chat.Message{Role: chat.Assistant, Content: "done"})
	check("saved", append(earlier, "user: question", "assistant: done | <p>done</p>")...)

	// A command's answer is never saved: it shows until the session changes.
	post("/help")
	a.Send(ctx, target, "Commands: …")
	check("after /help", append(earlier, "user: question", "assistant: done | <p>done</p>",
		"user: /help (live)", "assistant: Commands: … | <p>Commands: …</p> (live)")...)

	// A restart notice is kept in the store (for a page that was not
	// open when it was sent) and shows once, among what the store has,
	// though this process holds it too.
	notice := "⚠️ Herald restarted while answering your message “x”; the answer was cut short. Please send it again."
	a.Send(ctx, target, notice)
	save(chat.Message{Role: chat.Notice, Content: notice})
	check("a kept notice", append(earlier, "user: question", "assistant: done | <p>done</p>",
		"assistant: "+notice+" | <p>"+notice+"</p>",
		"user: /help (live)", "assistant: Commands: … | <p>Commands: …</p> (live)")...)

	// /new starts a new session: the store has none of it, and neither
	// does the page.
	post("/new")
	mu.Lock()
	saved[conv] = nil
	mu.Unlock()
	a.Send(ctx, target, "New conversation started.")
	check("after /new", "assistant: New conversation started. | <p>New conversation started.</p> (live)")

	decode[apiError](t, request(t, ts, "GET", "/api/history?conversation=failing-store", nil), http.StatusServiceUnavailable)
	decode[apiError](t, request(t, ts, "GET", "/api/history?conversation=bad", nil), http.StatusBadRequest)
}

// TestHistoryAfterRestart: a turn journalled by an earlier process is
// answered by this one, whose memory lacks the post. The answer shows live
// while it is written and once when the transcript has it.
func TestHistoryAfterRestart(t *testing.T) {
	var mu sync.Mutex
	var saved []chat.Message
	history := func(context.Context, chat.Source) ([]chat.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(saved), nil
	}
	a, ts := start(t, Options{}, platform.Deps{History: history}, nil)
	get := func() []string {
		t.Helper()
		h := decode[historyBody](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil), http.StatusOK)
		var out []string
		for _, m := range h.Messages {
			out = append(out, string(m.Role)+": "+m.Text)
		}
		return out
	}
	resumed := chat.Target{ChatID: conv, ReplyTo: "a-post-of-the-process-before", DM: true}
	id, err := a.Send(t.Context(), resumed, "the answ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := get(), []string{"assistant: the answ"}; !slices.Equal(got, want) {
		t.Errorf("mid-answer: history %q, want %q", got, want)
	}
	if err := a.Edit(t.Context(), resumed, id, "the answer"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	saved = append(saved, chat.Message{Role: chat.User, Content: "asked before"}, chat.Message{Role: chat.Assistant, Content: "the answer"})
	mu.Unlock()
	if got, want := get(), []string{"user: asked before", "assistant: the answer"}; !slices.Equal(got, want) {
		t.Errorf("saved: history %q, want %q", got, want)
	}
}

func TestHistoryCursorResumesStream(t *testing.T) {
	a, ts := start(t, Options{}, platform.Deps{}, nil)
	ctx := t.Context()
	id, _ := a.Send(ctx, target, "before the reload")
	h := decode[historyBody](t, request(t, ts, "GET", "/api/history?conversation="+conv, nil), http.StatusOK)
	if len(h.Messages) != 1 || h.Messages[0].ID != id {
		t.Fatalf("history %+v", h)
	}
	a.Edit(ctx, target, id, "changed between history and stream")
	s := openStream(t, ts, conv, h.Cursor)
	if r := s.next(); r.ID != id || r.Text != "changed between history and stream" {
		t.Errorf("replay %+v", r)
	}
	s.quiet("ready")
}

func TestMemoryBounds(t *testing.T) {
	a, _ := start(t, Options{}, platform.Deps{}, nil)
	ctx := t.Context()
	first, _ := a.Send(ctx, target, "first")
	for range maxItems {
		a.Send(ctx, target, "more")
	}
	if err := a.Edit(ctx, target, first, "x"); !errors.Is(err, platform.ErrCannotEdit) {
		t.Errorf("Edit of a message beyond the bound: %v", err)
	}
	for i := range maxConversations {
		a.Send(ctx, chat.Target{ChatID: fmt.Sprint("conversation-", i)}, "x")
	}
	a.mu.Lock()
	n, kept := len(a.convs), a.convs[conv] != nil
	a.mu.Unlock()
	if n != maxConversations || kept {
		t.Errorf("%d conversations (the oldest kept: %v), want %d", n, kept, maxConversations)
	}
}

func TestRenderHTML(t *testing.T) {
	for md, want := range map[string]string{
		"**bold** and `code`":          "<p><strong>bold</strong> and <code>code</code></p>",
		"<img src=x onerror=alert(1)>": "<p>&lt;img src=x onerror=alert(1)&gt;</p>",
		"[x](javascript:alert(1))":     `<p><a href="" rel="nofollow noopener">x</a></p>`,
		"| a |\n|--:|\n| b |":          `<td align="right">b</td>`,
		"- [x] done":                   `<input checked="" disabled="" type="checkbox"`,
		"~~gone~~ https://example.com": `<del>gone</del> <a href="https://example.com" rel="nofollow noopener">https://example.com</a>`,
	} {
		got := renderHTML(md)
		if !strings.Contains(got, want) {
			t.Errorf("renderHTML(%q) = %q, want it to hold %q", md, got, want)
		}
		if strings.Contains(got, "style=") {
			t.Errorf("renderHTML(%q) = %q: the page's policy refuses style attributes", md, got)
		}
	}
}
