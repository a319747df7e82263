package discordtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The REST API (discord.com/developers/docs/reference): JSON under
// /api/v10, "Authorization: Bot <token>" on every call but interactions'
// callbacks and webhooks, errors as {"message", "code"} with the JSON
// error codes of discord.com/developers/docs/topics/opcodes-and-status-codes#json.

// maxContent is the longest message content: "up to 2000 characters"
// (discord.com/developers/docs/resources/message#create-message), counted
// in code points: "the API calculates length based on the number of
// codepoints in the string" (Discord's answer in
// github.com/discord/discord-api-docs/issues/1315).
const maxContent = 2000

// maxThreadName is the longest thread name: 1-100 characters
// (discord.com/developers/docs/resources/channel#start-thread-from-message).
const maxThreadName = 100

// autoArchiveDurations are the values auto_archive_duration takes, in
// minutes (same page).
var autoArchiveDurations = []int{60, 1440, 4320, 10080}

// maxBody bounds a request body; attachments to bots are "up to 10 MiB"
// by default (discord.com/developers/docs/reference#uploading-files),
// with room for the form around them.
const maxBody = 11 << 20

// The message list's limit: "Max number of messages to return (1-100)",
// 50 by default (discord.com/developers/docs/resources/message#get-channel-messages).
const (
	defaultMessageLimit = 50
	maxMessageLimit     = 100
)

// Command limits (discord.com/developers/docs/interactions/
// application-commands#application-command-object): a name of 1-32
// characters, a description of 1-100 for a CHAT_INPUT command, and 100
// global CHAT_INPUT commands ("Registering a Command").
const (
	maxCommandName        = 32
	maxCommandDescription = 100
	maxGlobalCommands     = 100
)

// maxAllowedMentionIDs is the most users or roles allowed_mentions may
// list: "Max size of 100" (docs: resources/message, "Allowed Mentions
// Structure").
const maxAllowedMentionIDs = 100

// commandNameRE is the name rule of a CHAT_INPUT command (same page),
// lowercase as it requires.
var commandNameRE = regexp.MustCompile(`^[-_'\p{Ll}\p{Lo}\p{N}\p{Devanagari}\p{Thai}]{1,32}$`)

// apiErr is an error answer.
type apiErr struct {
	status int
	body   apiErrorBody
}

func newErr(status, code int, msg string) *apiErr {
	return &apiErr{status: status, body: apiErrorBody{Message: msg, Code: code}}
}

// formErr is a 400 "Invalid Form Body" (50035) with one field error; the
// field is a dotted path ("message_reference", "data.content", "0.name").
func formErr(field, code, msg string) *apiErr {
	leaf := map[string]any{"_errors": []map[string]string{{"code": code, "message": msg}}}
	parts := strings.Split(field, ".")
	var node any = leaf
	for i := len(parts) - 1; i >= 0; i-- {
		node = map[string]any{parts[i]: node}
	}
	return &apiErr{status: 400, body: apiErrorBody{Message: "Invalid Form Body", Code: 50035, Errors: node.(map[string]any)}}
}

var (
	errUnknownChannel     = newErr(404, 10003, "Unknown Channel")
	errUnknownMessage     = newErr(404, 10008, "Unknown Message")
	errUnknownEmoji       = newErr(400, 10014, "Unknown Emoji")
	errUnknownWebhook     = newErr(404, 10015, "Unknown Webhook")
	errUnknownInteraction = newErr(404, 10062, "Unknown interaction")
	errMissingAccess      = newErr(403, 50001, "Missing Access")
	errEditOthers         = newErr(403, 50005, "Cannot edit a message authored by another user")
	errEmptyMessage       = newErr(400, 50006, "Cannot send an empty message")
	errInvalidToken       = newErr(401, 50027, "Invalid Webhook Token")
	errInvalidJSON        = newErr(400, 50109, "The request body contains invalid JSON.")
	errDMAction           = newErr(403, 50003, "Cannot execute action on a DM channel")
	errChannelType        = newErr(400, 50024, "Cannot execute action on this channel type")
	errAcknowledged       = newErr(400, 40060, "Interaction has already been acknowledged.")
	errThreadExists       = newErr(400, 160004, "A thread has already been created for this message")
)

// request is one call being served.
type request struct {
	r      *http.Request
	body   []byte
	params map[string]string
	now    time.Time
	// files are the files of a multipart body (files[n]).
	files []Attachment
	// json is the JSON part of the body (the body, or payload_json).
	json []byte
}

// handler serves a route under s.mu: a status and a body (nil: none).
type handler func(s *Server, q *request) (int, any, *apiErr)

// route is one route of the API.
type route struct {
	method, path string
	// noAuth: interactions' callbacks and webhooks are authenticated by
	// their token, not the bot's.
	noAuth bool
	h      handler
}

func (rt *route) name() string { return rt.method + " " + rt.path }

