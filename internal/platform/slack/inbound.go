package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// payload is the part of an events_api envelope's payload Herald reads
// (docs.slack.dev/apis/events-api, "Callback field overview").
type payload struct {
	TeamID  string `json:"team_id"`
	EventID string `json:"event_id"`
	Event   event  `json:"event"`
}

// event is a message or app_mention event
// (docs.slack.dev/reference/events/message, .../app_mention).
type event struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
	Files       []file `json:"files"`
}

// file is a file shared with a message (docs.slack.dev/reference/objects/file-object).
type file struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Mimetype   string `json:"mimetype"`
	Size       int64  `json:"size"`
	URLPrivate string `json:"url_private"`
}

// inbound turns an event into the message to take, or reports false for an
// event that is not for the agent: the bot's own messages, edits and other
// subtypes, channel messages that neither mention the bot nor continue a
// thread it answers in.
func (a *Adapter) inbound(ctx context.Context, e event) (chat.Inbound, bool) {
	if e.Type != "message" && e.Type != "app_mention" {
		return chat.Inbound{}, false
	}
	switch e.Subtype {
	case "", "file_share", "thread_broadcast":
	default:
		return chat.Inbound{}, false // edits, deletions, joins, bots' messages
	}
	if e.User == "" || e.BotID != "" || e.User == a.me.userID || e.TS == "" || e.Channel == "" {
		return chat.Inbound{}, false
	}
	dm := e.ChannelType == "im" || strings.HasPrefix(e.Channel, "D")
	mention := "<@" + a.me.userID + ">"
	mentioned := e.Type == "app_mention" || strings.Contains(e.Text, mention)
	in := chat.Inbound{
		Source: chat.Source{
			Platform:  Name,
			ChatID:    e.Channel,
			UserID:    e.User,
			MessageID: e.TS,
		},
		Text:      plainText(strings.ReplaceAll(e.Text, mention, "")),
		Mentioned: true,
		// A message is its channel's ts: the message event and the
		// app_mention of one message, and a re-delivered envelope, are
		// the same message to the gateway's dedupe.
		EventID:  e.Channel + ":" + e.TS,
		Received: tsTime(e.TS),
	}
	to := chat.Target{ChatID: e.Channel, ReplyTo: e.TS, Asker: e.User, DM: dm}
	switch {
	case dm && e.ThreadTS == "":
		in.Source.ChatType = chat.DM // one session, answered in the conversation
	case dm:
		// A thread the user started in a DM is a session of its own.
		in.Source.ChatType, in.Source.ThreadID, to.ThreadID = chat.Thread, e.ThreadTS, e.ThreadTS
	case e.ThreadTS == "" && a.opts.FlatReplies:
		// reply_in_thread off: a mention in the channel is answered in
		// the channel, in its author's session there.
		if !mentioned {
			return chat.Inbound{}, false
		}
		in.Source.ChatType = chat.Group
	default:
		// In channels the answer goes to the thread of the asking
		// message, which is a session of its own.
		thread := e.ThreadTS
		if thread == "" {
			thread = e.TS
		}
		if !mentioned && (e.ThreadTS == "" || !a.threads.has(e.Channel, thread)) {
			return chat.Inbound{}, false
		}
		if mentioned {
			a.threads.add(ctx, e.Channel, thread)
		}
		in.Source.ChatType, in.Source.ThreadID, to.ThreadID = chat.Thread, thread, thread
	}
	in.To = &to
	in.Source.UserName = a.userName(ctx, e.User) // asked only of messages taken
	images, notes := a.images(ctx, e.Files)
	in.Attachments = images
	if notes != "" {
		in.Text = strings.TrimSpace(in.Text + "\n\n" + notes)
	}
	if strings.TrimSpace(in.Text) == "" && len(images) == 0 {
		return chat.Inbound{}, false
	}
	return in, true
}

// tsTime is the time a message ts names (seconds since 1970, a dot and
// microseconds); now when it names none.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Now().UTC()
	}
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(s, us*1000).UTC()
}

