package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-chat/herald/internal/memnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	alice = "U0ALICE001"
	bob   = "U0BOB00001"
	dm    = "D0ALICE001" // alice's IM with the bot
	gen   = "C0GENERAL1"
	priv  = "G0PRIVATE1"
)

// world is a server with alice, bob, her IM and two channels, and a way to
// call it.
type world struct {
	t      *testing.T
	srv    *Server
	client *http.Client
	dialer *websocket.Dialer
}

// newWorld starts a server on loopback, or on net when it is set (in a
// synctest bubble).
func newWorld(t *testing.T, opts Options, net *memnet.Network) *world {
	t.Helper()
	w := &world{t: t, client: &http.Client{Transport: &http.Transport{}}, dialer: websocket.DefaultDialer}
	if net != nil {
		opts.Listener = net.Listen()
		w.client = net.Client()
		w.dialer = &websocket.Dialer{NetDialContext: net.Dial}
	}
	w.srv = NewServer(opts)
	t.Cleanup(func() {
		w.srv.Close()
		w.client.CloseIdleConnections()
	})
	w.srv.AddUser(User{ID: alice, Name: "alice", RealName: "Alice Liddell"})
	w.srv.AddUser(User{ID: bob, Name: "bob", RealName: "Bob"})
	w.srv.AddChannel(Channel{ID: dm, User: alice})
	w.srv.AddChannel(Channel{ID: gen, Name: "general"})
	w.srv.AddChannel(Channel{ID: priv, Name: "secret"})
	return w
}

// answer is a Web API answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) ok() bool { return a.body["ok"] == true }

func (a answer) err() string { s, _ := a.body["error"].(string); return s }

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

// do sends a request and reads a JSON answer.
func (w *world) do(req *http.Request) answer {
	w.t.Helper()
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		w.t.Errorf("%s: Content-Type %q", req.URL.Path, ct)
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(data, &a.body); err != nil {
		w.t.Fatalf("%s: %v in %s", req.URL.Path, err, data)
	}
	return a
}

// form calls a method with a form body, the token in the header ("" for
// none).
func (w *world) form(method, token string, args url.Values) answer {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+method, strings.NewReader(args.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return w.do(req)
}

// json calls a method with a JSON body and the bot token.
func (w *world) json(method string, args map[string]any) answer {
	w.t.Helper()
	body, err := json.Marshal(args)
	if err != nil {
		w.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+method, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+w.srv.BotToken)
	return w.do(req)
}

// bot calls a method with a form body and the bot token.
func (w *world) bot(method string, kv ...string) answer {
	w.t.Helper()
	args := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		args.Set(kv[i], kv[i+1])
	}
	return w.form(method, w.srv.BotToken, args)
}

func wantOK(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != 200 || !a.ok() {
		t.Fatalf("%s: %d %v", what, a.status, a.body)
	}
}

func wantErr(t *testing.T, what string, a answer, code string) {
	t.Helper()
	if a.status != 200 || a.ok() || a.err() != code {
		t.Errorf("%s: %d %v, want error %s", what, a.status, a.body, code)
	}
}

func TestTokensAndErrorShapes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	wantErr(t, "no token", w.form("auth.test", "", nil), "not_authed")
	wantErr(t, "unknown token", w.form("auth.test", "xoxb-nope", nil), "invalid_auth")
	wantErr(t, "app token on a bot method", w.form("chat.postMessage", w.srv.AppToken, url.Values{"channel": {gen}, "text": {"x"}}), "not_allowed_token_type")
	wantErr(t, "bot token on apps.connections.open", w.form("apps.connections.open", w.srv.BotToken, nil), "not_allowed_token_type")
	wantErr(t, "app token as a POST parameter", w.form("apps.connections.open", "", url.Values{"token": {w.srv.AppToken}}), "not_authed")
	wantErr(t, "unknown method", w.form("chat.postMessagee", w.srv.BotToken, nil), "unknown_method")

	// The token as a form field works for bot methods.
	a := w.form("auth.test", "", url.Values{"token": {w.srv.BotToken}})
	wantOK(t, "auth.test", a)
	if a.str("user_id") != DefaultBotUserID || a.str("bot_id") != DefaultBotID || a.str("team_id") != DefaultTeamID ||
		a.str("team") != "Herald" || a.str("user") != "herald" || !strings.HasPrefix(a.str("url"), "https://") {
		t.Errorf("auth.test %v", a.body)
	}
	if c := w.srv.CallsOf("auth.test"); len(c) != 3 || c[2].Error != "" || c[0].Error != "not_authed" || c[2].Params["token"] != "" {
		t.Errorf("calls %+v", c)
	}

	// A JSON body that is no object.
	req, _ := http.NewRequest(http.MethodPost, w.srv.URL+"auth.test", strings.NewReader("[1]"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.srv.BotToken)
	wantErr(t, "bad JSON", w.do(req), "invalid_json")

	// GET with query arguments works too.
	req, _ = http.NewRequest(http.MethodGet, w.srv.URL+"users.info?user="+alice, nil)
	req.Header.Set("Authorization", "Bearer "+w.srv.BotToken)
	a = w.do(req)
	wantOK(t, "users.info", a)
	u := a.body["user"].(map[string]any)
	if u["id"] != alice || u["name"] != "alice" || u["real_name"] != "Alice Liddell" ||
		u["profile"].(map[string]any)["real_name"] != "Alice Liddell" {
		t.Errorf("user %v", u)
	}
	wantErr(t, "users.info unknown", w.bot("users.info", "user", "U0NOBODY"), "user_not_found")
}

