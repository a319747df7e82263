package slacktest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// The Web API (docs.slack.dev/apis/web-api): methods POSTed to
// https://slack.com/api/<method> with form or JSON arguments, the token in
// an Authorization: Bearer header or a token argument, and every answer a
// JSON object with "ok", and "error" when not ok, on HTTP 200; only rate
// limits answer 429 (docs.slack.dev/apis/web-api, on evaluating responses).

// maxBody bounds a request's body; the fake's methods take text, not files.
const maxBody = 4 << 20

// errStreamingRefused is the default error of a refused chat.startStream.
// Slack documents no code for an app or workspace that may not stream:
// chat.startStream's documented errors (docs.slack.dev/reference/methods/
// chat.startStream; methods/chat/chat.startStream.json in
// github.com/slack-ruby/slack-api-ref) have none, so the fake uses this
// one, which Options.RefuseStreamingError can change (to
// "channel_type_not_supported", say, which real workspaces have answered
// outside IMs, github.com/NangoHQ/integration-templates/pull/676).
const errStreamingRefused = "feature_not_enabled"

// maxRetries is how many times an event is delivered again: Slack retries
// an event up to 3 times (docs.slack.dev/apis/events-api/
// using-http-request-urls, on retries).
const maxRetries = 3

// maxConnections is how many Socket Mode connections an app may hold at
// once: 10 (docs.slack.dev/apis/events-api/using-socket-mode; "we only allow
// 10 concurrent websocket connections per app",
// github.com/slackapi/node-slack-sdk/issues/1654); one more gets a
// too_many_websockets disconnect.
const maxConnections = 10

// tsRE is the form of a message ts, "1503435956.000247".
var tsRE = regexp.MustCompile(`^\d+\.\d+$`)

// obj is a JSON object the server sends.
type obj = map[string]any

// apiErr is an error answer: its code, and fields besides ok and error.
type apiErr struct {
	code  string
	extra obj
}

func fail(code string) *apiErr { return &apiErr{code: code} }

// missing is the answer to a call without a required argument, as Slack
// gives it for methods that check their arguments against a schema.
func missing(arg string) *apiErr {
	return &apiErr{code: "invalid_arguments", extra: obj{"response_metadata": obj{
		"messages": []string{"[ERROR] missing required field: " + arg}}}}
}

// request is one call being served.
type request struct {
	method string
	params map[string]string
	// has tells which arguments were given, empty ones too.
	has map[string]bool
	now time.Time
}

func (q *request) arg(name string) string { return q.params[name] }

// isTrue reads a boolean argument: true, or 1.
func (q *request) isTrue(name string) bool {
	v := q.params[name]
	return v == "true" || v == "1"
}

// handler serves a method under s.mu.
type handler func(s *Server, q *request) (obj, *apiErr)

// methodSpec is one method: the token it takes, and its handler.
type methodSpec struct {
	appToken bool // an app-level token; else the bot token
	h        handler
}

var methods = map[string]methodSpec{
	"auth.test":                   {h: (*Server).authTest},
	"apps.connections.open":       {appToken: true, h: (*Server).connectionsOpen},
	"chat.postMessage":            {h: (*Server).postMessage},
	"chat.update":                 {h: (*Server).update},
	"chat.delete":                 {h: (*Server).delete},
	"chat.startStream":            {h: (*Server).startStream},
	"chat.appendStream":           {h: (*Server).appendStream},
	"chat.stopStream":             {h: (*Server).stopStream},
	"assistant.threads.setStatus": {h: (*Server).setStatus},
	"conversations.info":          {h: (*Server).conversationsInfo},
	"users.info":                  {h: (*Server).usersInfo},
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return
	}
	params, has, perr := readArgs(r, body)
	token, inHeader := bearer(r)
	if token == "" {
		token = params["token"]
	}
	delete(params, "token")
	channel := params["channel"]
	if channel == "" {
		channel = params["channel_id"]
	}
	q := &request{method: method, params: params, has: has, now: now}

	s.mu.Lock()
	call := Call{At: now, Method: method, Channel: channel, Params: params, Status: http.StatusOK}
	spec, known := methods[method]
	var out obj
	var e *apiErr
	switch {
	case !known:
		e = fail("unknown_method")
	case perr != "":
		e = fail(perr)
	default:
		if code := s.checkToken(spec, token, inHeader); code != "" {
			e = fail(code)
			break
		}
		if v := s.limitLocked(method, channel, now); v.refused {
			call.Status, call.Error, call.RetryAfter = http.StatusTooManyRequests, "ratelimited", v.retryAfter
			if v.violation {
				s.viol = append(s.viol, call)
			}
			s.recordLocked(call)
			s.mu.Unlock()
			w.Header().Set("Retry-After", retryAfterHeader(v.retryAfter))
			writeJSON(w, http.StatusTooManyRequests, obj{"ok": false, "error": "ratelimited"})
			return
		}
		out, e = spec.h(s, q)
	}
	if e != nil {
		call.Error = e.code
		out = obj{"ok": false, "error": e.code}
		for k, v := range e.extra {
			out[k] = v
		}
	}
	s.recordLocked(call)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// checkToken tells whether a token may call a method: "" if so, else the