var routes = []*route{
	{method: "GET", path: "/gateway", h: (*Server).getGateway},
	{method: "GET", path: "/gateway/bot", h: (*Server).getGateway},
	{method: "GET", path: "/users/@me", h: (*Server).getMe},
	{method: "GET", path: "/oauth2/applications/@me", h: (*Server).getApplication},
	{method: "GET", path: "/applications/@me", h: (*Server).getApplication},
	{method: "GET", path: "/channels/{channel.id}", h: (*Server).getChannel},
	{method: "GET", path: "/channels/{channel.id}/messages", h: (*Server).listMessages},
	{method: "POST", path: "/channels/{channel.id}/messages", h: (*Server).createMessage},
	{method: "GET", path: "/channels/{channel.id}/messages/{message.id}", h: (*Server).getMessage},
	{method: "PATCH", path: "/channels/{channel.id}/messages/{message.id}", h: (*Server).editMessage},
	{method: "DELETE", path: "/channels/{channel.id}/messages/{message.id}", h: (*Server).deleteMessage},
	{method: "POST", path: "/channels/{channel.id}/typing", h: (*Server).triggerTyping},
	{method: "POST", path: "/channels/{channel.id}/messages/{message.id}/threads", h: (*Server).startThread},
	{method: "PUT", path: "/channels/{channel.id}/messages/{message.id}/reactions/{emoji}/@me", h: (*Server).addReaction},
	{method: "DELETE", path: "/channels/{channel.id}/messages/{message.id}/reactions/{emoji}/@me", h: (*Server).deleteReaction},
	{method: "GET", path: "/applications/{application.id}/commands", h: (*Server).getCommands},
	{method: "PUT", path: "/applications/{application.id}/commands", h: (*Server).putCommands},
	{method: "POST", path: "/applications/{application.id}/commands", h: (*Server).postCommand},
	{method: "POST", path: "/interactions/{interaction.id}/{interaction.token}/callback", noAuth: true, h: (*Server).interactionCallback},
	{method: "GET", path: "/webhooks/{application.id}/{interaction.token}/messages/@original", noAuth: true, h: (*Server).getOriginal},
	{method: "PATCH", path: "/webhooks/{application.id}/{interaction.token}/messages/@original", noAuth: true, h: (*Server).editOriginal},
	{method: "DELETE", path: "/webhooks/{application.id}/{interaction.token}/messages/@original", noAuth: true, h: (*Server).deleteOriginal},
	{method: "POST", path: "/webhooks/{application.id}/{interaction.token}", noAuth: true, h: (*Server).followup},
}