func TestConversationsInfo(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	for _, c := range []struct {
		id                 string
		im, channel, privt bool
	}{{dm, true, false, false}, {gen, false, true, false}, {priv, false, false, true}} {
		a := w.bot("conversations.info", "channel", c.id)
		wantOK(t, c.id, a)
		ch := a.body["channel"].(map[string]any)
		if ch["id"] != c.id || ch["is_im"] != c.im || (!c.im && (ch["is_channel"] != c.channel || ch["is_private"] != c.privt)) {
			t.Errorf("%s: %v", c.id, ch)
		}
		if c.im && ch["user"] != alice {
			t.Errorf("IM user %v", ch["user"])
		}
		if !c.im && ch["name"] == "" {
			t.Errorf("no name: %v", ch)
		}
	}
	wantErr(t, "unknown", w.bot("conversations.info", "channel", "C0NOPE"), "channel_not_found")
}

var tsForm = regexp.MustCompile(`^\d{9,}\.\d{6}$`)

func TestPostMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	parent := w.srv.Inject(Incoming{Channel: gen, User: alice, Text: "<@" + DefaultBotUserID + "> hello"})

	a := w.bot("chat.postMessage", "channel", gen, "text", "hi *there*", "thread_ts", parent, "unfurl_links", "false")
	wantOK(t, "post", a)
	ts := a.str("ts")
	if !tsForm.MatchString(ts) || ts <= parent || a.str("channel") != gen {
		t.Errorf("answer %v", a.body)
	}
	msg := a.body["message"].(map[string]any)
	if msg["type"] != "message" || msg["user"] != DefaultBotUserID || msg["bot_id"] != DefaultBotID ||
		msg["text"] != "hi *there*" || msg["ts"] != ts || msg["thread_ts"] != parent {
		t.Errorf("message %v", msg)
	}

	// JSON body: blocks as an array, a bool as JSON text; only blocks.
	a = w.json("chat.postMessage", map[string]any{"channel": dm, "unfurl_media": false,
		"blocks": []any{map[string]any{"type": "markdown", "text": "**bold** answer"}}})
	wantOK(t, "post JSON", a)
	c := w.srv.CallsOf("chat.postMessage")
	if last := c[len(c)-1]; last.Params["unfurl_media"] != "false" || last.Params["blocks"] != `[{"text":"**bold** answer","type":"markdown"}]` || last.Channel != dm {
		t.Errorf("params %v", last.Params)
	}
	// Form body: blocks as JSON text.
	wantOK(t, "post form blocks", w.bot("chat.postMessage", "channel", dm, "text", "fallback",
		"blocks", `[{"type":"section","text":{"type":"mrkdwn","text":"*sec*"}}]`))

	bm := w.srv.BotMessages(dm)
	if len(bm) != 2 || bm[0].Text != "**bold** answer" || bm[1].Text != "fallback" || !strings.Contains(string(bm[0].Blocks), "markdown") {
		t.Errorf("bot messages %+v", bm)
	}
	if th := w.srv.Thread(gen, parent); len(th) != 1 || th[0].TS != ts || th[0].BotID != DefaultBotID {
		t.Errorf("thread %+v", th)
	}
	if all := w.srv.Messages(gen); len(all) != 2 || all[0].User != alice || all[1].ThreadTS != parent {
		t.Errorf("messages %+v", all)
	}

	wantErr(t, "no channel", w.bot("chat.postMessage", "channel", "C0NOPE", "text", "x"), "channel_not_found")
	wantErr(t, "no text", w.bot("chat.postMessage", "channel", gen), "no_text")
	wantErr(t, "too long", w.bot("chat.postMessage", "channel", gen, "text", strings.Repeat("é", maxText+1)), "msg_too_long")
	wantOK(t, "just short enough", w.bot("chat.postMessage", "channel", gen, "text", strings.Repeat("é", maxText)))
	big, _ := json.Marshal([]any{map[string]any{"type": "markdown", "text": strings.Repeat("a", maxMarkdown+1)}})
	wantErr(t, "markdown block too long", w.bot("chat.postMessage", "channel", gen, "blocks", string(big)), "invalid_blocks")
	two, _ := json.Marshal([]any{map[string]any{"type": "markdown", "text": strings.Repeat("a", 7000)},
		map[string]any{"type": "markdown", "text": strings.Repeat("b", 7000)}})
	wantErr(t, "markdown blocks too long together", w.bot("chat.postMessage", "channel", gen, "blocks", string(two)), "msg_blocks_too_long")
	wantErr(t, "bad blocks", w.bot("chat.postMessage", "channel", gen, "blocks", "{not json"), "invalid_blocks_format")
	wantErr(t, "no such thread", w.bot("chat.postMessage", "channel", gen, "text", "x", "thread_ts", "1.000001"), "thread_not_found")
	wantErr(t, "bad thread_ts", w.bot("chat.postMessage", "channel", gen, "text", "x", "thread_ts", "0"), "invalid_thread_ts")

	// Mass mentions as Slack would render them.
	if m := w.srv.Mentions(gen); len(m) != 0 {
		t.Errorf("mentions before: %v", m)
	}
	w.bot("chat.postMessage", "channel", gen, "text", "escaped &lt;!here&gt; and @channel")
	if m := w.srv.Mentions(gen); len(m) != 0 {
		t.Errorf("escaped mentions counted: %v", m)
	}
	w.bot("chat.postMessage", "channel", gen, "text", "hey @channel", "link_names", "true")
	w.bot("chat.postMessage", "channel", gen, "text", "<!here> look")
	w.json("chat.postMessage", map[string]any{"channel": gen, "blocks": []any{map[string]any{"type": "rich_text",
		"elements": []any{map[string]any{"type": "rich_text_section", "elements": []any{map[string]any{"type": "broadcast", "range": "everyone"}}}}}}})
	if m := w.srv.Mentions(gen); strings.Join(m, " ") != "@channel <!here> <!everyone>" {
		t.Errorf("mentions %q", m)
	}
}

