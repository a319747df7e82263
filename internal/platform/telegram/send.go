package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/format"
	"github.com/herald-chat/herald/internal/platform"
)

// outgoing is a text ready to send: HTML with its parse mode, or plain
// text when the HTML would not do.
type outgoing struct {
	text  string
	mode  models.ParseMode
	plain string // the same text without markup, for a retry
}

// prepare renders markdown for sending. It falls back to the markdown as
// plain text when the rendering shows nothing or would be over Telegram's
// limit (the markdown itself fits, since the gateway splits by it).
func prepare(md string) outgoing {
	plain := strings.ToValidUTF8(md, "\uFFFD")
	r := renderHTML(plain)
	if strings.TrimSpace(r.Visible) == "" || format.Length(r.Visible, format.UTF16) > MaxLength {
		return outgoing{text: plain, plain: plain}
	}
	return outgoing{text: r.HTML, mode: models.ParseModeHTML, plain: plain}
}

// chatID reads a target's chat: a numeric id or a @channelname.
func chatID(t chat.Target) (any, error) {
	v := strings.TrimSpace(t.ChatID)
	if strings.HasPrefix(v, "@") && len(v) > 1 {
		return v, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("telegram: %q is not a chat id", t.ChatID)
	}
	return id, nil
}

// threadID reads a target's forum topic, 0 for none.
func threadID(t chat.Target) int {
	n, _ := strconv.Atoi(t.ThreadID)
	return n
}

// noPreview turns link previews off: they would come and go while an
// answer is edited.
var noPreview = &models.LinkPreviewOptions{IsDisabled: bot.True()}

// Send posts a message, replying to the message answered as
// TELEGRAM_REPLY_TO_MODE says. A text over Telegram's limit (the gateway
// splits before that) is split here and the last message's id returned.
func (a *Adapter) Send(ctx context.Context, t chat.Target, text string) (string, error) {
	chat, err := chatID(t)
	if err != nil {
		return "", err
	}
	parts := []string{text}
	if format.Length(text, format.UTF16) > MaxLength {
		parts = format.Split(text, MaxLength, format.UTF16)
	}
	var id string
	for _, part := range parts {
		if id, err = a.sendOne(ctx, t, chat, part, a.replies.Next(t)); err != nil {
			return "", err
		}
		a.replies.Sent(t)
	}
	return id, nil
}

func (a *Adapter) sendOne(ctx context.Context, t chat.Target, chat any, text string, reply bool) (string, error) {
	out := prepare(text)
	p := &bot.SendMessageParams{
		ChatID:             chat,
		MessageThreadID:    threadID(t),
		Text:               out.text,
		ParseMode:          out.mode,
		LinkPreviewOptions: noPreview,
	}
	if id, err := strconv.Atoi(t.ReplyTo); err == nil && reply {
		p.ReplyParameters = &models.ReplyParameters{MessageID: id, AllowSendingWithoutReply: true}
	}
	m, err := a.bot.SendMessage(ctx, p)
	var migrated *bot.MigrateError
	if errors.As(err, &migrated) && migrated.MigrateToChatID != 0 {
		// The group became a supergroup, with a new id: answer there.
		a.log.Warn("the group moved to a supergroup; sending there", "chat", t.ChatID, "to", migrated.MigrateToChatID)
		p.ChatID = int64(migrated.MigrateToChatID)
		m, err = a.bot.SendMessage(ctx, p)
	}
	if err != nil && p.ParseMode != "" && isParseError(err) {
		a.log.Warn("Telegram could not parse the formatting; sending plain text", "chat", t.ChatID, "error", a.redact(err))
		p.Text, p.ParseMode = out.plain, ""
		m, err = a.bot.SendMessage(ctx, p)
	}
	if err != nil {
		return "", a.apiError(err)
	}
	return strconv.Itoa(m.ID), nil
}

// Edit replaces a message's text. An unchanged text is a success; a
// message that is gone or too old gives platform.ErrCannotEdit.
func (a *Adapter) Edit(ctx context.Context, t chat.Target, id, text string) error {
	chat, err := chatID(t)
	if err != nil {
		return err
	}
	msgID, err := strconv.Atoi(id)
	if err != nil {
		return fmt.Errorf("%w: %q is not a Telegram message id", platform.ErrCannotEdit, id)
	}
	if n := format.Length(text, format.UTF16); n > MaxLength {
		return fmt.Errorf("telegram: an edit of %d UTF-16 units is over the limit of %d", n, MaxLength)
	}
	out := prepare(text)
	p := &bot.EditMessageTextParams{
		ChatID:             chat,
		MessageID:          msgID,
		Text:               out.text,
		ParseMode:          out.mode,
		LinkPreviewOptions: noPreview,
	}
	_, err = a.bot.EditMessageText(ctx, p)
	if err != nil && p.ParseMode != "" && isParseError(err) {
		a.log.Warn("Telegram could not parse the formatting; editing with plain text", "chat", t.ChatID, "error", a.redact(err))
		p.Text, p.ParseMode = out.plain, ""
		_, err = a.bot.EditMessageText(ctx, p)
	}
	if err != nil && isNotModified(err) {
		return nil
	}
	if err != nil {
		return a.apiError(err)
	}
	return nil
}

