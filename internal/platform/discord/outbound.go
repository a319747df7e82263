package discord

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// channelOf is the channel an answer goes to: the thread, if it has one.
func channelOf(t chat.Target) string {
	if t.ThreadID != "" {
		return t.ThreadID
	}
	return t.ChatID
}

// startsThread tells a target whose answer starts a thread on the asking
// message (auto-thread): such a thread has the message's id, and belongs
// to another channel (the first message of a forum post has its post's id
// too, but is answered in the post: see inbound).
func startsThread(t chat.Target) bool {
	return t.ThreadID != "" && t.ThreadID == t.ReplyTo && t.ChatID != t.ThreadID
}

// answerChannel is where the answer to t goes: its thread, unless the
// thread it was to start could not be started, and then its channel.
func (a *Adapter) answerChannel(t chat.Target) string {
	if startsThread(t) {
		if ok, known := a.threads.Get(t.ThreadID); known && !ok {
			return t.ChatID
		}
	}
	return channelOf(t)
}

// askedIn is the channel the asking message is in.
func askedIn(t chat.Target) string {
	if startsThread(t) {
		return t.ChatID
	}
	return channelOf(t)
}

// pings limits whom a message may ping to the asking user: never
// @everyone, @here or a role, whatever the agent wrote
// (discord.com/developers/docs/resources/message#allowed-mentions-object).
func pings(t chat.Target) *discordgo.MessageAllowedMentions {
	am := &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, RepliedUser: true}
	if t.Asker != "" {
		am.Users = []string{t.Asker}
	}
	return am
}

// Send posts a message, replying to the asking message; for a slash
// command it completes the command's deferred response. A text over
// Discord's limit (the gateway splits before that) is split here, fences
// balanced, and the last message's id returned.
func (a *Adapter) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	if startsThread(t) {
		if err := a.startThread(ctx, t); err != nil {
			return "", err
		}
	}
	if a.answerChannel(t) != channelOf(t) {
		t.ThreadID = "" // the thread could not be started: a reply in the channel
	}
	var id string
	for _, part := range format.Split(text, MaxLength, format.Runes) {
		var err error
		if id, err = a.sendOne(ctx, t, part); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (a *Adapter) sendOne(ctx context.Context, t chat.Target, text string) (string, error) {
	if id, ok := strings.CutPrefix(t.ReplyTo, interactionPrefix); ok {
		if m, handled, err := a.interactions.answer(ctx, a.s, id, text, pings(t)); handled {
			if err != nil {
				return "", a.apiError(err)
			}
			return m.ID, nil
		}
	}
	channel := channelOf(t)
	send := createMessage{Content: text, AllowedMentions: pings(t), Nonce: nonce(channel, t.ReplyTo+"\x00"+t.Once, text), EnforceNonce: true}
	if !startsThread(t) && !strings.HasPrefix(t.ReplyTo, interactionPrefix) && a.replies.Next(t) {
		no := false
		send.Reference = &discordgo.MessageReference{MessageID: t.ReplyTo, ChannelID: channel, FailIfNotExists: &no}
	}
	// discordgo's bucket for this route is its URL, as ChannelMessageSend's.
	endpoint := discordgo.EndpointChannelMessages(channel)
	body, err := a.s.RequestWithBucketID(http.MethodPost, endpoint, send, endpoint, discordgo.WithContext(ctx))
	if err != nil {
		return "", a.apiError(err)
	}
	var m discordgo.Message
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("discord: the created message is not one: %v", err)
	}
	a.replies.Sent(t)
	return m.ID, nil
}

// createMessage is Create Message's body with a nonce, which discordgo
// v0.28.1's MessageSend lacks: with enforce_nonce, a send made again (the
// delivery retries one that timed out, which Discord may have taken)
// returns the message it made instead of posting a second
// (discord.com/developers/docs/resources/message#create-message).
type createMessage struct {
	Content         string                            `json:"content"`
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions,omitempty"`
	Reference       *discordgo.MessageReference       `json:"message_reference,omitempty"`
	Nonce           string                            `json:"nonce"`
	EnforceNonce    bool                              `json:"enforce_nonce"`
}

// nonce names a send by where it goes, what it answers (or which delivery
// it is) and its text: the same send made again has the same, another send
// another. A nonce is "up
// to 25 characters" (discord.com/developers/docs/resources/message#create-message).
func nonce(channel, replyTo, text string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + replyTo + "\x00" + text))
	return hex.EncodeToString(sum[:])[:25]
}

