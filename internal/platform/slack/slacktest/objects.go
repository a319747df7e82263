package slacktest

import (
	"encoding/json"
	"net/url"
	"path"
	"strings"
	"time"
)

// Building the JSON objects the server sends, from Slack's reference
// pages (docs.slack.dev/reference/objects, docs.slack.dev/reference/events).

// verificationToken is the payload's deprecated "token" field, which Slack
// still sends (docs.slack.dev/apis/events-api, the callback's fields).
const verificationToken = "herald-slacktest-verification-token"

// botProfile is the bot_profile of the bot's messages.
func (s *Server) botProfile() obj {
	return obj{"id": s.BotID, "app_id": s.AppID, "name": s.opts.BotName, "deleted": false,
		"team_id": s.TeamID, "updated": 1700000000}
}

// botMessageObject is a message of the bot's, as the Web API answers it
// (docs.slack.dev/reference/methods/chat.postMessage, the example answer).
func (s *Server) botMessageObject(cs *channelState, m *message) obj {
	o := obj{"type": "message", "user": m.user, "bot_id": m.botID, "app_id": s.AppID, "text": m.text,
		"ts": m.ts, "team": s.TeamID, "bot_profile": s.botProfile()}
	if m.threadTS != "" {
		o["thread_ts"] = m.threadTS
		if p := cs.byTS[m.threadTS]; p != nil {
			o["parent_user_id"] = p.user
		}
		if m.broadcast {
			o["subtype"] = "thread_broadcast"
		}
	}
	if m.blocks != nil {
		o["blocks"] = json.RawMessage(m.blocks)
	}
	if m.edits > 0 {
		o["edited"] = obj{"user": m.user, "ts": m.ts}
	}
	return o
}

// channelObject is a conversation object (docs.slack.dev/reference/objects/
// conversation-object).
func (s *Server) channelObject(cs *channelState) obj {
	kind := cs.kind()
	o := obj{"id": cs.ch.ID, "created": cs.created.Unix(), "is_im": kind == "im", "is_archived": false,
		"is_org_shared": false, "context_team_id": s.TeamID}
	if kind == "im" {
		o["user"] = cs.ch.User
		o["is_user_deleted"] = false
		o["priority"] = 0
		return o
	}
	o["name"] = cs.ch.Name
	o["name_normalized"] = strings.ToLower(cs.ch.Name)
	o["is_channel"] = kind == "channel"
	o["is_group"] = kind == "group"
	o["is_private"] = kind == "group"
	o["is_mpim"] = false
	o["is_general"] = false
	o["is_shared"] = false
	o["is_ext_shared"] = false
	o["is_member"] = true
	o["creator"] = s.BotUserID
	o["topic"] = obj{"value": "", "creator": "", "last_set": 0}
	o["purpose"] = obj{"value": "", "creator": "", "last_set": 0}
	return o
}

// userObject is a user object (docs.slack.dev/reference/objects/
// user-object).
func (s *Server) userObject(u User) obj {
	bot := u.ID == s.BotUserID
	profile := obj{"display_name": u.Name, "display_name_normalized": u.Name, "real_name": u.RealName,
		"real_name_normalized": u.RealName, "team": s.TeamID}
	if bot {
		profile["bot_id"] = s.BotID
		profile["api_app_id"] = s.AppID
	}
	return obj{"id": u.ID, "team_id": s.TeamID, "name": u.Name, "real_name": u.RealName, "deleted": false,
		"is_bot": bot, "is_app_user": false, "is_admin": false, "is_owner": false, "tz": "Etc/UTC",
		"tz_offset": 0, "profile": profile}
}

// fileURL is where a user's file is served: url_private, or
// url_private_download.
func (s *Server) fileURL(f *file, download bool) string {
	p := s.BaseURL + "/files-pri/" + s.TeamID + "-" + f.id + "/"
	if download {
		p += "download/"
	}
	return p + url.PathEscape(f.Name)
}