func TestUpdateAndDelete(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	user := w.srv.Inject(Incoming{Channel: dm, User: alice, Text: "question"})
	ts := w.bot("chat.postMessage", "channel", dm, "text", "draft").str("ts")

	a := w.bot("chat.update", "channel", dm, "ts", ts, "text", "final")
	wantOK(t, "update", a)
	if a.str("text") != "final" || a.str("ts") != ts || a.str("channel") != dm {
		t.Errorf("update answer %v", a.body)
	}
	if m, _ := w.srv.Message(dm, ts); m.Text != "final" || m.Edits != 1 {
		t.Errorf("after update %+v", m)
	}
	wantErr(t, "update unknown", w.bot("chat.update", "channel", dm, "ts", "1.000002", "text", "x"), "message_not_found")
	wantErr(t, "update a user's", w.bot("chat.update", "channel", dm, "ts", user, "text", "x"), "cant_update_message")
	wantErr(t, "update to nothing", w.bot("chat.update", "channel", dm, "ts", ts), "no_text")
	wantErr(t, "update too long", w.bot("chat.update", "channel", dm, "ts", ts, "text", strings.Repeat("x", maxText+1)), "msg_too_long")

	wantErr(t, "delete a user's", w.bot("chat.delete", "channel", dm, "ts", user), "cant_delete_message")
	wantOK(t, "delete", w.bot("chat.delete", "channel", dm, "ts", ts))
	wantErr(t, "delete again", w.bot("chat.delete", "channel", dm, "ts", ts), "message_not_found")
	if m := w.srv.Messages(dm); len(m) != 1 || m[0].TS != user {
		t.Errorf("messages %+v", m)
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	q := w.srv.Inject(Incoming{Channel: dm, User: alice, Text: "tell me"})

	wantErr(t, "no thread_ts", w.bot("chat.startStream", "channel", dm), "invalid_arguments")
	wantErr(t, "too long", w.bot("chat.startStream", "channel", dm, "thread_ts", q, "markdown_text", strings.Repeat("x", maxMarkdown+1)), "msg_too_long")
	a := w.bot("chat.startStream", "channel", dm, "thread_ts", q, "markdown_text", "Once ")
	wantOK(t, "start", a)
	ts := a.str("ts")
	wantOK(t, "append", w.bot("chat.appendStream", "channel", dm, "ts", ts, "markdown_text", "upon "))
	wantOK(t, "append JSON", w.json("chat.appendStream", map[string]any{"channel": dm, "ts": ts, "markdown_text": "a time"}))
	wantErr(t, "append nothing", w.bot("chat.appendStream", "channel", dm, "ts", ts), "invalid_arguments")
	wantErr(t, "append too long", w.bot("chat.appendStream", "channel", dm, "ts", ts, "markdown_text", strings.Repeat("x", maxMarkdown+1)), "msg_too_long")
	wantOK(t, "update while streaming", w.bot("chat.update", "channel", dm, "ts", ts, "text", "Once upon a time"))
	m, _ := w.srv.Message(dm, ts)
	if !m.Streaming || !m.Streamed || m.ThreadTS != q || m.Appends != 2 || m.StreamingEdits != 1 {
		t.Errorf("streaming %+v", m)
	}
	a = w.bot("chat.stopStream", "channel", dm, "ts", ts, "markdown_text", ".")
	wantOK(t, "stop", a)
	if msg := a.body["message"].(map[string]any); msg["text"] != "Once upon a time." {
		t.Errorf("stop answer %v", a.body)
	}
	if m, _ := w.srv.Message(dm, ts); m.Streaming || m.Text != "Once upon a time." {
		t.Errorf("stopped %+v", m)
	}
	wantErr(t, "append after stop", w.bot("chat.appendStream", "channel", dm, "ts", ts, "markdown_text", "x"), "message_not_in_streaming_state")
	wantErr(t, "stop after stop", w.bot("chat.stopStream", "channel", dm, "ts", ts), "message_not_in_streaming_state")
	wantErr(t, "append unknown", w.bot("chat.appendStream", "channel", dm, "ts", "1.000003", "markdown_text", "x"), "message_not_found")
	wantErr(t, "append to a user's", w.bot("chat.appendStream", "channel", dm, "ts", q, "markdown_text", "x"), "message_not_in_streaming_state")

	// In a channel the recipient is needed.
	cq := w.srv.Inject(Incoming{Channel: gen, User: alice, Text: "<@" + DefaultBotUserID + "> hi"})
	wantErr(t, "no team", w.bot("chat.startStream", "channel", gen, "thread_ts", cq), "missing_recipient_team_id")
	wantErr(t, "no user", w.bot("chat.startStream", "channel", gen, "thread_ts", cq, "recipient_team_id", DefaultTeamID), "missing_recipient_user_id")
	a = w.json("chat.startStream", map[string]any{"channel": gen, "thread_ts": cq, "recipient_team_id": DefaultTeamID,
		"recipient_user_id": alice, "chunks": []any{map[string]any{"type": "markdown_text", "text": "chunked"}}})
	wantOK(t, "start in a channel", a)
	if m, _ := w.srv.Message(gen, a.str("ts")); m.Text != "chunked" || !m.Streaming {
		t.Errorf("channel stream %+v", m)
	}

	refused := newWorld(t, Options{RefuseStreaming: true}, nil)
	rq := refused.srv.Inject(Incoming{Channel: dm, User: alice, Text: "x"})
	wantErr(t, "refused", refused.bot("chat.startStream", "channel", dm, "thread_ts", rq), errStreamingRefused)
}

func TestAssistantStatus(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	q := w.srv.Inject(Incoming{Channel: dm, User: alice, Text: "think"})
	wantOK(t, "set", w.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", q, "status", "is thinking..."))
	if s := w.srv.CurrentStatus(dm, q); s != "is thinking..." {
		t.Errorf("current %q", s)
	}
	wantOK(t, "reply", w.bot("chat.postMessage", "channel", dm, "thread_ts", q, "text", "answer"))
	st := w.srv.Statuses(dm, q)
	if len(st) != 2 || st[1].Text != "" || !st[1].Reply || w.srv.CurrentStatus(dm, q) != "" {
		t.Errorf("statuses %+v", st)
	}
	wantOK(t, "set again", w.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", q, "status", "working"))
	wantOK(t, "clear", w.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", q, "status", ""))
	if st := w.srv.Statuses(dm, q); len(st) != 4 || st[3].Text != "" || st[3].Reply {
		t.Errorf("statuses %+v", st)
	}
	wantErr(t, "no status", w.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", q), "invalid_arguments")
	wantErr(t, "bad thread", w.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", "1.000004", "status", "x"), "invalid_thread_ts")
	wantErr(t, "bad channel", w.bot("assistant.threads.setStatus", "channel_id", "D0NOPE", "thread_ts", q, "status", "x"), "channel_not_found")

	refused := newWorld(t, Options{RefuseStatus: true}, nil)
	rq := refused.srv.Inject(Incoming{Channel: dm, User: alice, Text: "x"})
	a := refused.bot("assistant.threads.setStatus", "channel_id", dm, "thread_ts", rq, "status", "x")
	wantErr(t, "refused", a, "missing_scope")
	if a.str("needed") != "assistant:write" {
		t.Errorf("refusal %v", a.body)
	}
}

// In a bubble: the documented limits give 429 with Retry-After, a call
// before it is over is a violation, and RateLimitNth forces one.
func TestRateLimitsInABubble(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Options{Limits: &DocumentedLimits}, new(memnet.Network))
		post := func(ch string) answer { return w.bot("chat.postMessage", "channel", ch, "text", "x") }
		for i := range 3 {
			wantOK(t, "burst "+string(rune('1'+i)), post(gen))
		}
		start := time.Now()
		a := post(gen)
		if a.status != 429 || a.err() != "ratelimited" || a.ok() || a.header.Get("Retry-After") != "1" {
			t.Fatalf("over the limit: %d %v %v", a.status, a.header, a.body)
		}
		if p := w.srv.Penalties(); len(p) != 1 || p[0].Method != "chat.postMessage" || p[0].Channel != gen || p[0].Until.Sub(p[0].At) != time.Second {
			t.Errorf("penalties %+v", p)
		}
		if v := w.srv.Violations(); len(v) != 0 {
			t.Errorf("a first 429 is no violation: %+v", v)
		}
		if a := post(gen); a.status != 429 {
			t.Errorf("during the penalty: %d", a.status)
		}
		if v := w.srv.Violations(); len(v) != 1 || v[0].Channel != gen || v[0].RetryAfter != time.Second {
			t.Errorf("violations %+v", v)
		}
		wantOK(t, "another channel", post(dm))
		time.Sleep(time.Second)
		wantOK(t, "after Retry-After", post(gen))
		if c := w.srv.CallsOf("chat.postMessage"); c[3].Status != 429 || c[3].RetryAfter != time.Second || !c[3].At.Equal(start) {
			t.Errorf("call %+v", c[3])
		}

		// chat.update: Tier 3, 50 a minute for the workspace.
		ts := post(dm).str("ts")
		for range 50 {
			wantOK(t, "update", w.bot("chat.update", "channel", dm, "ts", ts, "text", "y"))
		}
		a = w.bot("chat.update", "channel", dm, "ts", ts, "text", "y")
		if a.status != 429 || a.header.Get("Retry-After") != "2" {
			t.Errorf("51st update: %d %v", a.status, a.header)
		}
		time.Sleep(2 * time.Second)
		wantOK(t, "update after waiting", w.bot("chat.update", "channel", dm, "ts", ts, "text", "z"))

		// A forced 429: the second update from now, in any channel.
		before := len(w.srv.Violations())
		w.srv.RateLimitNth("chat.update", "", 2, 1500*time.Millisecond)
		time.Sleep(5 * time.Second) // the bucket has tokens again
		wantOK(t, "first", w.bot("chat.update", "channel", dm, "ts", ts, "text", "1"))
		a = w.bot("chat.update", "channel", dm, "ts", ts, "text", "2")
		if a.status != 429 || a.header.Get("Retry-After") != "2" {
			t.Errorf("forced: %d %v", a.status, a.header)
		}
		if p := w.srv.Penalties(); p[len(p)-1].Channel != "" {
			t.Errorf("chat.update's penalty covers the workspace: %+v", p[len(p)-1])
		}
		a = w.bot("chat.update", "channel", gen, "ts", "1.000001", "text", "3")
		if a.status != 429 || len(w.srv.Violations()) != before+1 {
			t.Errorf("during a forced penalty: %d, %d violations", a.status, len(w.srv.Violations()))
		}
		time.Sleep(2 * time.Second)
		wantOK(t, "after the forced penalty", w.bot("chat.update", "channel", dm, "ts", ts, "text", "4"))
	})
}

// RateLimitNth works without limits, per channel for chat.postMessage.
func TestRateLimitNthWithoutLimits(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Options{}, new(memnet.Network))
		w.srv.RateLimitNth("chat.postMessage", gen, 1, 3*time.Second)
		wantOK(t, "other channel", w.bot("chat.postMessage", "channel", dm, "text", "x"))
		a := w.bot("chat.postMessage", "channel", gen, "text", "x")
		if a.status != 429 || a.header.Get("Retry-After") != "3" {
			t.Fatalf("forced: %d %v", a.status, a.header)
		}
		wantOK(t, "other channel during it", w.bot("chat.postMessage", "channel", dm, "text", "x"))
		if a := w.bot("chat.postMessage", "channel", gen, "text", "x"); a.status != 429 || len(w.srv.Violations()) != 1 {
			t.Errorf("during the penalty: %d, %+v", a.status, w.srv.Violations())
		}
		time.Sleep(3 * time.Second)
		for range 10 {
			wantOK(t, "no limits", w.bot("chat.postMessage", "channel", gen, "text", "x"))
		}
	})
}

