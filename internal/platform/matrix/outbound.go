package matrix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// maxContentBytes bounds a message's body and HTML together, so that an
// event, encrypted (which adds a third) and with its envelope, stays under
// Matrix's 65,536 bytes. Beyond it the HTML is left out.
const maxContentBytes = 40000

// requestTimeout bounds one send, edit, redaction or typing notice.
const requestTimeout = time.Minute

// typingTimeout is how long one typing notification shows; the delivery
// layer renews it while nothing is shown yet.
const typingTimeout = 6 * time.Second

// ErrEncryptedRoom is returned for a send into an encrypted room while
// encryption is not running: the message is not sent in plaintext.
var ErrEncryptedRoom = errors.New("matrix: the room is encrypted but encryption is not running; not sending in plaintext")

// Send posts a message: markdown rendered to HTML with the markdown as the
// plain body, in the target's thread or as a reply to the asking event,
// mentioning the asker.
func (a *Adapter) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	c, err := a.connection()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	room := id.RoomID(t.ChatID)
	content := messageContent(text)
	replyTo := id.EventID(t.ReplyTo)
	thread := id.EventID(t.ThreadID)
	switch {
	case thread != "":
		fallback := replyTo
		if fallback == "" {
			fallback = thread
		}
		content.RelatesTo = &event.RelatesTo{
			Type:          event.RelThread,
			EventID:       thread,
			IsFallingBack: true,
			InReplyTo:     &event.InReplyTo{EventID: fallback},
		}
	case replyTo != "":
		content.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: replyTo}}
	}
	if t.Asker != "" {
		content.Mentions.Add(id.UserID(t.Asker))
	}
	evID, err := a.sendEvent(ctx, c, room, event.EventMessage, content)
	if err != nil {
		return "", err
	}
	a.own.Put(evID, true)
	if thread != "" {
		a.markBotThread(ctx, c, room, thread)
	}
	return string(evID), nil
}

// Edit replaces a sent message's text with an m.replace edit whose
// m.new_content holds the whole new text.
func (a *Adapter) Edit(ctx context.Context, t chat.Target, msgID, text string) error {
	c, err := a.connection()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	newContent := messageContent(text)
	edit := &event.MessageEventContent{
		MsgType:    event.MsgText,
		Body:       "* " + fallbackText(text),
		NewContent: newContent,
		RelatesTo:  (&event.RelatesTo{}).SetReplace(id.EventID(msgID)),
		Mentions:   &event.Mentions{},
	}
	_, err = a.sendEvent(ctx, c, id.RoomID(t.ChatID), event.EventMessage, edit)
	return err
}

// Delete redacts a sent message.
func (a *Adapter) Delete(ctx context.Context, t chat.Target, msgID string) error {
	c, err := a.connection()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err = c.cli.RedactEvent(ctx, id.RoomID(t.ChatID), id.EventID(msgID))
	return mapError(err)
}

// Typing shows the bot as typing for a few seconds.
func (a *Adapter) Typing(ctx context.Context, t chat.Target) error {
	c, err := a.connection()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err = c.cli.UserTyping(ctx, id.RoomID(t.ChatID), true, typingTimeout)
	return mapError(err)
}

var reactionKeys = map[platform.TurnState]string{platform.TurnWorking: "👀", platform.TurnDone: "✅", platform.TurnFailed: "❌"}

// TurnStatus marks the asking message (t.ReplyTo) with a turn's state
// when MATRIX_REACTIONS is on: 👀 while the answer is being written, then
// ✅ or ❌, each replacing the one before: a redaction and a reaction
// (platform.TurnMarker).
func (a *Adapter) TurnStatus(ctx context.Context, t chat.Target, status platform.TurnState) (int, error) {
	key, known := reactionKeys[status]
	if !a.opts.Reactions || t.ReplyTo == "" {
		return 0, nil
	}
	if !known {
		return 0, fmt.Errorf("matrix: unknown turn status %q", status)
	}
	c, err := a.connection()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	room, asking := id.RoomID(t.ChatID), id.EventID(t.ReplyTo)
	calls := 0
	if prev, ok := a.reactions.Get(asking); ok {
		calls++
		if _, err := c.cli.RedactEvent(ctx, room, prev); err != nil {
			a.log.Debug("removing the previous reaction failed", "room", room, "error", err)
		}
		a.reactions.Remove(asking)
	}
	calls++
	reaction := &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: asking, Key: key}}
	evID, err := a.sendEvent(ctx, c, room, event.EventReaction, reaction)
	if err != nil {
		return calls, err
	}
	a.reactions.Put(asking, evID)
	return calls, nil
}