// controlRE finds Slack's control sequences in message text: <@U…>,
// <#C…|name>, <!here>, <https://…|label>
// (docs.slack.dev/messaging/formatting-message-text#advanced).
var controlRE = regexp.MustCompile(`<([^<>|]*)(?:\|([^<>]*))?>`)

// plainText is message text as the user sees it: mentions as @id, channels
// as #name, links as their URL (with the label before it when there is
// one), and &amp;, &lt;, &gt; decoded.
func plainText(s string) string {
	s = controlRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := controlRE.FindStringSubmatch(m)
		target, label := sub[1], sub[2]
		switch {
		case strings.HasPrefix(target, "@"):
			if label != "" {
				return "@" + label
			}
			return target
		case strings.HasPrefix(target, "#"):
			if label != "" {
				return "#" + label
			}
			return target
		case strings.HasPrefix(target, "!"):
			name, _, _ := strings.Cut(strings.TrimPrefix(target, "!"), "^")
			return "@" + name
		case label != "" && label != target:
			return label + " (" + target + ")"
		}
		return target
	})
	return strings.TrimSpace(html.UnescapeString(s))
}

// userName returns a user's display name, asked once of users.info; "" when
// Slack does not say.
func (a *Adapter) userName(ctx context.Context, id string) string {
	if name, ok := a.names.Get(id); ok {
		return name
	}
	// Our choice: a name is a courtesy, not worth holding the envelope's
	// acknowledgement long for.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := a.api.GetUserInfoContext(ctx, id)
	if err != nil {
		a.log.Debug("users.info failed", "user", id, "error", err)
		return ""
	}
	name := u.Profile.DisplayName
	if name == "" {
		name = u.RealName
	}
	if name == "" {
		name = u.Name
	}
	a.names.Put(id, name)
	return name
}

// images downloads the images shared with a message, within the size cap,
// and notes the files that are not passed on.
func (a *Adapter) images(ctx context.Context, files []file) ([]chat.Attachment, string) {
	var out []chat.Attachment
	var notes []string
	for _, f := range files {
		if !strings.HasPrefix(f.Mimetype, "image/") {
			notes = append(notes, fmt.Sprintf("(The user attached a file that was not passed on: %s, %s, %d bytes.)", f.Name, f.Mimetype, f.Size))
			continue
		}
		img, err := a.image(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ""
			}
			a.log.Warn("an image could not be passed on", "file", f.Name, "error", err)
			notes = append(notes, fmt.Sprintf("(The user sent an image that could not be passed on: %s: %v.)", f.Name, err))
			continue
		}
		out = append(out, img)
	}
	return out, strings.Join(notes, "\n")
}

// errTooLarge says an image is over the size cap.
var errTooLarge = fmt.Errorf("%w (SLACK_MAX_MEDIA_BYTES)", platform.ErrTooLarge)