// match finds the route of a path: the route, its parameters, and
// whether the path exists under another method.
func match(method string, segs []string) (*route, map[string]string, bool) {
	other := false
	for _, rt := range routes {
		pattern := strings.Split(strings.TrimPrefix(rt.path, "/"), "/")
		if len(pattern) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, p := range pattern {
			if strings.HasPrefix(p, "{") {
				if segs[i] == "" {
					ok = false
					break
				}
				params[strings.Trim(p, "{}")] = segs[i]
			} else if p != segs[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if rt.method == method {
			return rt, params, false
		}
		other = true
	}
	return nil, nil, other
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/gateway" || r.URL.Path == "/gateway/":
		s.serveGateway(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/attachments/"):
		s.serveAttachment(w, r, strings.TrimPrefix(r.URL.Path, "/attachments/"))
		return
	}
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	call := Call{At: now, Method: r.Method, Route: r.Method + " " + r.URL.Path, Path: r.URL.Path, Body: body}
	if err != nil {
		return
	}
	if len(body) > maxBody {
		s.finish(w, &call, nil, 413, apiErrorBody{Message: "Request entity too large", Code: 40005})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/v10/")
	if !ok {
		s.finish(w, &call, nil, 404, apiErrorBody{Message: "404: Not Found", Code: 0})
		return
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for i, seg := range segs {
		if u, err := url.PathUnescape(seg); err == nil {
			segs[i] = u
		}
	}
	rt, params, other := match(r.Method, segs)
	if rt == nil {
		if other {
			s.finish(w, &call, nil, 405, apiErrorBody{Message: "405: Method Not Allowed", Code: 0})
		} else {
			s.finish(w, &call, nil, 404, apiErrorBody{Message: "404: Not Found", Code: 0})
		}
		return
	}
	call.Route = rt.name()
	if !rt.noAuth && r.Header.Get("Authorization") != "Bot "+s.Token {
		s.finish(w, &call, nil, 401, apiErrorBody{Message: "401: Unauthorized", Code: 0})
		return
	}
	q := &request{r: r, body: body, params: params, now: now}

	s.mu.Lock()
	major := params["channel.id"]
	call.ChannelID = params["channel.id"]
	switch {
	case params["interaction.id"] != "":
		major = params["interaction.id"] + "/" + params["interaction.token"]
		if it := s.interactions[params["interaction.id"]]; it != nil {
			call.ChannelID = it.ChannelID
		}
	case params["interaction.token"] != "":
		major = params["application.id"] + "/" + params["interaction.token"]
		if it := s.interactionByTokenLocked(params["interaction.token"]); it != nil {
			call.ChannelID = it.ChannelID
		}
	case major == "":
		major = params["application.id"]
	}
	v := s.limitLocked(rt.name(), major, call.ChannelID, !rt.noAuth, now)
	if v.refused {
		call.Status, call.RetryAfter = 429, v.retryAfter
		if v.violation {
			s.violations = append(s.violations, call)
		}
		s.recordLocked(call)
		s.mu.Unlock()
		h := w.Header()
		for k, vals := range v.headers {
			h[k] = vals
		}
		scope := "user"
		if v.global {
			scope = "global"
		}
		h.Set("X-RateLimit-Scope", scope)
		h.Set("Retry-After", retryAfterHeader(v.retryAfter))
		writeJSON(w, 429, apiRateLimited{Message: "You are being rate limited.", RetryAfter: seconds(v.retryAfter), Global: v.global})
		return
	}
	var status int
	var out any
	aerr := decodeBody(q)
	if aerr == nil {
		status, out, aerr = rt.h(s, q)
	}
	if aerr != nil {
		status, out = aerr.status, aerr.body
	}
	call.Status = status
	s.recordLocked(call)
	s.mu.Unlock()
	for k, vals := range v.headers {
		w.Header()[k] = vals
	}
	if out == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, out)
}

// finish records a call answered before the routes and writes the answer.
func (s *Server) finish(w http.ResponseWriter, call *Call, h http.Header, status int, body any) {
	call.Status = status
	s.mu.Lock()
	s.recordLocked(*call)
	s.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic("discordtest: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// decodeBody splits a body into its JSON and its files: a multipart
// body carries the JSON in payload_json and the files in files[n]
// (discord.com/developers/docs/reference#uploading-files).
func decodeBody(q *request) *apiErr {
	q.json = q.body
	ct, params, _ := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return nil
	}
	r := q.r.Clone(q.r.Context())
	r.Body = io.NopCloser(bytes.NewReader(q.body))
	r.Header.Set("Content-Type", mime.FormatMediaType(ct, params))
	if err := r.ParseMultipartForm(maxBody); err != nil {
		return newErr(400, 50035, "Invalid Form Body")
	}
	q.json = []byte(r.FormValue("payload_json"))
	for i := 0; i < 10; i++ {
		fs := r.MultipartForm.File[fmt.Sprintf("files[%d]", i)]
		if len(fs) == 0 {
			continue
		}
		f, err := fs[0].Open()
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(f)
		f.Close()
		q.files = append(q.files, Attachment{Filename: fs[0].Filename, ContentType: fs[0].Header.Get("Content-Type"), Data: data})
	}
	return nil
}

// unmarshal decodes a request's JSON: malformed JSON is 50109, a field of
// the wrong type a form error on that field.
func unmarshal(data []byte, v any) *apiErr {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	err := json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "_root"
		}
		return formErr(field, "MODEL_TYPE_CONVERT", fmt.Sprintf("Could not interpret %q as %s.", te.Value, te.Type))
	default:
		return errInvalidJSON
	}
}

// ---- gateway, users, applications ----

func (s *Server) getGateway(*request) (int, any, *apiErr) {
	return 200, map[string]any{
		"url":    s.wsURL,
		"shards": 1,
		// The example of discord.com/developers/docs/events/gateway#get-gateway-bot.
		"session_start_limit": map[string]int{"total": 1000, "remaining": max(1000-s.gw.identifies, 0),
			"reset_after": 14400000, "max_concurrency": 1},
	}, nil
}

func (s *Server) getMe(*request) (int, any, *apiErr) { return 200, s.botObject(), nil }

// getApplication answers with the application object; its flags say
// whether the Message Content intent is on, as for an unverified app
// (GATEWAY_MESSAGE_CONTENT_LIMITED, docs: resources/application,
// "Application Flags").
func (s *Server) getApplication(*request) (int, any, *apiErr) {
	flags := 1 << 19
	if s.opts.RefuseMessageContent {
		flags = 0
	}
	return 200, map[string]any{
		"id": s.ApplicationID, "name": s.Bot.Username, "icon": nil, "description": "",
		"bot_public": true, "bot_require_code_grant": false, "verify_key": randomToken(32),
		"flags": flags, "bot": userObject(s.Bot), "team": nil, "summary": "",
	}, nil
}

// ---- channels and messages ----

func (s *Server) channelLocked(q *request) (*channelState, *apiErr) {
	cs := s.channels[q.params["channel.id"]]
	if cs == nil {
		return nil, errUnknownChannel
	}
	return cs, nil
}

func (s *Server) messageLocked(cs *channelState, id string) *message {
	if m := s.messages[id]; m != nil && m.channelID == cs.ch.ID && !m.deleted && m.flags&flagEphemeral == 0 {
		return m
	}
	return nil
}

// routeMessageLocked finds the channel and the message a route names,
// or says they are unknown.
func (s *Server) routeMessageLocked(q *request) (*channelState, *message, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return nil, nil, aerr
	}
	m := s.messageLocked(cs, q.params["message.id"])
	if m == nil {
		return nil, nil, errUnknownMessage
	}
	return cs, m, nil
}

func (s *Server) getChannel(q *request) (int, any, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	return 200, s.channelObjectLocked(cs), nil
}

// snowflakeLess compares two snowflakes as numbers.
func snowflakeLess(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return a < b
	}
	return x < y
}

