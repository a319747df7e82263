package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
)

// place is where a message sits, as the rules need to know it.
type place struct {
	kind    discordgo.ChannelType
	dm      bool
	channel string // the channel the message is in (a thread is a channel)
	parent  string // the channel a thread belongs to, if in a thread
	ownedBy string // who started the thread, if in one
	name    string // how the chat is named to the agent
}

// thread tells whether the message is in a thread.
func (p place) thread() bool { return p.parent != "" }

// where works out where a message sits: a DM, a server channel, or a
// thread of one. A message of the gateway carries its server; one read
// back through the REST API does not, so the channel decides.
func (a *Adapter) where(ctx context.Context, channelID, guildID string) (place, error) {
	ch, err := a.channel(ctx, channelID)
	if err != nil {
		if guildID == "" {
			return place{dm: true, channel: channelID}, nil // only DMs come without a server
		}
		return place{}, err
	}
	p := place{kind: ch.Type, channel: ch.ID, name: "#" + ch.Name}
	switch {
	case ch.Type == discordgo.ChannelTypeDM || ch.Type == discordgo.ChannelTypeGroupDM:
		p.dm, p.name = true, ""
	case ch.IsThread():
		p.parent, p.ownedBy = ch.ParentID, ch.OwnerID
		if parent, err := a.channel(ctx, ch.ParentID); err == nil {
			p.name = "#" + parent.Name + " / " + ch.Name
		}
	}
	return p, nil
}

// channel returns what the state knows of a channel, else asks Discord
// (threads archived before the bot connected, DMs read back).
func (a *Adapter) channel(ctx context.Context, id string) (*discordgo.Channel, error) {
	if ch, err := a.s.State.Channel(id); err == nil {
		return ch, nil
	}
	if ch, ok := a.channels.Get(id); ok {
		return ch, nil
	}
	ch, err := a.s.Channel(id, discordgo.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("discord: looking up channel %s: %w", id, err)
	}
	a.channels.Put(id, ch)
	return ch, nil
}

// inList tells whether a message in p is in one of the channels of list,
// or in a thread of one.
func (a *Adapter) inList(list []string, p place) bool {
	return slices.Contains(list, p.channel) || (p.parent != "" && slices.Contains(list, p.parent))
}

// addressing is what a message says about whom it is for.
type addressing struct {
	mentionsBot  bool
	repliesToBot bool
	command      bool
}

// mentioned decides chat.Inbound.Mentioned: DMs never need a mention; free
// response channels and servers with DISCORD_REQUIRE_MENTION off take
// every message; elsewhere a message must mention the bot, reply to it,
// be in a thread the bot started, or be a command.
func (a *Adapter) mentioned(p place, ad addressing, botID string) bool {
	switch {
	case p.dm, !a.opts.RequireMention, a.inList(a.opts.FreeResponseChannels, p):
		return true
	}
	return ad.mentionsBot || ad.repliesToBot || ad.command || (p.thread() && p.ownedBy == botID)
}

// onMessage takes a message from the gateway; it returns once the
// message is journalled, or given up (the backfill of a new session reads
// it again if it is recent).
func (a *Adapter) onMessage(m *discordgo.Message) {
	ctx := a.runContext()
	if err := a.take(ctx, m, false); err != nil && ctx.Err() == nil {
		a.log.Error("a Discord message could not be taken", "message", m.ID, "error", err)
	}
}

// runContext is Run's context, once Run started.
func (a *Adapter) runContext() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ctx
}

// takeFor bounds how long a message is retried on the gateway's reader:
// past five heartbeats unread, discordgo gives the session up.
const takeFor = time.Minute