// error code. App-level tokens (xapp-) serve apps.connections.open only,
// and it takes nothing else (docs.slack.dev/authentication/tokens, on
// app-level tokens); it takes the token in the Authorization header
// only: "passing it as a POST parameter will result in an error"
// (docs.slack.dev/reference/methods/apps.connections.open), which the fake
// answers as if no token had come.
func (s *Server) checkToken(spec methodSpec, token string, inHeader bool) string {
	switch {
	case token == "":
		return "not_authed"
	case token != s.BotToken && token != s.AppToken:
		return "invalid_auth"
	case spec.appToken && token == s.BotToken, !spec.appToken && token == s.AppToken:
		return "not_allowed_token_type"
	case spec.appToken && !inHeader:
		return "not_authed"
	}
	return ""
}

// bearer is the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(t), ok && strings.TrimSpace(t) != ""
}

// readArgs reads a call's arguments from its query and its body, a form or
// a JSON object (docs.slack.dev/apis/web-api, on POST bodies). JSON values
// other than strings are kept as JSON text. The error is the code Slack
// answers for a body it cannot read.
func readArgs(r *http.Request, body []byte) (params map[string]string, has map[string]bool, code string) {
	params, has = map[string]string{}, map[string]bool{}
	set := func(k, v string) { params[k], has[k] = v, true }
	for k, v := range r.URL.Query() {
		set(k, v[0])
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params, has, ""
	}
	ct, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return params, has, "invalid_json"
		}
		for k, raw := range m {
			var str string
			switch {
			case string(raw) == "null":
			case json.Unmarshal(raw, &str) == nil:
				set(k, str)
			default:
				var buf bytes.Buffer
				_ = json.Compact(&buf, raw)
				set(k, buf.String())
			}
		}
	case "application/x-www-form-urlencoded", "text/plain":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return params, has, "invalid_form_data"
		}
		for k, v := range vals {
			set(k, v[0])
		}
	case "multipart/form-data":
		req := &http.Request{Method: http.MethodPost, Header: http.Header{"Content-Type": {r.Header.Get("Content-Type")}},
			Body: io.NopCloser(bytes.NewReader(body))}
		if mp["boundary"] == "" || req.ParseMultipartForm(maxBody) != nil {
			return params, has, "invalid_form_data"
		}
		for k, v := range req.MultipartForm.Value {
			set(k, v[0])
		}
	case "":
		return params, has, "missing_post_type"
	default:
		return params, has, "invalid_post_type"
	}
	return params, has, ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic("slacktest: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// ---- arguments ----

// channelLocked is the channel an argument names.
func (s *Server) channelLocked(id string) (*channelState, *apiErr) {
	if cs := s.channels[id]; cs != nil {
		return cs, nil
	}
	return nil, fail("channel_not_found")
}

// threadLocked checks a thread_ts argument and returns the thread it
// joins: invalid_thread_ts for one that is no ts ("[ERROR] 0 is not a
// valid thread_ts", github.com/jenkinsci/slack-plugin/issues/584),
// thread_not_found for one that names no message of the channel (the
// error of a deleted parent, github.com/slackapi/bolt-js/issues/2307).
func (s *Server) threadLocked(cs *channelState, ts string) (string, *apiErr) {
	if !tsRE.MatchString(ts) {
		return "", fail("invalid_thread_ts")
	}
	if m := cs.byTS[ts]; m == nil || m.deleted {
		return "", fail("thread_not_found")
	}
	return s.threadRootLocked(cs, ts), nil
}

// blocksArg reads a blocks argument, if any.
func blocksArg(q *request) (blockInfo, *apiErr) {
	arg := q.arg("blocks")
	if arg == "" {
		return blockInfo{}, nil
	}
	info, code := parseBlocks(arg)
	if code != "" {
		return blockInfo{}, fail(code)
	}
	return info, nil
}

// chunksText is the text of a chat.*Stream call's markdown_text chunks
// (docs.slack.dev/reference/methods/chat.startStream, "Using the chunks
// parameter"); other chunks show no text.
func chunksText(q *request) (string, *apiErr) {
	arg := q.arg("chunks")
	if arg == "" {
		return "", nil
	}
	var chunks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(arg), &chunks); err != nil {
		return "", fail("invalid_chunks")
	}
	var b strings.Builder
	for _, c := range chunks {
		if c.Type == "markdown_text" {
			b.WriteString(c.Text)
		}
	}
	return b.String(), nil
}

