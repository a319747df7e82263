package matrix

import (
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/texts"
)

// How long a lookup made while handling a message may take.
const lookupTimeout = 20 * time.Second

// undecryptableNoticeEvery limits "cannot decrypt" notices to one per room
// in this time.
const undecryptableNoticeEvery = 10 * time.Minute

// current returns the connection, or nil while there is none.
func (a *Adapter) current() *conn {
	a.connMu.RLock()
	defer a.connMu.RUnlock()
	return a.conn
}

// userAllowed reports whether a user may invite the bot and have their
// images downloaded: the same allowlists the gateway authorizes with.
func (a *Adapter) userAllowed(user id.UserID) bool {
	return a.deps.Allows != nil && a.deps.Allows(string(user))
}

// onMember joins the rooms an allowed user invites the bot to.
func (a *Adapter) onMember(ctx context.Context, evt *event.Event) {
	c := a.current()
	if c == nil || evt.GetStateKey() != string(c.cli.UserID) || evt.Mautrix.EventSource&event.SourceInvite == 0 {
		return
	}
	content := evt.Content.AsMember()
	if content.Membership != event.MembershipInvite {
		return
	}
	log := a.log.With("room", evt.RoomID, "inviter", evt.Sender)
	if !a.userAllowed(evt.Sender) {
		log.Info("ignoring an invite from a user not allowed (MATRIX_ALLOWED_USERS)")
		return
	}
	if !content.IsDirect && len(a.rules.allowedRooms) > 0 && !a.rules.allowedRooms[string(evt.RoomID)] {
		log.Info("ignoring an invite to a room not in MATRIX_ALLOWED_ROOMS")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if _, err := c.cli.JoinRoomByID(ctx, evt.RoomID); err != nil {
		log.Warn("joining a room the bot was invited to failed", "error", err)
		return
	}
	log.Info("joined a room on invite")
}

// onEncryption notes that a room is encrypted.
func (a *Adapter) onEncryption(_ context.Context, evt *event.Event) {
	a.mu.Lock()
	a.encrypted[evt.RoomID] = true
	a.mu.Unlock()
}

// onMessage turns a room message into an Inbound for the gateway.
func (a *Adapter) onMessage(ctx context.Context, evt *event.Event) {
	c := a.current()
	if c == nil || c.handler == nil {
		return
	}
	if evt.Sender == c.cli.UserID {
		a.own.Put(evt.ID, true)
		return // its own messages, edits included
	}
	content := evt.Content.AsMessage()
	if content.RelatesTo.GetReplaceID() != "" || content.NewContent != nil {
		return // an edit: the message it edits was taken as it was
	}
	log := a.log.With("room", evt.RoomID, "event", evt.ID, "sender", evt.Sender)
	switch content.MsgType {
	case event.MsgText, event.MsgEmote, event.MsgImage:
	case event.MsgNotice:
		if !a.rules.processNotices {
			return
		}
	default:
		log.Debug("ignoring a message type the bot does not take", "msgtype", content.MsgType)
		return
	}
	if a.rules.ignored(string(evt.Sender)) {
		log.Debug("ignoring a sender matching MATRIX_IGNORE_USER_PATTERNS")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if evt.Mautrix.EventSource&event.SourceDecrypted == 0 {
		// Plaintext in an encrypted room may be forged by a homeserver.
		switch enc, err := a.roomEncrypted(ctx, c, evt.RoomID); {
		case err != nil:
			log.Warn("ignoring a message: cannot tell whether its room is encrypted", "error", err)
			return
		case enc:
			log.Warn("ignoring an unencrypted message in an encrypted room")
			return
		}
	}

	dm, err := a.isDM(ctx, c, evt.RoomID)
	if err != nil {
		log.Warn("reading the room's members failed; taking it as a group room", "error", err)
	}
	p := placement{dm: dm, room: string(evt.RoomID), eventID: string(evt.ID)}
	if content.RelatesTo != nil && content.RelatesTo.Type == event.RelThread {
		p.threadRoot = string(content.RelatesTo.EventID)
	}
	if !a.rules.roomAllowed(p) {
		log.Debug("ignoring a room not in MATRIX_ALLOWED_ROOMS")
		return
	}

	content.RemoveReplyFallback()
	text := content.Body
	if content.MsgType == event.MsgImage {
		text = content.GetCaption()
	}
	formatted := ""
	if content.Format == event.FormatHTML {
		formatted = content.FormattedBody
	}
	address := addressing{
		mentionsBot: content.Mentions.Has(c.cli.UserID) || c.me.mentionedIn(text, formatted),
	}
	text = c.me.stripLeadingMention(text)
	address.command = isCommand(text)
	if !a.rules.mentioned(p, address) {
		// Only now the lookups that may need the homeserver.
		if reply := content.RelatesTo.GetNonFallbackReplyTo(); reply != "" {
			address.repliesToBot = a.sentByBot(ctx, c, evt.RoomID, reply)
		}
		if p.threadRoot != "" {
			root := id.EventID(p.threadRoot)
			address.repliesToBot = address.repliesToBot || a.sentByBot(ctx, c, evt.RoomID, root)
			address.botInThread = a.botAnsweredIn(ctx, c, evt.RoomID, root)
		}
	}
	mentioned := a.rules.mentioned(p, address)
	route := a.rules.route(p, address.mentionsBot)

	var attachments []chat.Attachment
	if content.MsgType == event.MsgImage && mentioned && a.userAllowed(evt.Sender) {
		att, err := a.downloadImage(c.runCtx, c, content)
		if err != nil {
			log.Warn("the image could not be fetched; passing on the text only", "error", err)
		} else {
			attachments = append(attachments, *att)
		}
	}
	if text == "" && len(attachments) == 0 {
		return
	}

	in := chat.Inbound{
		Source: chat.Source{
			ChatID:    string(evt.RoomID),
			ChatName:  a.roomName(ctx, c, evt.RoomID),
			ChatType:  route.chatType,
			UserID:    string(evt.Sender),
			UserName:  a.displayName(ctx, c, evt.RoomID, evt.Sender),
			ThreadID:  route.threadID,
			MessageID: string(evt.ID),
		},
		Text:        text,
		Attachments: attachments,
		Mentioned:   mentioned,
		EventID:     string(evt.ID),
		// The answer goes into the thread even where threads share the
		// room's session, and mentions the asker.
		To: &chat.Target{
			ChatID:   string(evt.RoomID),
			ThreadID: route.replyThread,
			ReplyTo:  string(evt.ID),
			Asker:    string(evt.Sender),
			DM:       route.chatType == chat.DM,
		},
	}
	a.deliver(evt, c, in)
}

// deliver hands a message to the gateway, retrying while the gateway
// cannot journal it. If the adapter stops first, the sync is marked
// failed, so its token is not saved and the next start gets it again.
func (a *Adapter) deliver(evt *event.Event, c *conn, in chat.Inbound) {
	runCtx := c.runCtx
	delay := platform.Backoff{Max: 30 * time.Second}
	for {
		err := c.handler(runCtx, in)
		if err == nil {
			return
		}
		wait := delay.Next()
		if runCtx.Err() == nil {
			a.log.Warn("the gateway could not take a message; retrying", "event", evt.ID, "error", err, "retry_in", wait)
		}
		if runCtx.Err() != nil || !platform.Sleep(runCtx, wait) {
			a.mu.Lock()
			a.syncFailed = err
			a.mu.Unlock()
			return
		}
	}
}

// isDM reports whether a room has at most two members (the bot and one
// other): such a room is a direct chat, whatever its flags say.
func (a *Adapter) isDM(ctx context.Context, c *conn, room id.RoomID) (bool, error) {
	store := c.cli.StateStore
	fetched, err := store.HasFetchedMembers(ctx, room)
	if err != nil {
		return false, err
	}
	members, err := store.GetRoomJoinedOrInvitedMembers(ctx, room)
	if err != nil {
		return false, err
	}
	if !fetched && len(members) < 2 {
		if err := a.fetchMembers(ctx, c, room); err != nil {
			return false, err
		}
		if members, err = store.GetRoomJoinedOrInvitedMembers(ctx, room); err != nil {
			return false, err
		}
	}
	return len(members) <= 2, nil
}

// fetchMembers loads a room's member list from the homeserver.
func (a *Adapter) fetchMembers(ctx context.Context, c *conn, room id.RoomID) error {
	resp, err := c.cli.Members(ctx, room)
	if err != nil {
		return err
	}
	if err := c.cli.StateStore.ReplaceCachedMembers(ctx, room, resp.Chunk); err != nil {
		return err
	}
	return c.cli.StateStore.MarkMembersFetched(ctx, room)
}

// sentByBot reports whether an event was sent by the bot, asking the
// homeserver for events it does not remember.
func (a *Adapter) sentByBot(ctx context.Context, c *conn, room id.RoomID, ev id.EventID) bool {
	if _, ok := a.own.Get(ev); ok {
		return true
	}
	if mine, ok := a.relationSeen.Get(ev); ok {
		return mine
	}
	e, err := c.cli.GetEvent(ctx, room, ev)
	if err != nil {
		a.log.Debug("looking up a replied-to event failed", "event", ev, "error", err)
		return false
	}
	mine := e.Sender == c.cli.UserID
	a.relationSeen.Put(ev, mine)
	return mine
}

// botAnsweredIn reports whether the bot has answered in a thread.
func (a *Adapter) botAnsweredIn(ctx context.Context, c *conn, room id.RoomID, root id.EventID) bool {
	key := roomKey(room, root)
	if _, ok := a.botThreads.Get(key); ok {
		return true
	}
	v, ok, err := a.deps.State.State(ctx, a.stateKey(c, "thread:"+key))
	if err != nil || !ok || v == "" {
		return false
	}
	a.botThreads.Put(key, true)
	return true
}

// markBotThread remembers, across restarts, that the bot answered in a
// thread, so the thread needs no mention from then on.
func (a *Adapter) markBotThread(ctx context.Context, c *conn, room id.RoomID, root id.EventID) {
	key := roomKey(room, root)
	if _, ok := a.botThreads.Get(key); ok {
		return
	}
	a.botThreads.Put(key, true)
	if err := a.deps.State.SetState(ctx, a.stateKey(c, "thread:"+key), "1"); err != nil {
		a.log.Warn("remembering a thread the bot answered in failed", "error", err)
	}
}

// roomName is a room's name, if it has one.
func (a *Adapter) roomName(ctx context.Context, c *conn, room id.RoomID) string {
	if name, ok := a.roomNames.Get(room); ok {
		return name
	}
	var content event.RoomNameEventContent
	if err := c.cli.StateEvent(ctx, room, event.StateRoomName, "", &content); err != nil && !errors.Is(err, mautrix.MNotFound) {
		return ""
	}
	a.roomNames.Put(room, content.Name)
	return content.Name
}

// displayName is a member's display name in a room, else their user id.
func (a *Adapter) displayName(ctx context.Context, c *conn, room id.RoomID, user id.UserID) string {
	if m, err := c.cli.StateStore.TryGetMember(ctx, room, user); err == nil && m != nil && m.Displayname != "" {
		return m.Displayname
	}
	return string(user)
}

// onUndecryptable is told of a message that could not be decrypted, after
// mautrix waited for its keys. It is logged with what may be wrong, and the
// sender, if allowed, is told once in a while, so that a broken session
// does not go unnoticed.
func (a *Adapter) onUndecryptable(evt *event.Event, err error) {
	c := a.current()
	if c == nil || c.runCtx == nil || c.runCtx.Err() != nil || evt.Sender == c.cli.UserID {
		return // stopping, or the bot's own message: nothing to tell
	}
	a.log.Warn("a message could not be decrypted: the sender's client did not share its key with this device, "+
		"or the bot's crypto store was reset; ask the sender to send it again, and check that the bot's device is not blocked",
		"room", evt.RoomID, "event", evt.ID, "sender", evt.Sender, "error", err)
	if !a.userAllowed(evt.Sender) {
		return
	}
	if last, ok := a.undecrypted.Get(evt.RoomID); ok && time.Since(last) < undecryptableNoticeEvery {
		return
	}
	a.undecrypted.Put(evt.RoomID, time.Now())
	ctx, cancel := context.WithTimeout(c.runCtx, lookupTimeout)
	defer cancel()
	notice := &event.MessageEventContent{
		MsgType:   event.MsgNotice,
		Body:      texts.CannotDecrypt,
		RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: evt.ID}},
	}
	if _, err := a.sendEvent(ctx, c, evt.RoomID, event.EventMessage, notice); err != nil {
		a.log.Warn("telling the sender a message could not be decrypted failed", "room", evt.RoomID, "error", err)
	}
}