// take hands a message to the gateway, retrying while it cannot be
// looked at or journalled, and remembers it as the last one seen in its
// channel (read back: as the last one read back).
func (a *Adapter) take(ctx context.Context, m *discordgo.Message, readBack bool) error {
	var delay platform.Backoff
	deadline := time.Now().Add(takeFor)
	for {
		err := a.takeOnce(ctx, m)
		if err == nil {
			break
		}
		wait := delay.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		a.log.Warn("a message could not be taken; it will be tried again", "message", m.ID, "error", err, "in", wait)
		if !platform.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	if readBack {
		a.seen.readBack(ctx, m.ChannelID, m.ID)
	} else {
		a.seen.saw(ctx, m.ChannelID, m.ID)
	}
	return nil
}

// takeOnce hands a message to the gateway once.
func (a *Adapter) takeOnce(ctx context.Context, m *discordgo.Message) error {
	in, ok, err := a.inbound(ctx, m)
	if err != nil || !ok {
		return err
	}
	return a.handler(ctx, in)
}

// inbound turns a user's message into what the gateway takes; ok is false
// for a message that holds nothing for the agent or that the settings
// leave alone.
func (a *Adapter) inbound(ctx context.Context, m *discordgo.Message) (chat.Inbound, bool, error) {
	me, _ := a.bot()
	if me == nil || m.Author == nil || m.Author.Bot || m.Author.ID == me.ID {
		return chat.Inbound{}, false, nil // not a user's message
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return chat.Inbound{}, false, nil // a pin, a thread created…: nothing to answer
	}
	p, err := a.where(ctx, m.ChannelID, m.GuildID)
	if err != nil {
		return chat.Inbound{}, false, err
	}
	if !p.dm && ((len(a.opts.AllowedChannels) > 0 && !a.inList(a.opts.AllowedChannels, p)) || a.inList(a.opts.IgnoredChannels, p)) {
		return chat.Inbound{}, false, nil
	}
	text := a.text(m, me.ID)
	ad := addressing{
		mentionsBot:  slices.ContainsFunc(m.Mentions, func(u *discordgo.User) bool { return u.ID == me.ID }),
		repliesToBot: m.ReferencedMessage != nil && m.ReferencedMessage.Author != nil && m.ReferencedMessage.Author.ID == me.ID,
	}
	_, ad.command = chat.Command(text)
	attachments, notes := a.attachments(ctx, m.Attachments)
	if ctx.Err() != nil {
		return chat.Inbound{}, false, ctx.Err()
	}
	if notes != "" {
		text = strings.TrimSpace(text + "\n\n" + notes)
	}
	if strings.TrimSpace(text) == "" && len(attachments) == 0 {
		return chat.Inbound{}, false, nil // a sticker, an embed only…
	}
	in := chat.Inbound{
		Source:      a.source(m, p),
		Text:        text,
		Attachments: attachments,
		Mentioned:   a.mentioned(p, ad, me.ID),
		EventID:     m.ID,
		Received:    m.Timestamp.UTC(),
	}
	if m.Timestamp.IsZero() {
		in.Received = time.Now().UTC()
	}
	if p.thread() && m.ID == p.channel {
		// The first message of a forum post has the post's id: the answer
		// goes in the post, which exists already.
		in.To = &chat.Target{ChatID: p.channel, ThreadID: p.channel, ReplyTo: m.ID, Asker: m.Author.ID}
	}
	if in.Mentioned && !ad.command && a.autoThread(p) {
		// The answer starts a thread on the message, whose id is the
		// message's (discord.com/developers/docs/resources/channel#start-thread-from-message),
		// and the thread is a session of its own.
		in.Source.ChatType, in.Source.ThreadID = chat.Thread, m.ID
		a.threadNames.Put(m.ID, threadName(text))
	}
	return in, true, nil
}

// autoThread tells whether the answer to a message in p starts a thread:
// in text and announcement channels only (a voice channel's chat has no
// threads).
func (a *Adapter) autoThread(p place) bool {
	text := p.kind == discordgo.ChannelTypeGuildText || p.kind == discordgo.ChannelTypeGuildNews
	return a.opts.AutoThread && text && !a.inList(a.opts.NoThreadChannels, p)
}

// source describes where a message came from. A thread's messages are
// keyed by the thread, in the channel it belongs to.
func (a *Adapter) source(m *discordgo.Message, p place) chat.Source {
	src := chat.Source{
		Platform:  Name,
		ChatID:    p.channel,
		ChatName:  p.name,
		ChatType:  chat.Group,
		UserID:    m.Author.ID,
		UserName:  displayName(m),
		MessageID: m.ID,
	}
	switch {
	case p.dm:
		src.ChatType, src.ChatName = chat.DM, src.UserName
	case p.thread():
		src.ChatType, src.ChatID, src.ThreadID = chat.Thread, p.parent, p.channel
	}
	return src
}

// displayName is how the author is named: their server nickname, their
// display name, else their username.
func displayName(m *discordgo.Message) string {
	switch {
	case m.Member != nil && m.Member.Nick != "":
		return m.Member.Nick
	case m.Author.GlobalName != "":
		return m.Author.GlobalName
	}
	return m.Author.Username
}

// text is what the agent reads of a message: without the mention that
// addressed the bot, other mentions as @names.
func (a *Adapter) text(m *discordgo.Message, botID string) string {
	c := *m
	c.Content = strings.NewReplacer("<@"+botID+">", "", "<@!"+botID+">", "").Replace(m.Content)
	return strings.TrimSpace(c.ContentWithMentionsReplaced())
}

// threadName names the thread an answer starts after the question: its
// first line, within Discord's 100 characters for a channel name
// (discord.com/developers/docs/resources/channel#start-thread-from-message).
func threadName(text string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	if r := []rune(line); len(r) > 100 {
		line = string(r[:99]) + "…"
	}
	if line == "" {
		line = "Conversation"
	}
	return line
}

// attachments fetches the images the agent can see, within the size cap,
// and names the rest in a note for the agent, so nothing is dropped
// without a word.
func (a *Adapter) attachments(ctx context.Context, list []*discordgo.MessageAttachment) ([]chat.Attachment, string) {
	var out []chat.Attachment
	var notes []string
	for _, att := range list {
		if !strings.HasPrefix(att.ContentType, "image/") {
			notes = append(notes, fmt.Sprintf("(The user attached a file that was not passed on: %s, %s, %d bytes.)", att.Filename, orUnknown(att.ContentType), att.Size))
			continue
		}
		img, err := a.image(ctx, att)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ""
			}
			a.log.Warn("an image could not be passed on", "file", att.Filename, "error", err)
			notes = append(notes, fmt.Sprintf("(The user sent an image that could not be passed on: %s: %v.)", att.Filename, err))
			continue
		}
		out = append(out, img)
	}
	return out, strings.Join(notes, "\n")
}