// botMessageLocked is a new message of the bot's.
func (s *Server) botMessageLocked(now time.Time) *message {
	return &message{ts: s.newTSLocked(now), user: s.BotUserID, botID: s.BotID, at: now}
}

// addMentions adds mass mentions found in a message's text or blocks to
// those it has had.
func addMentions(m *message, found []string) {
	m.mentions = append(m.mentions, found...)
}

// repliedLocked notes the bot's reply in a thread: it clears the
// thread's assistant status. The status lasts "if no message has been
// sent" for two minutes at most (docs.slack.dev/reference/methods/
// assistant.threads.setStatus, the status argument): the app's reply ends
// it.
func (s *Server) repliedLocked(channel, threadTS string, now time.Time) {
	if threadTS == "" {
		return
	}
	k := threadKey{channel, threadTS}
	list := s.statuses[k]
	if len(list) == 0 || list[len(list)-1].Text == "" || now.Sub(s.statusAt[k]) >= statusLifetime {
		return
	}
	s.statuses[k] = append(list, Status{At: now, Reply: true})
	s.statusAt[k] = now
}

// ---- methods ----

// authTest answers auth.test (docs.slack.dev/reference/methods/auth.test).
func (s *Server) authTest(*request) (obj, *apiErr) {
	return obj{"ok": true, "url": "https://" + strings.ToLower(s.opts.TeamName) + ".slack.com/",
		"team": s.opts.TeamName, "user": s.opts.BotName, "team_id": s.TeamID, "user_id": s.BotUserID,
		"bot_id": s.BotID, "is_enterprise_install": false}, nil
}

// connectionsOpen answers apps.connections.open with a Socket Mode URL
// whose ticket serves one connection (docs.slack.dev/reference/methods/
// apps.connections.open).
func (s *Server) connectionsOpen(*request) (obj, *apiErr) {
	ticket := randomHex(16)
	s.sock.tickets[ticket] = true
	u := "ws" + strings.TrimPrefix(s.BaseURL, "http") + "/link/?ticket=" + ticket + "&app_id=" + s.AppID
	return obj{"ok": true, "url": u}, nil
}

// postMessage answers chat.postMessage (docs.slack.dev/reference/methods/
// chat.postMessage).
func (s *Server) postMessage(q *request) (obj, *apiErr) {
	cs, e := s.channelLocked(q.arg("channel"))
	if e != nil {
		return nil, e
	}
	text, bl, e := textArgs(q)
	if e != nil {
		return nil, e
	}
	m := s.botMessageLocked(q.now)
	if ts := q.arg("thread_ts"); ts != "" {
		if m.threadTS, e = s.threadLocked(cs, ts); e != nil {
			return nil, e
		}
		m.broadcast = q.isTrue("reply_broadcast")
	}
	m.text = text
	if text == "" {
		m.text = bl.text
	}
	if bl.count > 0 {
		m.blocks = bl.raw
	}
	addMentions(m, textMentions(text, q.isTrue("link_names") || q.arg("parse") == "full"))
	addMentions(m, bl.mentions)
	s.addMessageLocked(cs, m)
	s.repliedLocked(cs.ch.ID, m.threadTS, q.now)
	if s.opts.EchoBotMessages {
		s.deliverLocked(s.botMessageEventLocked(cs, m))
	}
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts, "message": s.botMessageObject(cs, m)}, nil
}