// startThread starts the thread an answer goes in, on the asking message,
// once; a thread that exists already is fine.
func (a *Adapter) startThread(ctx context.Context, t chat.Target) error {
	if _, known := a.threads.Get(t.ThreadID); known {
		return nil
	}
	name, ok := a.threadNames.Get(t.ReplyTo)
	if !ok {
		name = "Conversation"
	}
	_, err := a.s.MessageThreadStartComplex(t.ChatID, t.ReplyTo, &discordgo.ThreadStart{
		Name: name,
		// A week, as Hermes keeps them reopenable; Discord's longest
		// (discord.com/developers/docs/resources/channel#start-thread-from-message).
		AutoArchiveDuration: 10080,
	}, discordgo.WithContext(ctx))
	switch {
	case err == nil || apiCode(err) == codeThreadExists:
		a.threads.Put(t.ThreadID, true)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		if err := a.apiError(err); errors.As(err, new(*platform.RateLimitError)) {
			return err
		}
		// No permission to create threads, a channel without them: the
		// answer goes in the channel rather than nowhere.
		a.log.Warn("a thread could not be started for the answer; answering in the channel", "channel", t.ChatID, "error", a.redact(err))
		a.threads.Put(t.ThreadID, false)
	}
	return nil
}

// Edit replaces a message's text. A message that is gone, or that Discord
// no longer lets the bot edit, gives platform.ErrCannotEdit.
func (a *Adapter) Edit(ctx context.Context, t chat.Target, id, text string) error {
	if n := format.Length(text, format.Runes); n > MaxLength {
		return fmt.Errorf("discord: an edit of %d characters is over the limit of %d", n, MaxLength)
	}
	_, err := a.s.ChannelMessageEditComplex(&discordgo.MessageEdit{
		ID: id, Channel: a.answerChannel(t), Content: &text, AllowedMentions: pings(t),
	}, discordgo.WithContext(ctx))
	if err != nil {
		return a.apiError(err)
	}
	return nil
}

// Delete removes a message; one that is gone already counts as deleted.
func (a *Adapter) Delete(ctx context.Context, t chat.Target, id string) error {
	err := a.s.ChannelMessageDelete(a.answerChannel(t), id, discordgo.WithContext(ctx))
	if err != nil && apiCode(err) != codeUnknownMessage {
		return a.apiError(err)
	}
	return nil
}

// Typing shows "Herald is typing…" for about ten seconds. In a thread that
// the answer has yet to start, it shows in the channel.
func (a *Adapter) Typing(ctx context.Context, t chat.Target) error {
	channel := a.answerChannel(t)
	if startsThread(t) {
		if ok, _ := a.threads.Get(t.ThreadID); !ok {
			channel = t.ChatID // not started yet
		}
	}
	if err := a.s.ChannelTyping(channel, discordgo.WithContext(ctx)); err != nil {
		return a.apiError(err)
	}
	return nil
}

// The reactions that mark the asking message.
const (
	reactWorking = "👀"
	reactDone    = "✅"
	reactFailed  = "❌"
)

// TurnStatus marks the asking message: 👀 while the turn runs, then ✅ or
// ❌ in its place.
func (a *Adapter) TurnStatus(ctx context.Context, t chat.Target, state platform.TurnState) (int, error) {
	if !a.opts.Reactions || t.ReplyTo == "" || strings.HasPrefix(t.ReplyTo, interactionPrefix) {
		return 0, nil
	}
	channel := askedIn(t)
	if state == platform.TurnWorking {
		return 1, a.react(a.s.MessageReactionAdd(channel, t.ReplyTo, reactWorking, discordgo.WithContext(ctx)))
	}
	if err := a.s.MessageReactionRemove(channel, t.ReplyTo, reactWorking, "@me", discordgo.WithContext(ctx)); err != nil && apiCode(err) != codeUnknownMessage {
		return 1, a.apiError(err)
	}
	mark := reactDone
	if state == platform.TurnFailed {
		mark = reactFailed
	}
	return 2, a.react(a.s.MessageReactionAdd(channel, t.ReplyTo, mark, discordgo.WithContext(ctx)))
}

// react is a reaction's error: a message deleted meanwhile is no failure.
func (a *Adapter) react(err error) error {
	if err == nil || apiCode(err) == codeUnknownMessage {
		return nil
	}
	return a.apiError(err)
}

// Discord's JSON error codes the adapter tells apart
// (discord.com/developers/docs/topics/opcodes-and-status-codes#json-json-error-codes).
const (
	codeUnknownMessage  = 10008
	codeCannotEditOther = 50005
	codeTooManyEdits    = 30046 // edits to messages older than an hour
	codeThreadExists    = 160004
)