// ---- Socket Mode ----

// sm is a Socket Mode client, reading all the time as a real one does.
type sm struct {
	ws    *websocket.Conn
	msgs  chan map[string]any
	pings chan struct{}
	done  chan struct{}
}

// open asks apps.connections.open for a URL and connects to it.
func (w *world) open() *sm {
	w.t.Helper()
	a := w.form("apps.connections.open", w.srv.AppToken, nil)
	wantOK(w.t, "apps.connections.open", a)
	u := a.str("url")
	if !strings.Contains(u, "/link/?ticket=") || !strings.HasSuffix(u, "&app_id="+DefaultAppID) {
		w.t.Errorf("url %q", u)
	}
	return w.dial(u)
}

func (w *world) dial(u string) *sm {
	w.t.Helper()
	ws, resp, err := w.dialer.Dial(u, nil)
	if err != nil {
		w.t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	c := &sm{ws: ws, msgs: make(chan map[string]any, 100), pings: make(chan struct{}, 100), done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		select {
		case c.pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		defer close(c.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				c.msgs <- m
			}
		}
	}()
	w.t.Cleanup(func() { ws.Close(); <-c.done })
	return c
}

// next is the next message, of a type.
func (c *sm) next(t *testing.T, typ string) map[string]any {
	t.Helper()
	select {
	case m := <-c.msgs:
		if m["type"] != typ {
			t.Fatalf("got %v, want a %s", m, typ)
		}
		return m
	case <-c.done:
		t.Fatalf("connection closed, want a %s", typ)
	case <-time.After(time.Minute):
		t.Fatalf("no %s", typ)
	}
	return nil
}

// none checks that nothing came.
func (c *sm) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Errorf("unexpected %v", m)
	default:
	}
}