// textArgs are the text and blocks of a message posted or updated, checked
// as chat.postMessage and chat.update check them.
func textArgs(q *request) (string, blockInfo, *apiErr) {
	bl, e := blocksArg(q)
	if e != nil {
		return "", bl, e
	}
	text := q.arg("text")
	if text == "" && bl.count == 0 {
		return "", bl, fail("no_text")
	}
	if utf8.RuneCountInString(text) > maxText {
		return "", bl, fail("msg_too_long")
	}
	return text, bl, nil
}

// messageLocked is the message a channel and ts argument name.
func (s *Server) messageLocked(q *request) (*channelState, *message, *apiErr) {
	cs, e := s.channelLocked(q.arg("channel"))
	if e != nil {
		return nil, nil, e
	}
	m := cs.byTS[q.arg("ts")]
	if m == nil || m.deleted {
		return nil, nil, fail("message_not_found")
	}
	return cs, m, nil
}

// update answers chat.update (docs.slack.dev/reference/methods/
// chat.update). Blocks not given are kept; an empty list removes them. A
// message still streaming may be updated like any other: Slack's
// documentation says nothing of it; Message.StreamingEdits counts it.
func (s *Server) update(q *request) (obj, *apiErr) {
	cs, m, e := s.messageLocked(q)
	if e != nil {
		return nil, e
	}
	if m.botID != s.BotID {
		return nil, fail("cant_update_message")
	}
	text, bl, e := textArgs(q)
	if e != nil {
		return nil, e
	}
	if bl.raw != nil {
		m.blocks = nil
		if bl.count > 0 {
			m.blocks = bl.raw
		}
	}
	m.text = text
	if text == "" {
		m.text = bl.text
	}
	m.edits++
	if m.streaming {
		m.streamingEdits++
	}
	addMentions(m, textMentions(text, q.isTrue("link_names") || q.arg("parse") == "full"))
	addMentions(m, bl.mentions)
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts, "text": m.text,
		"message": s.botMessageObject(cs, m)}, nil
}

// delete answers chat.delete (docs.slack.dev/reference/methods/
// chat.delete).
func (s *Server) delete(q *request) (obj, *apiErr) {
	cs, m, e := s.messageLocked(q)
	if e != nil {
		return nil, e
	}
	if m.botID != s.BotID {
		return nil, fail("cant_delete_message")
	}
	m.deleted = true
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts}, nil
}

// streamText reads a chat.*Stream call's markdown_text and markdown chunks.
func streamText(q *request) (string, *apiErr) {
	md := q.arg("markdown_text")
	if utf8.RuneCountInString(md) > maxMarkdown {
		// Not in the methods' documented errors; the error of a text
		// over chat.postMessage's limit.
		return "", fail("msg_too_long")
	}
	chunks, e := chunksText(q)
	if e != nil {
		return "", e
	}
	return md + chunks, nil
}

// startStream answers chat.startStream (docs.slack.dev/reference/methods/
// chat.startStream): a bot message in a thread, streaming. Outside an IM
// it needs the recipient's team and user, and answers
// missing_recipient_team_id, then missing_recipient_user_id, without
// them (the codes of its documented errors, as real apps met them:
// github.com/openclaw/openclaw/issues/21213).
func (s *Server) startStream(q *request) (obj, *apiErr) {
	if s.opts.RefuseStreaming {
		return nil, fail(s.opts.RefuseStreamingError)
	}
	cs, e := s.channelLocked(q.arg("channel"))
	if e != nil {
		return nil, e
	}
	ts := q.arg("thread_ts")
	if ts == "" {
		// Required: "Streamed messages should always be replies to a
		// user request" (same page).
		return nil, missing("thread_ts")
	}
	thread, e := s.threadLocked(cs, ts)
	if e != nil {
		return nil, e
	}
	if cs.kind() != "im" {
		switch {
		case q.arg("recipient_team_id") == "":
			return nil, fail("missing_recipient_team_id")
		case q.arg("recipient_user_id") == "":
			return nil, fail("missing_recipient_user_id")
		}
	}
	if u := q.arg("recipient_user_id"); u != "" {
		if _, ok := s.users[u]; !ok {
			return nil, fail("user_not_found")
		}
	}
	text, e := streamText(q)
	if e != nil {
		return nil, e
	}
	m := s.botMessageLocked(q.now)
	m.threadTS, m.text, m.streaming, m.streamed = thread, text, true, true
	m.recipientUserID = q.arg("recipient_user_id")
	addMentions(m, textMentions(text, false))
	s.addMessageLocked(cs, m)
	s.repliedLocked(cs.ch.ID, m.threadTS, q.now)
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts}, nil
}

