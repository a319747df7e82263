package discordtest

import (
	"encoding/json"
	"strings"
	"time"
)

// Building the JSON objects the server sends from what it keeps.

// The message flags the fake uses (docs: resources/message, "Message
// Flags").
const (
	flagHasThread = 1 << 5
	flagEphemeral = 1 << 6
	flagLoading   = 1 << 7
)

// botPermissions are the permissions the bot's member and interactions
// show: every text permission a bot is usually given.
const botPermissions = "2248473465835073"

func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

func strPtr(s string) *string { return &s }

func intPtr(n int) *int { return &n }

func boolPtr(b bool) *bool { return &b }

// userObject is a user as other users see it.
func userObject(u User) apiUser {
	out := apiUser{ID: u.ID, Username: u.Username, Discriminator: "0", Bot: u.Bot}
	if u.GlobalName != "" {
		out.GlobalName = strPtr(u.GlobalName)
	}
	if out.Username == "" {
		out.Username = "user" + u.ID
	}
	return out
}

// botObject is the bot's own user object (GET /users/@me, READY).
func (s *Server) botObject() apiUser {
	u := userObject(s.Bot)
	u.Verified, u.MFAEnabled, u.Flags = boolPtr(true), boolPtr(false), intPtr(0)
	return u
}

// memberObject is a guild member; withUser puts the user in.
func (s *Server) memberObject(g *guild, u User, withUser bool) apiMember {
	joined := time.Now()
	if g != nil {
		joined = g.joined
	}
	m := apiMember{Roles: []string{}, JoinedAt: timestamp(joined)}
	if withUser {
		uo := userObject(u)
		m.User = &uo
	}
	return m
}

func (s *Server) findGuildLocked(id string) *guild {
	for _, g := range s.guilds {
		if g.id == id {
			return g
		}
	}
	return nil
}

// channelObjectLocked is a channel object.
func (s *Server) channelObjectLocked(cs *channelState) apiChannel {
	c := cs.ch
	out := apiChannel{ID: c.ID, Type: c.Type, GuildID: c.GuildID}
	var last *string
	for i := len(cs.msgs) - 1; i >= 0; i-- {
		if !cs.msgs[i].deleted {
			last = strPtr(cs.msgs[i].id)
			break
		}
	}
	out.LastMessageID = last
	switch c.Type {
	case ChannelDM:
		if c.Recipient != nil {
			out.Recipients = []apiUser{userObject(*c.Recipient)}
		}
	case ChannelPublicThread:
		out.Name = strPtr(c.Name)
		out.ParentID = strPtr(c.ParentID)
		out.OwnerID = s.Bot.ID
		out.RateLimitPerUser = intPtr(0)
		n := 0
		for _, m := range cs.msgs {
			if !m.deleted {
				n++
			}
		}
		out.MessageCount, out.MemberCount, out.TotalMessageSent = intPtr(n), intPtr(1), intPtr(n)
		out.ThreadMetadata = &apiThreadMetadata{AutoArchiveDuration: cs.autoArch,
			ArchiveTimestamp: timestamp(cs.createdAt), CreateTimestamp: timestamp(cs.createdAt)}
	default:
		out.Name = strPtr(c.Name)
		out.Position = intPtr(0)
		out.PermissionOverwrites = []json.RawMessage{}
		out.NSFW = boolPtr(false)
		out.RateLimitPerUser = intPtr(0)
		if c.ParentID != "" {
			out.ParentID = strPtr(c.ParentID)
		}
	}
	return out
}

// guildObjectLocked is a guild as GUILD_CREATE sends it.
func (s *Server) guildObjectLocked(g *guild) apiGuild {
	out := apiGuild{ID: g.id, Name: g.name, OwnerID: "1", AFKTimeout: 300,
		Roles:  []apiRole{{ID: g.id, Name: "@everyone", Permissions: "1071698660929"}},
		Emojis: []json.RawMessage{}, Features: []string{}, PreferredLocale: "en-US",
		Stickers: []json.RawMessage{}, JoinedAt: timestamp(g.joined), VoiceStates: []json.RawMessage{},
		Members:  []apiMember{s.memberObject(g, s.Bot, true)},
		Channels: []apiChannel{}, Threads: []apiChannel{}, Presences: []json.RawMessage{},
		StageInstances: []json.RawMessage{}, GuildScheduledEvents: []json.RawMessage{}}
	members := map[string]bool{s.Bot.ID: true}
	for _, id := range g.channels {
		cs := s.channels[id]
		if cs == nil {
			continue
		}
		if cs.ch.Type == ChannelPublicThread {
			out.Threads = append(out.Threads, s.channelObjectLocked(cs))
		} else {
			out.Channels = append(out.Channels, s.channelObjectLocked(cs))
		}
		for _, m := range cs.msgs {
			members[m.author.ID] = true
		}
	}
	out.MemberCount = len(members)
	return out
}

// readyObjectLocked is READY's data (docs: events/gateway-events, "Ready").
func (s *Server) readyObjectLocked(sess *session) any {
	guilds := []map[string]any{}
	for _, g := range s.guilds {
		guilds = append(guilds, map[string]any{"id": g.id, "unavailable": true})
	}
	return map[string]any{
		"v":                  10,
		"user":               s.botObject(),
		"guilds":             guilds,
		"session_id":         sess.id,
		"session_type":       "normal",
		"resume_gateway_url": s.wsURL,
		"application":        map[string]any{"id": s.ApplicationID, "flags": 0},
		"private_channels":   []any{},
		"relationships":      []any{},
		"presences":          []any{},
		"_trace":             []string{`["discordtest",{"micros":0}]`},
	}
}

