package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
)

// maxBackoff bounds the pause after failures in a row.
const maxBackoff = 30 * time.Second

// poll receives updates from offset on until ctx ends. Each update is
// confirmed to Telegram (by asking for the next offset) and its offset
// saved only after h took it.
func (a *Adapter) poll(ctx context.Context, h platform.Handler, offset int64) {
	polling := platform.Backoff{Max: maxBackoff}  // failures of getUpdates
	handling := platform.Backoff{Max: maxBackoff} // failures of h
	for ctx.Err() == nil {
		updates, err := a.getUpdates(ctx, offset)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := polling.Next()
			var rl *platform.RateLimitError
			if errors.As(err, &rl) {
				wait = rl.RetryAfter
			} else {
				a.outage.Failed(err)
			}
			a.log.Warn("getUpdates failed; retrying", "error", err, "in", wait)
			if !platform.Sleep(ctx, wait) {
				return
			}
			continue
		}
		polling.Reset()
		a.outage.Recovered()
		for _, u := range updates {
			if u.ID < offset {
				continue // taken already; Telegram sent it again
			}
			if err := a.handle(ctx, h, u); err != nil {
				if ctx.Err() != nil {
					return
				}
				wait := handling.Next()
				a.log.Warn("a message could not be taken; it will be tried again", "update", u.ID, "error", err, "in", wait)
				if !platform.Sleep(ctx, wait) {
					return
				}
				break // ask again from offset: Telegram still has this update
			}
			handling.Reset()
			offset = u.ID + 1
			a.saveOffset(ctx, offset)
		}
	}
}

// saveOffset persists the offset of the next update to take. A failure
// costs nothing but a redelivery after a restart, which the gateway drops
// as a duplicate.
func (a *Adapter) saveOffset(ctx context.Context, offset int64) {
	if a.state == nil {
		return
	}
	if err := a.state.SetState(ctx, a.stateKey, strconv.FormatInt(offset, 10)); err != nil && ctx.Err() == nil {
		a.log.Error("saving the update offset failed", "error", err)
	}
}

// apiResponse is the Bot API's answer envelope.
type apiResponse struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// getUpdates asks for the updates from offset on, waiting up to the poll
// timeout for one to come. Asking with an offset confirms every update
// below it: Telegram forgets them.
func (a *Adapter) getUpdates(ctx context.Context, offset int64) ([]models.Update, error) {
	body, _ := json.Marshal(map[string]any{
		"offset":          offset,
		"timeout":         int(pollTimeout / time.Second),
		"allowed_updates": []string{"message"},
	})
	ctx, cancel := context.WithTimeout(ctx, pollTimeout+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.opts.BaseURL+"/bot"+a.opts.Token+"/getUpdates", bytes.NewReader(body))
	if err != nil {
		return nil, a.redact(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, a.redact(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, a.redact(err)
	}
	var r apiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("getUpdates: HTTP %d with a body that is not the Bot API's: %w", resp.StatusCode, err)
	}
	if !r.OK {
		err := fmt.Errorf("getUpdates: %d %s", r.ErrorCode, r.Description)
		if r.ErrorCode == http.StatusTooManyRequests {
			return nil, &platform.RateLimitError{RetryAfter: time.Duration(max(r.Parameters.RetryAfter, 1)) * time.Second, Err: err}
		}
		return nil, err
	}
	var updates []models.Update
	if err := json.Unmarshal(r.Result, &updates); err != nil {
		return nil, fmt.Errorf("getUpdates: decoding updates: %w", err)
	}
	return updates, nil
}

// handle turns an update into an inbound message and hands it to h. An
// update that holds nothing for the agent is taken as it is.
func (a *Adapter) handle(ctx context.Context, h platform.Handler, u models.Update) error {
	m := u.Message
	if m == nil || m.From == nil || m.From.IsBot {
		return nil // not a user's message: nothing to answer
	}
	text, entities := m.Text, m.Entities
	if text == "" {
		text, entities = m.Caption, m.CaptionEntities
	}
	var attachments []chat.Attachment
	if len(m.Photo) > 0 {
		att, err := a.photo(ctx, m.Photo)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			a.log.Warn("a photo could not be passed on", "chat", m.Chat.ID, "error", err)
			note := "(The user sent a photo that could not be passed on: " + err.Error() + ".)"
			text = strings.TrimSpace(text + "\n\n" + note)
		default:
			attachments = append(attachments, att)
		}
	}
	if strings.TrimSpace(text) == "" && len(attachments) == 0 {
		return nil // a sticker, a service message…: nothing for the agent
	}
	if m.IsTopicMessage && slices.Contains(a.opts.IgnoredThreads, strconv.Itoa(m.MessageThreadID)) {
		return nil // a topic the bot is told to pass over
	}
	if m.Chat.Type != models.ChatTypePrivate && len(a.opts.AllowedChats) > 0 && !slices.Contains(a.opts.AllowedChats, strconv.FormatInt(m.Chat.ID, 10)) {
		return nil // a group the bot is not to answer in
	}
	in := chat.Inbound{
		Source:      chatSource(a.name, m),
		Text:        text,
		Attachments: attachments,
		Mentioned:   a.mentioned(m, text, entities),
		EventID:     fmt.Sprintf("%d:%d", a.botID, u.ID),
		Received:    time.Unix(int64(m.Date), 0).UTC(),
	}
	if m.Date == 0 {
		in.Received = time.Now().UTC()
	}
	return h(ctx, in)
}