// sendEvent sends an event, encrypted when the room is: the room's
// encryption state is looked up first (asking the homeserver when it is
// not known), and an encryption failure fails the send. It never falls
// back to plaintext.
func (a *Adapter) sendEvent(ctx context.Context, c *conn, room id.RoomID, typ event.Type, content any) (id.EventID, error) {
	encrypted, err := a.roomEncrypted(ctx, c, room)
	if err != nil {
		return "", fmt.Errorf("matrix: cannot tell whether room %s is encrypted, so not sending: %w", room, mapError(err))
	}
	if encrypted {
		if c.crypto == nil {
			return "", ErrEncryptedRoom
		}
		if err := a.ensureMembers(ctx, c, room); err != nil {
			return "", fmt.Errorf("matrix: reading the members to encrypt for: %w", mapError(err))
		}
		sealed, err := c.crypto.Encrypt(ctx, room, typ, content)
		if err != nil {
			return "", fmt.Errorf("matrix: encrypting for room %s failed, not sending: %w", room, mapError(err))
		}
		content, typ = sealed, event.EventEncrypted
	}
	resp, err := c.cli.SendMessageEvent(ctx, room, typ, content, mautrix.ReqSendEvent{DontEncrypt: true})
	if err != nil {
		return "", mapError(err)
	}
	return resp.EventID, nil
}

// roomEncrypted reports whether a room is encrypted. Once it is, it stays
// so; that it is not is asked of the homeserver once per run, after which
// the sync's m.room.encryption events keep it up to date.
func (a *Adapter) roomEncrypted(ctx context.Context, c *conn, room id.RoomID) (bool, error) {
	a.mu.Lock()
	enc, known := a.encrypted[room]
	a.mu.Unlock()
	if known {
		return enc, nil
	}
	if enc, err := c.cli.StateStore.IsEncrypted(ctx, room); err == nil && enc {
		a.noteEncrypted(room, true)
		return true, nil
	}
	var content event.EncryptionEventContent
	err := c.cli.StateEvent(ctx, room, event.StateEncryption, "", &content)
	switch {
	case err == nil && content.Algorithm != "":
		if err := c.cli.StateStore.SetEncryptionEvent(ctx, room, &content); err != nil {
			a.log.Debug("caching a room's encryption failed", "room", room, "error", err)
		}
		a.noteEncrypted(room, true)
		return true, nil
	case err == nil, errors.Is(err, mautrix.MNotFound):
		a.noteEncrypted(room, false)
		return false, nil
	}
	return false, err
}

// noteEncrypted records a room's encryption state; encrypted wins.
func (a *Adapter) noteEncrypted(room id.RoomID, enc bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.encrypted[room] = a.encrypted[room] || enc
}

// ensureMembers makes sure the member list a room key is shared with is
// complete.
func (a *Adapter) ensureMembers(ctx context.Context, c *conn, room id.RoomID) error {
	fetched, err := c.cli.StateStore.HasFetchedMembers(ctx, room)
	if err != nil || fetched {
		return err
	}
	return a.fetchMembers(ctx, c, room)
}

// messageContent renders markdown into an m.text message: the markdown as
// the plain body, HTML as formatted_body.
func messageContent(md string) *event.MessageEventContent {
	content := &event.MessageEventContent{
		MsgType:  event.MsgText,
		Body:     md,
		Mentions: &event.Mentions{},
	}
	html := format.Render(md, format.HTML)
	if len(md)+len(html) <= maxContentBytes {
		content.Format = event.FormatHTML
		content.FormattedBody = html
	}
	return content
}

// fallbackText is the start of an edit's text, for clients without edits;
// the whole text is in m.new_content.
func fallbackText(s string) string {
	const max = 100
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// mapError turns the homeserver's rate-limit answer into a
// platform.RateLimitError carrying its retry_after_ms, and a homeserver
// that is down into platform.ErrUnavailable.
func mapError(err error) error {
	var httpErr mautrix.HTTPError
	if err == nil || !errors.As(err, &httpErr) || httpErr.Response == nil {
		return platform.Unavailable(err, 0) // not answered: a transport error, if any
	}
	status := httpErr.Response.StatusCode
	if status >= 500 {
		return platform.Unavailable(err, status)
	}
	limited := status == http.StatusTooManyRequests ||
		httpErr.RespError != nil && httpErr.RespError.ErrCode == mautrix.MLimitExceeded.ErrCode
	if !limited {
		return err
	}
	retry := 5 * time.Second
	var ms float64
	if httpErr.RespError != nil {
		ms, _ = httpErr.RespError.ExtraData["retry_after_ms"].(float64)
	}
	if ms > 0 {
		retry = time.Duration(ms) * time.Millisecond
	} else if secs, err := strconv.Atoi(httpErr.Response.Header.Get("Retry-After")); err == nil && secs > 0 {
		retry = time.Duration(secs) * time.Second
	}
	return &platform.RateLimitError{RetryAfter: retry, Err: err}
}