// messageObjectLocked is a message object as the REST API returns it.
func (s *Server) messageObjectLocked(m *message) apiMessage { return s.messageJSONLocked(m, true) }

// messageJSONLocked is a message object; withReferenced puts the message
// it replies to in referenced_message (Discord does not nest them).
func (s *Server) messageJSONLocked(m *message, withReferenced bool) apiMessage {
	users, roles, everyone := s.mentionedLocked(m)
	out := apiMessage{ID: m.id, ChannelID: m.channelID, Author: userObject(m.author), Content: m.content,
		Timestamp: timestamp(m.at), MentionEveryone: everyone, Mentions: []apiUser{}, MentionRoles: []string{},
		Attachments: []apiAttachment{}, Embeds: []json.RawMessage{}, Type: m.typ, Flags: m.flags,
		Components: []json.RawMessage{}}
	if !m.edited.IsZero() {
		out.EditedTimestamp = strPtr(timestamp(m.edited))
	}
	for _, u := range users {
		out.Mentions = append(out.Mentions, userObject(u))
	}
	out.MentionRoles = append(out.MentionRoles, roles...)
	for _, a := range m.attachments {
		ao := apiAttachment{ID: a.id, Filename: a.Filename, ContentType: a.ContentType, Size: len(a.Data),
			URL: s.attachmentURL(m.channelID, a)}
		ao.ProxyURL = ao.URL
		if w, h, ok := imageSize(a); ok {
			ao.Width, ao.Height = intPtr(w), intPtr(h)
		}
		out.Attachments = append(out.Attachments, ao)
	}
	for _, e := range m.reactions {
		r := apiReaction{Count: 1, CountDetails: map[string]int{"burst": 0, "normal": 1}, Me: true,
			BurstColors: []string{}, Emoji: apiEmoji{Name: e}}
		if name, id, ok := strings.Cut(e, ":"); ok {
			r.Emoji = apiEmoji{ID: strPtr(id), Name: name}
		}
		out.Reactions = append(out.Reactions, r)
	}
	if m.replyTo != "" && (m.replyKnown || m.author.ID != s.Bot.ID) {
		cs := s.channels[m.channelID]
		out.MessageReference = &apiMessageReference{MessageID: m.replyTo, ChannelID: m.channelID}
		if cs != nil {
			out.MessageReference.GuildID = cs.ch.GuildID
		}
		if withReferenced {
			raw := json.RawMessage("null")
			if r := s.messages[m.replyTo]; r != nil && m.replyKnown && !r.deleted {
				raw, _ = json.Marshal(s.messageJSONLocked(r, false))
			}
			out.ReferencedMessage = &raw
		}
	}
	if m.thread != "" {
		if ts := s.channels[m.thread]; ts != nil {
			th := s.channelObjectLocked(ts)
			out.Thread = &th
		}
	}
	if m.webhook || m.interaction != nil {
		out.WebhookID = s.ApplicationID
		out.ApplicationID = s.ApplicationID
	}
	if it := m.interaction; it != nil {
		out.InteractionMetadata = &apiInteractionMetadata{ID: it.id, Type: 2, User: userObject(it.User), Name: it.Name}
	}
	return out
}

// messageEventLocked is a message as MESSAGE_CREATE and MESSAGE_UPDATE
// send it to a session: with guild_id and member in a guild, and, without
// the MESSAGE_CONTENT intent, with empty content, attachments and embeds
// unless the bot wrote it, it is a DM, or it mentions the bot
// (discord.com/developers/docs/events/gateway#message-content-intent).
func (s *Server) messageEventLocked(m *message, sess *session) apiMessage {
	out := s.messageObjectLocked(m)
	cs := s.channels[m.channelID]
	if cs != nil && cs.ch.GuildID != "" {
		out.GuildID = cs.ch.GuildID
		if !m.webhook && m.interaction == nil {
			mo := s.memberObject(s.findGuildLocked(cs.ch.GuildID), m.author, false)
			out.Member = &mo
		}
	}
	if sess.intents&IntentMessageContent == 0 && cs != nil && cs.ch.Type != ChannelDM && m.author.ID != s.Bot.ID {
		mentioned := false
		for _, u := range out.Mentions {
			mentioned = mentioned || u.ID == s.Bot.ID
		}
		if !mentioned {
			out.Content, out.Attachments, out.Embeds, out.Components = "", []apiAttachment{}, []json.RawMessage{}, []json.RawMessage{}
		}
	}
	return out
}

// interactionObjectLocked is INTERACTION_CREATE's data (docs:
// interactions/receiving-and-responding, "Interaction Object").
func (s *Server) interactionObjectLocked(it *interaction) map[string]any {
	out := map[string]any{
		"id":                             it.id,
		"application_id":                 s.ApplicationID,
		"type":                           2,
		"data":                           map[string]any{"id": it.commandID, "name": it.Name, "type": 1},
		"channel_id":                     it.ChannelID,
		"token":                          it.token,
		"version":                        1,
		"app_permissions":                botPermissions,
		"locale":                         "en-US",
		"entitlements":                   []any{},
		"authorizing_integration_owners": map[string]string{"0": "1"},
	}
	if cs := s.channels[it.ChannelID]; cs != nil {
		out["channel"] = s.channelObjectLocked(cs)
	}
	if it.GuildID != "" {
		m := s.memberObject(s.findGuildLocked(it.GuildID), it.User, true)
		m.Permissions = botPermissions
		out["guild_id"] = it.GuildID
		out["guild_locale"] = "en-US"
		out["member"] = m
		out["context"] = 0
	} else {
		out["user"] = userObject(it.User)
		out["context"] = 1
	}
	return out
}