// appendStream answers chat.appendStream (docs.slack.dev/reference/methods/
// chat.appendStream): markdown_text is added to the message so far.
func (s *Server) appendStream(q *request) (obj, *apiErr) {
	if !q.has["ts"] {
		return nil, missing("ts")
	}
	if !q.has["markdown_text"] && !q.has["chunks"] {
		return nil, missing("markdown_text")
	}
	text, e := streamText(q)
	if e != nil {
		return nil, e
	}
	if text == "" {
		return nil, fail("no_text")
	}
	cs, m, e := s.messageLocked(q)
	if e != nil {
		return nil, e
	}
	if !m.streaming {
		return nil, fail("message_not_in_streaming_state")
	}
	m.text += text
	m.appends++
	addMentions(m, textMentions(text, false))
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts}, nil
}

// stopStream answers chat.stopStream (docs.slack.dev/reference/methods/
// chat.stopStream): the last markdown_text is added, blocks go at the
// bottom, and the message streams no more.
func (s *Server) stopStream(q *request) (obj, *apiErr) {
	if !q.has["ts"] {
		return nil, missing("ts")
	}
	text, e := streamText(q)
	if e != nil {
		return nil, e
	}
	bl, e := blocksArg(q)
	if e != nil {
		return nil, e
	}
	cs, m, e := s.messageLocked(q)
	if e != nil {
		return nil, e
	}
	if !m.streaming {
		return nil, fail("message_not_in_streaming_state")
	}
	m.text += text
	if bl.count > 0 {
		m.blocks = bl.raw
	}
	m.streaming = false
	addMentions(m, textMentions(text, false))
	addMentions(m, bl.mentions)
	// The answer of the method's example.
	msg := obj{"type": "message", "subtype": "bot_message", "text": m.text, "bot_id": s.BotID, "ts": m.ts}
	return obj{"ok": true, "channel": cs.ch.ID, "ts": m.ts, "message": msg}, nil
}

// setStatus answers assistant.threads.setStatus
// (docs.slack.dev/reference/methods/assistant.threads.setStatus); an empty
// status clears it.
//
// An app that may not set it (Options.RefuseStatus) gets missing_scope,
// one of the method's documented errors, with needed and provided as Slack
// gives them (docs.slack.dev/tools/node-slack-sdk/reference/web-api/
// type-aliases/AssistantThreadsSetStatusResponse), as an app with
// chat:write only got it before chat:write became enough
// (docs.slack.dev/changelog/2026/03/05/set-status-scope-update; such apps
// met missing_scope, github.com/openclaw/openclaw/pull/19347).
func (s *Server) setStatus(q *request) (obj, *apiErr) {
	if s.opts.RefuseStatus {
		return nil, &apiErr{code: "missing_scope", extra: obj{"needed": "assistant:write",
			"provided": "chat:write"}}
	}
	for _, a := range []string{"channel_id", "thread_ts", "status"} {
		if !q.has[a] {
			return nil, missing(a)
		}
	}
	cs, e := s.channelLocked(q.arg("channel_id"))
	if e != nil {
		return nil, e
	}
	ts := q.arg("thread_ts")
	if m := cs.byTS[ts]; !tsRE.MatchString(ts) || m == nil {
		return nil, fail("invalid_thread_ts")
	}
	k := threadKey{cs.ch.ID, ts}
	s.statuses[k] = append(s.statuses[k], Status{Text: q.arg("status"), At: q.now})
	s.statusAt[k] = q.now
	return obj{"ok": true}, nil
}

// conversationsInfo answers conversations.info
// (docs.slack.dev/reference/methods/conversations.info).
func (s *Server) conversationsInfo(q *request) (obj, *apiErr) {
	cs, e := s.channelLocked(q.arg("channel"))
	if e != nil {
		return nil, e
	}
	return obj{"ok": true, "channel": s.channelObject(cs)}, nil
}

// usersInfo answers users.info (docs.slack.dev/reference/methods/
// users.info).
func (s *Server) usersInfo(q *request) (obj, *apiErr) {
	u, ok := s.users[q.arg("user")]
	if !ok {
		return nil, fail("user_not_found")
	}
	return obj{"ok": true, "user": s.userObject(u)}, nil
}