// Delete removes a message; one that is gone already counts as deleted.
func (a *Adapter) Delete(ctx context.Context, t chat.Target, id string) error {
	chat, err := chatID(t)
	if err != nil {
		return err
	}
	msgID, err := strconv.Atoi(id)
	if err != nil {
		return fmt.Errorf("telegram: %q is not a message id", id)
	}
	_, err = a.bot.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: chat, MessageID: msgID})
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "message to delete not found") {
		return nil
	}
	if err != nil {
		return a.apiError(err)
	}
	return nil
}

// Typing shows "typing…" for about five seconds.
func (a *Adapter) Typing(ctx context.Context, t chat.Target) error {
	chat, err := chatID(t)
	if err != nil {
		return err
	}
	_, err = a.bot.SendChatAction(ctx, &bot.SendChatActionParams{
		ChatID:          chat,
		MessageThreadID: threadID(t),
		Action:          models.ChatActionTyping,
	})
	if err != nil {
		return a.apiError(err)
	}
	return nil
}

// Draft shows an answer being written as a draft (private chats only);
// each call with the same draftID replaces the last, and the draft goes
// away when the final message is sent.
func (a *Adapter) Draft(ctx context.Context, t chat.Target, draftID int64, text string) error {
	chat, err := chatID(t)
	if err != nil {
		return err
	}
	if n := format.Length(text, format.UTF16); n > MaxLength {
		return fmt.Errorf("telegram: a draft of %d UTF-16 units is over the limit of %d", n, MaxLength)
	}
	out := prepare(text)
	p := &bot.SendMessageDraftParams{
		ChatID:          chat,
		MessageThreadID: threadID(t),
		DraftID:         strconv.FormatInt(draftNumber(draftID), 10),
		Text:            out.text,
		ParseMode:       out.mode,
	}
	_, err = a.bot.SendMessageDraft(ctx, p)
	if err != nil && p.ParseMode != "" && isParseError(err) {
		p.Text, p.ParseMode = out.plain, ""
		_, err = a.bot.SendMessageDraft(ctx, p)
	}
	if err != nil {
		return a.apiError(err)
	}
	return nil
}

// draftNumber maps the gateway's draft id onto a non-zero 31-bit number,
// which every Bot API server takes.
func draftNumber(id int64) int64 {
	n := id & 0x7fffffff
	if n == 0 {
		n = 1
	}
	return n
}

// isParseError tells Telegram's refusal of a text's formatting.
func isParseError(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "can't parse entities")
}

// isNotModified tells an edit that changed nothing, which is a success.
func isNotModified(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "message is not modified")
}

// apiError gives an error of the Bot API the meaning the gateway needs: a
// rate limit with its wait, a message that cannot be edited, or a failure.
// The token never shows in it.
func (a *Adapter) apiError(err error) error {
	var tm *bot.TooManyRequestsError
	if errors.As(err, &tm) {
		return &platform.RateLimitError{RetryAfter: time.Duration(max(tm.RetryAfter, 1)) * time.Second, Err: a.redact(err)}
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"message to edit not found", "message can't be edited", "message_id_invalid"} {
		if strings.Contains(msg, s) {
			return fmt.Errorf("%w: %w", platform.ErrCannotEdit, a.redact(err))
		}
	}
	if !answered(err) {
		// Not reached, or not answered by the Bot API (a proxy's error
		// page, whose HTML the library puts in its error, is left out).
		text, _, _ := strings.Cut(a.redact(err).Error(), ", <")
		return fmt.Errorf("telegram: %w: %s", platform.ErrUnavailable, text)
	}
	return fmt.Errorf("telegram: %w", a.redact(err))
}

// answered tells an error the Bot API answered with (a refusal that will
// not change if the call is made again) from a failure to reach it or a
// 5xx.
func answered(err error) bool {
	for _, refusal := range []error{bot.ErrorBadRequest, bot.ErrorForbidden, bot.ErrorUnauthorized, bot.ErrorNotFound, bot.ErrorConflict} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
}