func (c *sm) ack(t *testing.T, env map[string]any) {
	t.Helper()
	if err := c.ws.WriteJSON(map[string]any{"envelope_id": env["envelope_id"]}); err != nil {
		t.Fatal(err)
	}
}

// event is an envelope's event.
func event(env map[string]any) map[string]any {
	return env["payload"].(map[string]any)["event"].(map[string]any)
}

func eventID(env map[string]any) string {
	return env["payload"].(map[string]any)["event_id"].(string)
}

func waitFor(t *testing.T, srv *Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Over loopback: hello, a channel's message and app_mention events, the
// acks, a thread reply's fields, a private channel's type, and files served
// to the bot's token only.
func TestEventsAndFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{}, nil)
	c := w.open()
	hello := c.next(t, "hello")
	if hello["num_connections"] != 1.0 || hello["connection_info"].(map[string]any)["app_id"] != DefaultAppID ||
		hello["debug_info"].(map[string]any)["approximate_connection_time"] == nil {
		t.Errorf("hello %v", hello)
	}

	text := "<@" + DefaultBotUserID + "> look at <https://example.com|this> &amp; that"
	ts := w.srv.Inject(Incoming{Channel: gen, User: alice, Text: text})
	msg := c.next(t, "events_api")
	mention := c.next(t, "events_api")
	for _, env := range []map[string]any{msg, mention} {
		p := env["payload"].(map[string]any)
		if env["accepts_response_payload"] != false || env["retry_attempt"] != 0.0 || env["retry_reason"] != "" ||
			p["type"] != "event_callback" || p["team_id"] != DefaultTeamID || p["api_app_id"] != DefaultAppID ||
			!strings.HasPrefix(p["event_id"].(string), "Ev") || p["event_time"] == nil {
			t.Errorf("envelope %v", env)
		}
		auth := p["authorizations"].([]any)[0].(map[string]any)
		if auth["user_id"] != DefaultBotUserID || auth["is_bot"] != true {
			t.Errorf("authorizations %v", auth)
		}
		c.ack(t, env)
	}
	if eventID(msg) == eventID(mention) || msg["envelope_id"] == mention["envelope_id"] {
		t.Errorf("two events share ids")
	}
	ev := event(msg)
	if ev["type"] != "message" || ev["channel_type"] != "channel" || ev["channel"] != gen || ev["user"] != alice ||
		ev["text"] != text || ev["ts"] != ts || ev["event_ts"] != ts || ev["team"] != DefaultTeamID || ev["subtype"] != nil {
		t.Errorf("message event %v", ev)
	}
	elems := ev["blocks"].([]any)[0].(map[string]any)["elements"].([]any)[0].(map[string]any)["elements"].([]any)
	if len(elems) != 4 || elems[0].(map[string]any)["user_id"] != DefaultBotUserID ||
		elems[2].(map[string]any)["url"] != "https://example.com" || elems[3].(map[string]any)["text"] != " & that" {
		t.Errorf("rich text %v", elems)
	}
	if me := event(mention); me["type"] != "app_mention" || me["channel"] != gen || me["ts"] != ts || me["channel_type"] != nil {
		t.Errorf("app_mention %v", me)
	}
	waitFor(t, w.srv, "acks", func() bool { return len(w.srv.Acks()) == 2 })
	for _, e := range w.srv.Envelopes() {
		if e.AckedAt.IsZero() || e.Conn != 1 || e.Type != "events_api" {
			t.Errorf("envelope %+v", e)
		}
	}

	// A reply by bob in a private channel, with a file.
	root := w.srv.Inject(Incoming{Channel: priv, User: alice, Text: "root"})
	c.ack(t, c.next(t, "events_api"))
	w.srv.Inject(Incoming{Channel: priv, User: bob, Text: "see file", ThreadTS: root,
		Files: []File{{Name: "notes.txt", MimeType: "text/plain", Data: []byte("file body")}}})
	env := c.next(t, "events_api")
	c.ack(t, env)
	ev = event(env)
	if ev["channel_type"] != "group" || ev["thread_ts"] != root || ev["parent_user_id"] != alice || ev["subtype"] != "file_share" {
		t.Errorf("reply %v", ev)
	}
	f := ev["files"].([]any)[0].(map[string]any)
	if f["name"] != "notes.txt" || f["mimetype"] != "text/plain" || f["filetype"] != "text" || f["size"] != 9.0 ||
		!strings.HasPrefix(f["id"].(string), "F") {
		t.Errorf("file %v", f)
	}
	get := func(u, token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	for _, key := range []string{"url_private", "url_private_download"} {
		u := f[key].(string)
		if st, ct, body := get(u, w.srv.BotToken); st != 200 || ct != "text/plain" || body != "file body" {
			t.Errorf("%s with the token: %d %s %q", key, st, ct, body)
		}
	}
	u := f["url_private"].(string)
	if st, ct, body := get(u, ""); st != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<html") {
		t.Errorf("without a token: %d %s %q", st, ct, body)
	}
	if st, ct, _ := get(u, "xoxb-wrong"); st != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Errorf("with a wrong token: %d %s", st, ct)
	}
	if st, _, _ := get(w.srv.BaseURL+"/files-pri/"+DefaultTeamID+"-F0NOPE/x.txt", w.srv.BotToken); st != 404 {
		t.Errorf("unknown file: %d", st)
	}
	dl := w.srv.CallsOf("files-pri")
	if len(dl) != 5 || dl[0].Error != "" || dl[2].Error != "not_authed" || dl[3].Error != "invalid_auth" || dl[4].Status != 404 {
		t.Errorf("downloads %+v", dl)
	}
	if m := w.srv.Thread(priv, root); len(m) != 1 || len(m[0].Files) != 1 || m[0].User != bob {
		t.Errorf("thread %+v", m)
	}

	// The bot's own posts come back with EchoBotMessages only.
	w.bot("chat.postMessage", "channel", gen, "text", "quiet")
	c.none(t)
	echo := newWorld(t, Options{EchoBotMessages: true}, nil)
	ec := echo.open()
	ec.next(t, "hello")
	echo.bot("chat.postMessage", "channel", dm, "text", "echoed")
	if ev := event(ec.next(t, "events_api")); ev["bot_id"] != DefaultBotID || ev["text"] != "echoed" || ev["channel_type"] != "im" {
		t.Errorf("echo %v", ev)
	}
}