func orUnknown(mime string) string {
	if mime == "" {
		return "of an unknown type"
	}
	return mime
}

// image downloads an attached image, within the size cap.
func (a *Adapter) image(ctx context.Context, att *discordgo.MessageAttachment) (chat.Attachment, error) {
	limit := a.opts.MaxMediaBytes
	switch {
	case limit <= 0:
		return chat.Attachment{}, errors.New("images are turned off")
	case int64(att.Size) > limit:
		return chat.Attachment{}, errTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequest(http.MethodGet, att.URL, nil)
	if err != nil {
		return chat.Attachment{}, err
	}
	img, err := platform.FetchImage(ctx, a.client, req, limit, att.Filename, att.ContentType)
	if errors.Is(err, platform.ErrTooLarge) {
		err = errTooLarge
	}
	return img, err
}

// errTooLarge says an image is over the size cap.
var errTooLarge = fmt.Errorf("%w (DISCORD_MAX_MEDIA_BYTES)", platform.ErrTooLarge)

// backfillPage is how many messages one read asks for: the most Discord
// gives (discord.com/developers/docs/resources/message#get-channel-messages).
const backfillPage = 100

// backfill reads again, in each recent conversation, the messages after
// the last one taken, within the backfill window, and takes them: those
// sent while Herald was stopped, or dispatched to a session that ended
// before they were taken. The gateway drops those it has already.
func (a *Adapter) backfill(ctx context.Context, recent map[string]string) {
	from := snowflakeAt(time.Now().Add(-a.opts.Backfill))
	for channel, last := range recent {
		if a.opts.Backfill > 0 && !a.readBack(ctx, channel, later(last, from)) {
			return // ctx ended: the next start reads the rest
		}
		a.seen.done(ctx, channel)
	}
}

// readBack takes the messages of a channel after the message after; it
// reports false when ctx ended first.
func (a *Adapter) readBack(ctx context.Context, channel, after string) bool {
	// Messages read back carry no server: the channel must be known
	// before one of them is taken for a DM's.
	if _, err := a.channel(ctx, channel); err != nil {
		a.log.Warn("a conversation cannot be read back", "channel", channel, "error", err)
		return ctx.Err() == nil
	}
	for ctx.Err() == nil {
		msgs, err := a.s.ChannelMessages(channel, backfillPage, "", after, "", discordgo.WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("reading back a conversation failed", "channel", channel, "error", a.redact(err))
			}
			break
		}
		slices.SortFunc(msgs, func(x, y *discordgo.Message) int { return compareSnowflakes(x.ID, y.ID) })
		for _, m := range msgs {
			if err := a.take(ctx, m, true); err != nil {
				return false
			}
			after = m.ID
		}
		if len(msgs) < backfillPage {
			break
		}
	}
	return ctx.Err() == nil
}