// fileObject is a file object (docs.slack.dev/reference/objects/
// file-object).
func (s *Server) fileObject(f *file) obj {
	ft := fileType(f)
	return obj{"id": f.id, "created": f.at.Unix(), "timestamp": f.at.Unix(), "name": f.Name, "title": f.Name,
		"mimetype": f.MimeType, "filetype": ft, "pretty_type": strings.ToUpper(ft), "user": f.user,
		"user_team": s.TeamID, "editable": false, "size": len(f.Data), "mode": "hosted", "is_external": false,
		"external_type": "", "is_public": false, "public_url_shared": false, "display_as_bot": false,
		"username": "", "url_private": s.fileURL(f, false), "url_private_download": s.fileURL(f, true),
		"permalink":        "https://" + strings.ToLower(s.opts.TeamName) + ".slack.com/files/" + f.user + "/" + f.id + "/" + url.PathEscape(f.Name),
		"has_rich_preview": false, "file_access": "visible"}
}

// fileType is a file's filetype: its extension, as Slack's (png, pdf,
// text, ...), from its name or else its MIME type.
func fileType(f *file) string {
	if ext := strings.TrimPrefix(path.Ext(f.Name), "."); ext != "" {
		ext = strings.ToLower(ext)
		if ext == "txt" {
			return "text"
		}
		return ext
	}
	if _, sub, ok := strings.Cut(f.MimeType, "/"); ok && sub != "" {
		if sub == "plain" {
			return "text"
		}
		return sub
	}
	return "binary"
}

// sockEvent is an event to deliver, with its envelope's type and payload.
type sockEvent struct {
	eventID string
	typ     string
	payload obj
}

// eventCallbackLocked wraps an event in its callback (docs.slack.dev/apis/
// events-api, the callback's fields): the payload of an events_api
// envelope.
func (s *Server) eventCallbackLocked(event obj) *sockEvent {
	id := s.newIDLocked("Ev")
	return &sockEvent{eventID: id, typ: "events_api", payload: obj{
		"token":      verificationToken,
		"team_id":    s.TeamID,
		"api_app_id": s.AppID,
		"event":      event,
		"type":       "event_callback",
		"event_id":   id,
		"event_time": time.Now().Unix(),
		"authorizations": []obj{{"enterprise_id": nil, "team_id": s.TeamID, "user_id": s.BotUserID,
			"is_bot": true, "is_enterprise_install": false}},
		"is_ext_shared_channel": false,
		"event_context":         "4-" + randomHex(24),
	}}
}

// userMessageEventLocked is the message event of a user's message
// (docs.slack.dev/reference/events/message, with channel_type as in
// message.im, message.channels and message.groups). A message with files
// has the subtype file_share (docs.slack.dev/reference/events/message/
// file_share).
func (s *Server) userMessageEventLocked(cs *channelState, m *message) *sockEvent {
	ev := s.userEventFields(cs, m, "message")
	ev["channel_type"] = cs.kind()
	return s.eventCallbackLocked(ev)
}

// appMentionEventLocked is the app_mention event of a user's message that
// mentions the bot (docs.slack.dev/reference/events/app_mention).
func (s *Server) appMentionEventLocked(cs *channelState, m *message) *sockEvent {
	return s.eventCallbackLocked(s.userEventFields(cs, m, "app_mention"))
}

// userEventFields are the fields message and app_mention events share.
func (s *Server) userEventFields(cs *channelState, m *message, typ string) obj {
	ev := obj{"type": typ, "channel": cs.ch.ID, "user": m.user, "text": m.text, "ts": m.ts, "event_ts": m.ts,
		"team": s.TeamID, "client_msg_id": newUUID(), "blocks": richTextBlocks(m.text, randomHex(3))}
	if m.threadTS != "" {
		ev["thread_ts"] = m.threadTS
		if p := cs.byTS[m.threadTS]; p != nil && p != m {
			ev["parent_user_id"] = p.user
		}
	}
	if len(m.files) > 0 {
		files := make([]obj, 0, len(m.files))
		for _, f := range m.files {
			files = append(files, s.fileObject(f))
		}
		ev["files"] = files
		ev["upload"] = false
		ev["display_as_bot"] = false
		if typ == "message" {
			ev["subtype"] = "file_share"
		}
	}
	return ev
}

// botMessageEventLocked is the message event an app gets of its own bot's
// post (docs.slack.dev/reference/events/message, messages with bot_id).
func (s *Server) botMessageEventLocked(cs *channelState, m *message) *sockEvent {
	ev := s.botMessageObject(cs, m)
	ev["channel"] = cs.ch.ID
	ev["channel_type"] = cs.kind()
	ev["event_ts"] = m.ts
	return s.eventCallbackLocked(ev)
}