// In a synctest bubble over memnet: events wait for a connection, an
// envelope not acknowledged in 3 s comes again up to 3 times, pings come
// every 10 s, tickets serve once, a disconnect makes new events wait for
// the next connection, and what was outstanding on a closed or dropped
// connection comes again on the next.
func TestSocketModeInABubble(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Options{}, new(memnet.Network))
		srv := w.srv
		early := srv.Inject(Incoming{Channel: dm, User: alice, Text: "early"})
		if srv.Pending() != 1 {
			t.Fatalf("pending %d", srv.Pending())
		}
		a := w.form("apps.connections.open", srv.AppToken, nil)
		c := w.dial(a.str("url"))
		c.next(t, "hello")
		env := c.next(t, "events_api")
		if ev := event(env); ev["ts"] != early || ev["channel_type"] != "im" || ev["text"] != "early" {
			t.Errorf("early event %v", ev)
		}
		c.ack(t, env)
		waitFor(t, srv, "ack", func() bool { return len(srv.Acks()) == 1 })

		// The ticket served once.
		if _, resp, err := w.dialer.Dial(a.str("url"), nil); !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != 401 {
			t.Errorf("reused ticket: %v", err)
		}

		// Not acknowledged: again after 3 s, 3 times, then no more.
		srv.Inject(Incoming{Channel: dm, User: alice, Text: "ignored"})
		first := c.next(t, "events_api")
		start := time.Now()
		for retry := 1; retry <= 3; retry++ {
			env := c.next(t, "events_api")
			if env["retry_attempt"] != float64(retry) || env["retry_reason"] != "timeout" ||
				eventID(env) != eventID(first) || env["envelope_id"] == first["envelope_id"] {
				t.Errorf("retry %d: %v", retry, env)
			}
			if since := time.Since(start); since != time.Duration(retry)*defaultAckTimeout {
				t.Errorf("retry %d after %v", retry, since)
			}
		}
		time.Sleep(time.Minute)
		c.none(t)
		if len(c.pings) == 0 {
			t.Errorf("no pings in a minute")
		}

		// A disconnect: new events wait for the next connection; what
		// was outstanding on the old one comes again once it closes.
		srv.Inject(Incoming{Channel: dm, User: alice, Text: "outstanding"})
		out := c.next(t, "events_api")
		srv.Disconnect("refresh_requested")
		if d := c.next(t, "disconnect"); d["reason"] != "refresh_requested" || d["debug_info"].(map[string]any)["host"] == "" {
			t.Errorf("disconnect %v", d)
		}
		srv.Inject(Incoming{Channel: dm, User: alice, Text: "meanwhile"})
		if srv.Pending() != 1 {
			t.Errorf("pending %d", srv.Pending())
		}
		c2 := w.open()
		if h := c2.next(t, "hello"); h["num_connections"] != 2.0 {
			t.Errorf("hello %v", h)
		}
		mw := c2.next(t, "events_api")
		if event(mw)["text"] != "meanwhile" || mw["retry_attempt"] != 0.0 {
			t.Errorf("queued event %v", mw)
		}
		c2.ack(t, mw)
		c.ws.Close() // the client leaves the old connection
		start = time.Now()
		again := c2.next(t, "events_api")
		if eventID(again) != eventID(out) || again["retry_attempt"] != 1.0 || again["retry_reason"] != "timeout" {
			t.Errorf("redelivered %v", again)
		}
		if since := time.Since(start); since != 0 {
			t.Errorf("redelivered %v after the close, not at once", since)
		}
		c2.ack(t, again)
		waitFor(t, srv, "one connection", func() bool { return srv.OpenConnections() == 1 })

		// The server closes a connection the client keeps after a
		// disconnect, 10 s later.
		srv.Disconnect("warning")
		c2.next(t, "disconnect")
		start = time.Now()
		<-c2.done
		if since := time.Since(start); since != defaultDisconnectGrace {
			t.Errorf("closed after %v", since)
		}

		// A dropped connection: what was outstanding comes first on the
		// next one, then what came meanwhile.
		c3 := w.open()
		c3.next(t, "hello")
		srv.Inject(Incoming{Channel: dm, User: alice, Text: "lost"})
		lost := c3.next(t, "events_api")
		srv.DropConnections()
		if srv.OpenConnections() != 0 {
			t.Errorf("open %d", srv.OpenConnections())
		}
		<-c3.done
		srv.Inject(Incoming{Channel: dm, User: alice, Text: "after"})
		c4 := w.open()
		c4.next(t, "hello")
		if e := c4.next(t, "events_api"); eventID(e) != eventID(lost) || e["retry_attempt"] != 1.0 {
			t.Errorf("after a drop %v", e)
		}
		if e := c4.next(t, "events_api"); event(e)["text"] != "after" {
			t.Errorf("then %v", e)
		}
		if srv.Connections() != 4 {
			t.Errorf("connections %d", srv.Connections())
		}
		// InjectEvent delivers any event as given.
		id := srv.InjectEvent(map[string]any{"type": "message", "subtype": "message_changed", "channel": dm})
		if e := c4.next(t, "events_api"); eventID(e) != id || event(e)["subtype"] != "message_changed" {
			t.Errorf("injected %v", e)
		}
	})
}

// An app holds at most 10 connections; the 11th is told
// too_many_websockets and closed.
func TestTooManyConnections(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Options{}, new(memnet.Network))
		for i := range maxConnections {
			if h := w.open().next(t, "hello"); h["num_connections"] != float64(i+1) {
				t.Errorf("hello %v", h)
			}
		}
		c := w.open()
		if d := c.next(t, "disconnect"); d["reason"] != "too_many_websockets" {
			t.Errorf("11th: %v", d)
		}
		<-c.done
	})
}