// listMessages returns a channel's messages newest first: the newest
// ones, those just before "before", or those just after "after".
func (s *Server) listMessages(q *request) (int, any, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	query := q.r.URL.Query()
	limit := defaultMessageLimit
	if v := query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return 0, nil, formErr("limit", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not int.", v))
		case n < 1:
			return 0, nil, formErr("limit", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.")
		case n > maxMessageLimit:
			return 0, nil, formErr("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
		}
		limit = n
	}
	var msgs []*message
	for _, m := range cs.msgs {
		if !m.deleted && m.flags&flagEphemeral == 0 {
			msgs = append(msgs, m)
		}
	}
	after, before, around := query.Get("after"), query.Get("before"), query.Get("around")
	switch {
	case after != "":
		i := 0
		for i < len(msgs) && !snowflakeLess(after, msgs[i].id) {
			i++
		}
		msgs = msgs[i:min(len(msgs), i+limit)]
	case before != "":
		i := len(msgs)
		for i > 0 && !snowflakeLess(msgs[i-1].id, before) {
			i--
		}
		msgs = msgs[max(0, i-limit):i]
	case around != "":
		i := 0
		for i < len(msgs) && snowflakeLess(msgs[i].id, around) {
			i++
		}
		lo := max(0, i-limit/2)
		msgs = msgs[lo:min(len(msgs), lo+limit)]
	default:
		msgs = msgs[max(0, len(msgs)-limit):]
	}
	out := []apiMessage{}
	for i := len(msgs) - 1; i >= 0; i-- {
		out = append(out, s.messageObjectLocked(msgs[i]))
	}
	return 200, out, nil
}

func (s *Server) getMessage(q *request) (int, any, *apiErr) {
	_, m, aerr := s.routeMessageLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	return 200, s.messageObjectLocked(m), nil
}

// allowedMentionsBody is the allowed mentions object as sent.
type allowedMentionsBody struct {
	Parse       []string `json:"parse"`
	Users       []string `json:"users"`
	Roles       []string `json:"roles"`
	RepliedUser bool     `json:"replied_user"`
}

// check validates allowed mentions as Discord does: known parse types,
// users and roles not both in parse and listed, 100 ids at most.
func (a *allowedMentionsBody) check(prefix string) (*AllowedMentions, *apiErr) {
	if a == nil {
		return nil, nil
	}
	for i, p := range a.Parse {
		if p != "users" && p != "roles" && p != "everyone" {
			return nil, formErr(fmt.Sprintf("%sallowed_mentions.parse.%d", prefix, i), "BASE_TYPE_CHOICES",
				"Value must be one of ('roles', 'users', 'everyone').")
		}
	}
	for _, kind := range []struct {
		name string
		ids  []string
	}{{"users", a.Users}, {"roles", a.Roles}} {
		if len(kind.ids) > 0 && slices.Contains(a.Parse, kind.name) {
			return nil, formErr(prefix+"allowed_mentions", "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
				fmt.Sprintf("parse:[%q] and %s: [ids...] are mutually exclusive.", kind.name, kind.name))
		}
		if len(kind.ids) > maxAllowedMentionIDs {
			return nil, formErr(prefix+"allowed_mentions."+kind.name, "BASE_TYPE_MAX_LENGTH",
				"Must be 100 or fewer in length.")
		}
	}
	return &AllowedMentions{Parse: slices.Clone(a.Parse), Users: slices.Clone(a.Users),
		Roles: slices.Clone(a.Roles), RepliedUser: a.RepliedUser}, nil
}

// messageBody is what creating or editing a message takes (docs:
// resources/message, "Create Message" and "Edit Message"); fields the fake
// does not use are ignored.
type messageBody struct {
	Content          *string              `json:"content"`
	Embeds           []json.RawMessage    `json:"embeds"`
	StickerIDs       []string             `json:"sticker_ids"`
	Flags            int                  `json:"flags"`
	AllowedMentions  *allowedMentionsBody `json:"allowed_mentions"`
	MessageReference *struct {
		MessageID       string `json:"message_id"`
		ChannelID       string `json:"channel_id"`
		FailIfNotExists *bool  `json:"fail_if_not_exists"`
	} `json:"message_reference"`
	// Nonce (an integer or a string of up to 25 characters) with
	// EnforceNonce makes a second create with the same nonce return the
	// first message (discord.com/developers/docs/resources/message#create-message).
	Nonce        json.RawMessage `json:"nonce"`
	EnforceNonce bool            `json:"enforce_nonce"`
}

// nonceWindow is how long an enforced nonce is remembered: "within the
// past few minutes" (same page); taken as five.
const nonceWindow = 5 * time.Minute

// nonce is a create body's nonce as text, "" for none.
func (b *messageBody) nonce() string {
	var v any
	if len(b.Nonce) == 0 || json.Unmarshal(b.Nonce, &v) != nil || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// checkContent checks a content's length.
func checkContent(field, content string) *apiErr {
	if utf8.RuneCountInString(content) > maxContent {
		return formErr(field, "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", maxContent))
	}
	return nil
}

// newBotMessageLocked checks a message body and makes the bot's message
// of it, not stored yet. prefix is the fields' path ("data." in a
// callback).
func (s *Server) newBotMessageLocked(cs *channelState, b *messageBody, files []Attachment, prefix string, now time.Time) (*message, *apiErr) {
	content := ""
	if b.Content != nil {
		content = *b.Content
	}
	if aerr := checkContent(prefix+"content", content); aerr != nil {
		return nil, aerr
	}
	if strings.TrimSpace(content) == "" && len(b.Embeds) == 0 && len(b.StickerIDs) == 0 && len(files) == 0 {
		return nil, errEmptyMessage
	}
	allowed, aerr := b.AllowedMentions.check(prefix)
	if aerr != nil {
		return nil, aerr
	}
	m := &message{channelID: cs.ch.ID, author: s.Bot, content: content, at: now, allowed: allowed,
		flags: b.Flags & (flagEphemeral | 1<<2 | 1<<12)} // EPHEMERAL, SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS
	if ref := b.MessageReference; ref != nil && ref.MessageID != "" {
		fail := ref.FailIfNotExists == nil || *ref.FailIfNotExists
		r := s.messageLocked(cs, ref.MessageID)
		switch {
		case r != nil && (ref.ChannelID == "" || ref.ChannelID == cs.ch.ID):
			m.replyTo, m.replyKnown, m.typ = ref.MessageID, true, 19
		case fail:
			return nil, formErr(prefix+"message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
		}
	}
	for _, f := range files {
		a := &attachment{id: s.snowflakeLocked(now), Attachment: f}
		s.attachments[a.id] = a
		m.attachments = append(m.attachments, a)
	}
	m.id = s.snowflakeLocked(now)
	return m, nil
}

func (s *Server) createMessage(q *request) (int, any, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var b messageBody
	if aerr := unmarshal(q.json, &b); aerr != nil {
		return 0, nil, aerr
	}
	b.Flags &^= flagEphemeral // only interactions' messages may be ephemeral
	nonce := b.nonce()
	if len(nonce) > 25 {
		return 0, nil, formErr("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
	}
	if b.EnforceNonce && nonce != "" {
		for _, m := range cs.msgs {
			if m.nonce == nonce && !m.deleted && q.now.Sub(m.at) < nonceWindow {
				return 200, s.messageObjectLocked(m), nil
			}
		}
	}
	m, aerr := s.newBotMessageLocked(cs, &b, q.files, "", q.now)
	if aerr != nil {
		return 0, nil, aerr
	}
	m.nonce = nonce
	s.addMessageLocked(cs, m)
	return 200, s.messageObjectLocked(m), nil
}

// editLocked applies an edit body to a message.
func (s *Server) editLocked(m *message, b *messageBody, files []Attachment, prefix string, now time.Time) *apiErr {
	content := m.content
	if b.Content != nil {
		content = *b.Content
		if aerr := checkContent(prefix+"content", content); aerr != nil {
			return aerr
		}
	}
	if strings.TrimSpace(content) == "" && len(b.Embeds) == 0 && len(m.attachments) == 0 && len(files) == 0 {
		return errEmptyMessage
	}
	if b.AllowedMentions != nil {
		allowed, aerr := b.AllowedMentions.check(prefix)
		if aerr != nil {
			return aerr
		}
		m.allowed = allowed
	}
	for _, f := range files {
		a := &attachment{id: s.snowflakeLocked(now), Attachment: f}
		s.attachments[a.id] = a
		m.attachments = append(m.attachments, a)
	}
	m.content, m.edited = content, now
	m.flags &^= flagLoading
	m.edits++
	cs := s.channels[m.channelID]
	if m.flags&flagEphemeral == 0 {
		s.dispatchLocked(s.messageIntent(cs), "MESSAGE_UPDATE", func(sess *session) any { return s.messageEventLocked(m, sess) })
	}
	return nil
}

func (s *Server) editMessage(q *request) (int, any, *apiErr) {
	_, m, aerr := s.routeMessageLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var b messageBody
	if aerr := unmarshal(q.json, &b); aerr != nil {
		return 0, nil, aerr
	}
	if m.author.ID != s.Bot.ID {
		return 0, nil, errEditOthers
	}
	if aerr := s.editLocked(m, &b, q.files, "", q.now); aerr != nil {
		return 0, nil, aerr
	}
	return 200, s.messageObjectLocked(m), nil
}

// deleteMessageLocked deletes a message and dispatches MESSAGE_DELETE.
func (s *Server) deleteMessageLocked(cs *channelState, m *message) {
	m.deleted = true
	if m.flags&flagEphemeral != 0 {
		return
	}
	s.dispatchLocked(s.messageIntent(cs), "MESSAGE_DELETE", func(*session) any {
		d := map[string]string{"id": m.id, "channel_id": m.channelID}
		if cs.ch.GuildID != "" {
			d["guild_id"] = cs.ch.GuildID
		}
		return d
	})
}

func (s *Server) deleteMessage(q *request) (int, any, *apiErr) {
	cs, m, aerr := s.routeMessageLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	if cs.ch.Type == ChannelDM && m.author.ID != s.Bot.ID {
		return 0, nil, errDMAction
	}
	s.deleteMessageLocked(cs, m)
	return 204, nil, nil
}

func (s *Server) triggerTyping(q *request) (int, any, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	s.typing[cs.ch.ID] = append(s.typing[cs.ch.ID], q.now)
	return 204, nil, nil
}

// startThread starts a public thread from a message; the thread's id is
// the message's: "The id of the created thread will be the same as the
// id of the source message" (docs: resources/channel, "Start Thread from
// Message").
func (s *Server) startThread(q *request) (int, any, *apiErr) {
	cs, aerr := s.channelLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var b struct {
		Name                string `json:"name"`
		AutoArchiveDuration int    `json:"auto_archive_duration"`
	}
	if aerr := unmarshal(q.json, &b); aerr != nil {
		return 0, nil, aerr
	}
	if cs.ch.Type != ChannelGuildText && cs.ch.Type != 5 { // 5: announcement channel
		return 0, nil, errChannelType
	}
	m := s.messageLocked(cs, q.params["message.id"])
	switch n := utf8.RuneCountInString(b.Name); {
	case m == nil:
		return 0, nil, errUnknownMessage
	case m.thread != "":
		return 0, nil, errThreadExists
	case n == 0:
		return 0, nil, formErr("name", "BASE_TYPE_REQUIRED", "This field is required")
	case n > maxThreadName:
		return 0, nil, formErr("name", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", maxThreadName))
	case b.AutoArchiveDuration != 0 && !slices.Contains(autoArchiveDurations, b.AutoArchiveDuration):
		return 0, nil, formErr("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")
	}
	th := s.addChannelLocked(Channel{ID: m.id, GuildID: cs.ch.GuildID, Name: b.Name, ParentID: cs.ch.ID, Type: ChannelPublicThread}, false)
	if b.AutoArchiveDuration != 0 {
		th.autoArch = b.AutoArchiveDuration
	}
	th.createdAt = q.now
	m.thread = th.ch.ID
	m.flags |= flagHasThread
	s.dispatchLocked(IntentGuilds, "THREAD_CREATE", func(*session) any {
		c := s.channelObjectLocked(th)
		c.NewlyCreated = true
		return c
	})
	return 201, s.channelObjectLocked(th), nil
}

// reactionTarget finds the message and the emoji of a reaction route.
func (s *Server) reactionTarget(q *request) (*channelState, *message, string, *apiErr) {
	cs, m, aerr := s.routeMessageLocked(q)
	if aerr != nil {
		return nil, nil, "", aerr
	}
	emoji := q.params["emoji"]
	if name, id, custom := strings.Cut(emoji, ":"); emoji == "" || (custom && (name == "" || id == "")) {
		return nil, nil, "", errUnknownEmoji
	}
	return cs, m, emoji, nil
}

// reactionIntent is the intent a channel's reaction events need.
func reactionIntent(cs *channelState) int {
	if cs.ch.Type == ChannelDM {
		return IntentDirectMessageReaction
	}
	return IntentGuildMessageReactions
}

func (s *Server) reactionEvent(cs *channelState, m *message, emoji string) map[string]any {
	e := apiEmoji{Name: emoji}
	if name, id, ok := strings.Cut(emoji, ":"); ok {
		e = apiEmoji{ID: strPtr(id), Name: name}
	}
	d := map[string]any{"user_id": s.Bot.ID, "channel_id": cs.ch.ID, "message_id": m.id, "emoji": e, "burst": false, "type": 0}
	if cs.ch.GuildID != "" {
		d["guild_id"] = cs.ch.GuildID
	}
	return d
}

func (s *Server) addReaction(q *request) (int, any, *apiErr) {
	cs, m, emoji, aerr := s.reactionTarget(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	if !slices.Contains(m.reactions, emoji) {
		m.reactions = append(m.reactions, emoji)
		s.dispatchLocked(reactionIntent(cs), "MESSAGE_REACTION_ADD", func(*session) any { return s.reactionEvent(cs, m, emoji) })
	}
	return 204, nil, nil
}

func (s *Server) deleteReaction(q *request) (int, any, *apiErr) {
	cs, m, emoji, aerr := s.reactionTarget(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	if i := slices.Index(m.reactions, emoji); i >= 0 {
		m.reactions = slices.Delete(m.reactions, i, i+1)
		s.dispatchLocked(reactionIntent(cs), "MESSAGE_REACTION_REMOVE", func(*session) any { return s.reactionEvent(cs, m, emoji) })
	}
	return 204, nil, nil
}

// ---- application commands ----

// commandBody is a command as registered (docs: interactions/
// application-commands, "Create Global Application Command").
type commandBody struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Type        int               `json:"type"`
	Options     []json.RawMessage `json:"options"`
}

func (s *Server) checkApp(q *request) *apiErr {
	if q.params["application.id"] != s.ApplicationID {
		return errMissingAccess
	}
	return nil
}

// checkCommand validates a command; prefix is its path in the form.
func checkCommand(c *commandBody, prefix string) *apiErr {
	if c.Type == 0 {
		c.Type = 1
	}
	name := utf8.RuneCountInString(c.Name)
	switch {
	case name == 0:
		return formErr(prefix+"name", "BASE_TYPE_REQUIRED", "This field is required")
	case name > maxCommandName:
		return formErr(prefix+"name", "BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", maxCommandName))
	case c.Type == 1 && !commandNameRE.MatchString(c.Name):
		return formErr(prefix+"name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
	}
	if c.Type == 1 {
		if n := utf8.RuneCountInString(c.Description); n == 0 || n > maxCommandDescription {
			return formErr(prefix+"description", "BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", maxCommandDescription))
		}
	}
	return nil
}

// upsertCommand returns the command c registers: the one of list of the
// same name and type, updated, or a new one.
func (s *Server) upsertCommand(list []*apiCommand, c *commandBody, now time.Time) *apiCommand {
	for _, old := range list {
		if old.Name == c.Name && old.Type == c.Type {
			old.Description, old.Options, old.Version = c.Description, c.Options, s.snowflakeLocked(now)
			return old
		}
	}
	nc := &apiCommand{ID: s.snowflakeLocked(now), Type: c.Type, ApplicationID: s.ApplicationID, Name: c.Name,
		Description: c.Description, Options: c.Options}
	nc.Version = nc.ID
	return nc
}

func (s *Server) getCommands(q *request) (int, any, *apiErr) {
	if aerr := s.checkApp(q); aerr != nil {
		return 0, nil, aerr
	}
	out := []apiCommand{}
	for _, c := range s.commands {
		out = append(out, *c)
	}
	return 200, out, nil
}

func (s *Server) putCommands(q *request) (int, any, *apiErr) {
	if aerr := s.checkApp(q); aerr != nil {
		return 0, nil, aerr
	}
	var cmds []commandBody
	if len(bytes.TrimSpace(q.json)) == 0 {
		return 0, nil, errInvalidJSON
	}
	if aerr := unmarshal(q.json, &cmds); aerr != nil {
		return 0, nil, aerr
	}
	if len(cmds) > maxGlobalCommands {
		return 0, nil, formErr("_root", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", maxGlobalCommands))
	}
	var list []*apiCommand
	for i := range cmds {
		if aerr := checkCommand(&cmds[i], strconv.Itoa(i)+"."); aerr != nil {
			return 0, nil, aerr
		}
		for j := range i {
			if cmds[j].Name == cmds[i].Name && cmds[j].Type == cmds[i].Type {
				return 0, nil, formErr(strconv.Itoa(i)+".name", "APPLICATION_COMMANDS_DUPLICATE_NAME", fmt.Sprintf("Application command names must be unique: %s", cmds[i].Name))
			}
		}
		// A command that stays keeps its id.
		var keep []*apiCommand
		for _, old := range s.commands {
			if old.Name == cmds[i].Name && old.Type == cmds[i].Type {
				keep = append(keep, old)
			}
		}
		list = append(list, s.upsertCommand(keep, &cmds[i], q.now))
	}
	s.commands = list
	out := []apiCommand{}
	for _, c := range list {
		out = append(out, *c)
	}
	return 200, out, nil
}

func (s *Server) postCommand(q *request) (int, any, *apiErr) {
	if aerr := s.checkApp(q); aerr != nil {
		return 0, nil, aerr
	}
	var c commandBody
	if aerr := unmarshal(q.json, &c); aerr != nil {
		return 0, nil, aerr
	}
	if aerr := checkCommand(&c, ""); aerr != nil {
		return 0, nil, aerr
	}
	nc := s.upsertCommand(s.commands, &c, q.now)
	if slices.Contains(s.commands, nc) {
		return 200, *nc, nil
	}
	if len(s.commands) >= maxGlobalCommands {
		return 0, nil, newErr(400, 30032, "Maximum number of application commands reached (100)")
	}
	s.commands = append(s.commands, nc)
	return 201, *nc, nil
}

// ---- interactions ----

func (s *Server) interactionByTokenLocked(token string) *interaction {
	for _, it := range s.interactions {
		if it.token == token {
			return it
		}
	}
	return nil
}

// record records an answer to an interaction.
func (it *interaction) record(r InteractionResponse) { it.responses = append(it.responses, r) }

// interactionCallback answers an interaction: type 4 with a message, 5
// deferred (the user sees "thinking" until @original is edited), 1 pong.
func (s *Server) interactionCallback(q *request) (int, any, *apiErr) {
	it := s.interactions[q.params["interaction.id"]]
	if it == nil || it.token != q.params["interaction.token"] {
		return 0, nil, errUnknownInteraction
	}
	var b struct {
		Type int          `json:"type"`
		Data *messageBody `json:"data"`
	}
	aerr := unmarshal(q.json, &b)
	resp := InteractionResponse{At: q.now, Kind: "callback", Type: b.Type}
	if b.Data != nil && b.Data.Content != nil {
		resp.Content = *b.Data.Content
		resp.Flags = b.Data.Flags
	}
	fail := func(e *apiErr) (int, any, *apiErr) {
		resp.Status = e.status
		it.record(resp)
		return 0, nil, e
	}
	switch {
	case q.now.Sub(it.at) > interactionDeadline:
		return fail(errUnknownInteraction)
	case aerr != nil:
		return fail(aerr)
	case it.acked:
		return fail(errAcknowledged)
	}
	cs := s.channels[it.ChannelID]
	if cs == nil {
		cs = s.addChannelLocked(Channel{ID: it.ChannelID, GuildID: it.GuildID, Type: ChannelDM, Recipient: &it.User}, false)
	}
	switch b.Type {
	case 1:
	case 4, 5:
		body := b.Data
		if body == nil {
			body = &messageBody{}
		}
		var m *message
		var aerr *apiErr
		if b.Type == 4 {
			m, aerr = s.newBotMessageLocked(cs, body, q.files, "data.", q.now)
		} else {
			m = &message{id: s.snowflakeLocked(q.now), channelID: cs.ch.ID, author: s.Bot, at: q.now,
				flags: flagLoading | body.Flags&flagEphemeral}
		}
		if aerr != nil {
			return fail(aerr)
		}
		m.typ, m.interaction, m.replyTo, m.replyKnown = 20, it, "", false // CHAT_INPUT_COMMAND
		it.original = m
		resp.MessageID = m.id
		s.addMessageLocked(cs, m)
	default:
		return fail(formErr("type", "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5}."))
	}
	it.acked = true
	resp.Status = 204
	it.record(resp)
	return 204, nil, nil
}

// webhookInteractionLocked finds the interaction of a webhook route.
func (s *Server) webhookInteractionLocked(q *request) (*interaction, *apiErr) {
	it := s.interactionByTokenLocked(q.params["interaction.token"])
	switch {
	case it == nil || q.params["application.id"] != s.ApplicationID:
		return nil, errUnknownWebhook
	case q.now.Sub(it.at) > interactionTokenLife:
		return nil, errInvalidToken
	case !it.acked:
		return nil, errUnknownWebhook
	}
	return it, nil
}

func (s *Server) getOriginal(q *request) (int, any, *apiErr) {
	it, aerr := s.webhookInteractionLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	if it.original == nil || it.original.deleted {
		return 0, nil, errUnknownMessage
	}
	return 200, s.messageObjectLocked(it.original), nil
}

func (s *Server) editOriginal(q *request) (int, any, *apiErr) {
	it, aerr := s.webhookInteractionLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var b messageBody
	aerr = unmarshal(q.json, &b)
	resp := InteractionResponse{At: q.now, Kind: "edit"}
	if b.Content != nil {
		resp.Content = *b.Content
	}
	if aerr == nil && (it.original == nil || it.original.deleted) {
		aerr = errUnknownMessage
	}
	if aerr == nil {
		aerr = s.editLocked(it.original, &b, q.files, "", q.now)
	}
	if aerr != nil {
		resp.Status = aerr.status
		it.record(resp)
		return 0, nil, aerr
	}
	resp.Status, resp.MessageID, resp.Flags, resp.Content = 200, it.original.id, it.original.flags, it.original.content
	it.record(resp)
	return 200, s.messageObjectLocked(it.original), nil
}

func (s *Server) deleteOriginal(q *request) (int, any, *apiErr) {
	it, aerr := s.webhookInteractionLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	if it.original == nil || it.original.deleted {
		return 0, nil, errUnknownMessage
	}
	s.deleteMessageLocked(s.channels[it.original.channelID], it.original)
	it.record(InteractionResponse{At: q.now, Kind: "delete", MessageID: it.original.id, Status: 204})
	return 204, nil, nil
}

// followup sends a follow-up message; with ?wait=true the answer is the
// message, else 204 (docs: resources/webhook, "Execute Webhook").
func (s *Server) followup(q *request) (int, any, *apiErr) {
	it, aerr := s.webhookInteractionLocked(q)
	if aerr != nil {
		return 0, nil, aerr
	}
	var b messageBody
	aerr = unmarshal(q.json, &b)
	resp := InteractionResponse{At: q.now, Kind: "followup"}
	if b.Content != nil {
		resp.Content = *b.Content
	}
	var m *message
	if aerr == nil {
		b.MessageReference = nil
		m, aerr = s.newBotMessageLocked(s.channels[it.ChannelID], &b, q.files, "", q.now)
	}
	if aerr != nil {
		resp.Status = aerr.status
		it.record(resp)
		return 0, nil, aerr
	}
	m.webhook, m.interaction = true, it
	s.addMessageLocked(s.channels[it.ChannelID], m)
	resp.MessageID, resp.Flags = m.id, m.flags
	if q.r.URL.Query().Get("wait") == "true" {
		resp.Status = 200
		it.record(resp)
		return 200, s.messageObjectLocked(m), nil
	}
	resp.Status = 204
	it.record(resp)
	return 204, nil, nil
}