// image downloads a shared image with the bot token, which url_private
// needs (docs.slack.dev/messaging/working-with-files#authenticating).
func (a *Adapter) image(ctx context.Context, f file) (chat.Attachment, error) {
	limit := a.opts.MaxMediaBytes
	switch {
	case limit <= 0:
		return chat.Attachment{}, errors.New("images are turned off")
	case f.Size > limit:
		return chat.Attachment{}, errTooLarge
	case !a.onSlack(f.URLPrivate):
		return chat.Attachment{}, errors.New("the file is not on Slack's servers")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequest(http.MethodGet, f.URLPrivate, nil)
	if err != nil {
		return chat.Attachment{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.opts.BotToken)
	img, err := platform.FetchImage(ctx, a.files, req, limit, f.Name, f.Mimetype)
	if errors.Is(err, platform.ErrTooLarge) {
		err = errTooLarge
	}
	return img, err
}

// onSlack tells whether a file's URL is on Slack's servers (https, a
// slack.com host) or on the server that stands in for Slack's API
// (SLACK_API_URL): the only places the bot token is sent to.
func (a *Adapter) onSlack(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if api, err := url.Parse(a.opts.APIURL); err == nil && u.Scheme == api.Scheme && u.Host == api.Host {
		return true
	}
	host := u.Hostname()
	return u.Scheme == "https" && (host == "slack.com" || strings.HasSuffix(host, ".slack.com"))
}

// threads are the channel threads the bot answers in, whose replies it
// takes without a mention; the most recent are kept across restarts.
type threads struct {
	state platform.StateStore // nil keeps them in memory only
	mu    sync.Mutex
	known *platform.Recent[string, bool]
	order []string // oldest first, as saved
}

// maxThreads is how many threads are remembered (our choice): a thread
// older than the last few thousand needs a mention again.
const maxThreads = 2000

// threadsState is the state key the threads are saved under.
const threadsState = "threads"

func newThreads(state platform.StateStore) *threads {
	return &threads{state: state, known: platform.NewRecent[string, bool](maxThreads)}
}

// load reads the threads saved by an earlier run.
func (t *threads) load(ctx context.Context, log *slog.Logger) {
	if t.state == nil {
		return
	}
	v, ok, err := t.state.State(ctx, threadsState)
	if err != nil || !ok {
		if err != nil {
			log.Warn("the threads the bot answers in could not be read", "error", err)
		}
		return
	}
	var keys []string
	if err := json.Unmarshal([]byte(v), &keys); err != nil {
		log.Warn("the threads the bot answers in could not be read", "error", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.remember(k)
	}
}

func (t *threads) has(channel, ts string) bool {
	_, ok := t.known.Get(channel + ":" + ts)
	return ok
}

// add remembers a thread and saves the list; a thread known already costs
// nothing.
func (t *threads) add(ctx context.Context, channel, ts string) {
	k := channel + ":" + ts
	t.mu.Lock()
	if _, ok := t.known.Get(k); ok {
		t.mu.Unlock()
		return
	}
	t.remember(k)
	data, _ := json.Marshal(t.order)
	t.mu.Unlock()
	if t.state != nil {
		// Best effort: a thread forgotten after a crash needs a mention.
		_ = t.state.SetState(ctx, threadsState, string(data))
	}
}

// remember adds k, dropping the oldest beyond maxThreads. t.mu is held.
func (t *threads) remember(k string) {
	t.known.Put(k, true)
	t.order = append(t.order, k)
	if len(t.order) > maxThreads {
		t.order = t.order[len(t.order)-maxThreads:]
	}
}

// slashCommand takes a slash command the app declares: /new, /reset,
// /stop, /status and /help act as typed; any other command of the app
// (/herald, say) takes a command word or a prompt as its text, so that
// "/herald new" is /new and "/herald what is…" is asked. It is journalled,
// then acknowledged; the answer goes in the conversation.
func (a *Adapter) slashCommand(ctx context.Context, sm *socketmode.Client, ev socketmode.Event, h platform.Handler) {
	cmd, ok := ev.Data.(slack.SlashCommand)
	if !ok || ev.Request == nil {
		return
	}
	text := strings.TrimSpace(cmd.Command + " " + cmd.Text)
	if _, known := chat.Command(text); !known {
		text = strings.TrimSpace(cmd.Text)
		if word, _, _ := strings.Cut(text, " "); word != "" {
			if _, known := chat.Command("/" + word); known {
				text = "/" + text
			}
		}
	}
	if text == "" {
		a.ack(ctx, sm, ev.Request, nil)
		return
	}
	dm := strings.HasPrefix(cmd.ChannelID, "D")
	in := chat.Inbound{
		Source: chat.Source{
			Platform: Name, ChatID: cmd.ChannelID, ChatName: cmd.ChannelName, ChatType: chat.Channel,
			UserID: cmd.UserID, UserName: cmd.UserName,
		},
		Text:      text,
		Mentioned: true,
		EventID:   "slash:" + cmd.TriggerID,
		Received:  time.Now().UTC(),
		To:        &chat.Target{ChatID: cmd.ChannelID, Asker: cmd.UserID, DM: dm},
	}
	if dm {
		in.Source.ChatType = chat.DM
	}
	if err := h(ctx, in); err != nil {
		a.log.Warn("a slash command could not be journalled; Slack will send it again", "error", err)
		return
	}
	a.ack(ctx, sm, ev.Request, nil)
}