// apiCode is the JSON error code of a REST error, 0 for other errors.
func apiCode(err error) int {
	var rest *discordgo.RESTError
	if errors.As(err, &rest) && rest.Message != nil {
		return rest.Message.Code
	}
	return 0
}

// apiError gives a REST error the meaning the gateway needs: a rate limit
// with its wait, a message that cannot be edited, or a failure.
func (a *Adapter) apiError(err error) error {
	err = a.redact(err)
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) && rl.RateLimit != nil && rl.TooManyRequests != nil {
		return &platform.RateLimitError{RetryAfter: max(rl.RetryAfter, 100*time.Millisecond), Err: err}
	}
	switch apiCode(err) {
	case codeUnknownMessage, codeCannotEditOther, codeTooManyEdits:
		return fmt.Errorf("%w: %w", platform.ErrCannotEdit, err)
	}
	status := 0
	var rest *discordgo.RESTError
	if errors.As(err, &rest) && rest.Response != nil {
		status = rest.Response.StatusCode
	}
	return fmt.Errorf("discord: %w", platform.Unavailable(err, status))
}

// secretPaths match the parts of URLs that are secrets: an interaction's
// token, in the callback and webhook routes, and the signature of a
// download's link.
var secretPaths = regexp.MustCompile(`(/(?:interactions|webhooks)/[0-9]+/)[^/\s"?]+|(https?://[^\s"?]+)\?[^\s"]*`)

// redact removes secrets from an error's text: errors of net/http quote
// the URL, which for interactions holds their token.
func (a *Adapter) redact(err error) error {
	return platform.Redacted(err, func(s string) string {
		return secretPaths.ReplaceAllStringFunc(s, func(m string) string {
			sub := secretPaths.FindStringSubmatch(m)
			if sub[1] != "" {
				return sub[1] + "<token>"
			}
			return sub[2] + "?…"
		})
	})
}

// rewrite sends discordgo's requests, which name https://discord.com and
// API version 9 in package variables, to the configured site and version
// 10; and asks for the gateway through /gateway/bot, which checks the
// token and answers the same URL.
type rewrite struct {
	base string // {DISCORD_BASE_URL}/api/v10/
	next http.RoundTripper
}

func newRewrite(base string, next http.RoundTripper) (*rewrite, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("expected an http(s) URL such as %s, got %q", DefaultBaseURL, base)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &rewrite{base: base + "/api/v10/", next: next}, nil
}

// RoundTrip rewrites requests to discordgo's API address; others (the
// attachments' CDN) go as they are.
func (r *rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	rest, ok := strings.CutPrefix(req.URL.String(), discordgo.EndpointAPI)
	if !ok {
		return r.next.RoundTrip(req)
	}
	if rest == "gateway" {
		rest = "gateway/bot"
	}
	u, err := url.Parse(r.base + rest)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.URL, out.Host = u, ""
	return r.next.RoundTrip(out)
}

// globalHold keeps every REST call back during a global rate limit: a 429
// with X-RateLimit-Global holds all of the bot's calls for its Retry-After
// (discord.com/developers/docs/topics/rate-limits#global-rate-limit),
// which discordgo's limiter honours only with a Reset-After header that
// such a 429 lacks. A call meanwhile gets a 429 of Herald's own, as
// Discord would answer it, and reaches nobody.
type globalHold struct {
	next http.RoundTripper

	mu    sync.Mutex
	until time.Time
}

func (g *globalHold) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	wait := time.Until(g.until)
	g.mu.Unlock()
	if wait > 0 {
		return held(req, wait), nil
	}
	resp, err := g.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-RateLimit-Global") != "" {
		secs, perr := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64)
		if perr != nil || secs <= 0 {
			secs = 1
		}
		until := time.Now().Add(time.Duration(secs * float64(time.Second)))
		g.mu.Lock()
		if until.After(g.until) {
			g.until = until
		}
		g.mu.Unlock()
	}
	return resp, err
}

// held is the 429 a call gets while the global limit holds.
func held(req *http.Request, wait time.Duration) *http.Response {
	body := fmt.Sprintf(`{"message": "You are being rate limited (globally; held by Herald).", "retry_after": %.3f, "global": true}`, wait.Seconds())
	return &http.Response{
		Status: "429 Too Many Requests", StatusCode: http.StatusTooManyRequests,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":       {"application/json"},
			"Retry-After":        {strconv.Itoa(int(math.Ceil(wait.Seconds())))},
			"X-Ratelimit-Global": {"true"},
		},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}