// mentioned tells whether a message addresses the bot: every message of a
// private chat, of a free-response chat, and of any chat unless mentions
// are required; elsewhere a mention of the bot, a reply to one of its
// messages, a command (/cmd, or /cmd@bot for this bot), or a match of a
// mention pattern.
func (a *Adapter) mentioned(m *models.Message, text string, entities []models.MessageEntity) bool {
	if m.Chat.Type == models.ChatTypePrivate || !a.opts.RequireMention ||
		slices.Contains(a.opts.FreeResponseChats, strconv.FormatInt(m.Chat.ID, 10)) {
		return true
	}
	for _, re := range a.opts.MentionPatterns {
		if re.MatchString(text) {
			return true
		}
	}
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.ID == a.botID {
		// In a forum topic every message "replies" to the topic's first
		// message; that is no reply to the bot.
		if !(m.IsTopicMessage && r.ID == m.MessageThreadID) {
			return true
		}
	}
	username := strings.ToLower(a.Username())
	for _, e := range entities {
		switch e.Type {
		case models.MessageEntityTypeMention:
			if username != "" && strings.ToLower(entityText(text, e)) == "@"+username {
				return true
			}
		case models.MessageEntityTypeTextMention:
			if e.User != nil && e.User.ID == a.botID {
				return true
			}
		case models.MessageEntityTypeBotCommand:
			if e.Offset != 0 {
				continue
			}
			_, target, addressed := strings.Cut(entityText(text, e), "@")
			if !addressed || strings.ToLower(target) == username {
				return true
			}
		}
	}
	return false
}

// entityText is the part of text an entity covers; its offset and length
// count UTF-16 code units.
func entityText(text string, e models.MessageEntity) string {
	units := utf16.Encode([]rune(text))
	if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > len(units) {
		return ""
	}
	return string(utf16.Decode(units[e.Offset : e.Offset+e.Length]))
}

// errTooLarge says a photo is over the size cap.
var errTooLarge = errors.New("it is larger than the limit (TELEGRAM_MAX_MEDIA_BYTES)")

// photo fetches the largest size of a photo that fits the size cap.
func (a *Adapter) photo(ctx context.Context, sizes []models.PhotoSize) (chat.Attachment, error) {
	limit := a.opts.MaxMediaBytes
	if limit <= 0 {
		return chat.Attachment{}, errors.New("photos are turned off")
	}
	var best *models.PhotoSize
	for i := range sizes {
		s := &sizes[i]
		if int64(s.FileSize) > limit {
			continue
		}
		if best == nil || s.Width*s.Height > best.Width*best.Height ||
			(s.Width*s.Height == best.Width*best.Height && s.FileSize > best.FileSize) {
			best = s
		}
	}
	if best == nil {
		return chat.Attachment{}, errTooLarge
	}
	f, err := a.bot.GetFile(ctx, &bot.GetFileParams{FileID: best.FileID})
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("getFile: %w", a.redact(err))
	}
	if f.FileSize > limit {
		return chat.Attachment{}, errTooLarge
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.bot.FileDownloadLink(f), nil)
	if err != nil {
		return chat.Attachment{}, a.redact(err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("downloading: %w", a.redact(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return chat.Attachment{}, fmt.Errorf("downloading: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return chat.Attachment{}, fmt.Errorf("downloading: %w", a.redact(err))
	}
	if int64(len(data)) > limit {
		return chat.Attachment{}, errTooLarge
	}
	mime := http.DetectContentType(data)
	if !strings.HasPrefix(mime, "image/") {
		mime = "image/jpeg" // Telegram re-encodes photos as JPEG
	}
	return chat.Attachment{Kind: "image", MIMEType: mime, Name: path.Base(f.FilePath), Data: data}, nil
}
