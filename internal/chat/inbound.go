package chat

import (
	"strings"
	"time"
)

// The JSON names below are the turn journal's stored format: keep them.

// Attachment is a file that came with a message. Images are passed to the
// agent as image_url content parts.
type Attachment struct {
	Kind     string `json:"kind"` // "image"
	MIMEType string `json:"mime_type,omitempty"`
	Name     string `json:"name,omitempty"`
	Data     []byte `json:"data,omitempty"`
}

// Inbound is one message from a platform.
type Inbound struct {
	Source      Source       `json:"source"`
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Mentioned is true when the message addresses the bot (a mention, a
	// reply to the bot, a command for it). DMs count as mentioned.
	Mentioned bool `json:"mentioned"`
	// EventID is unique per platform; the gateway drops a second delivery.
	EventID  string    `json:"event_id,omitempty"`
	Received time.Time `json:"received"`
}

// SessionKeyOptions are the Hermes settings that shape session keys.
type SessionKeyOptions struct {
	GroupPerUser  bool // group_sessions_per_user, default true
	ThreadPerUser bool // thread_sessions_per_user, default false
}

// SessionKey names the conversation a message belongs to: a DM by its chat;
// a group or channel per user (unless GroupPerUser is off); a thread shared
// by its participants (unless ThreadPerUser is on).
func SessionKey(src Source, opt SessionKeyOptions) string {
	key := src.Platform + ":"
	switch {
	case src.ChatType == DM:
		return key + "dm:" + src.ChatID
	case src.ThreadID != "":
		key += "thread:" + src.ChatID + ":" + src.ThreadID
		if opt.ThreadPerUser {
			key += ":" + src.UserID
		}
		return key
	default:
		key += string(src.ChatType) + ":" + src.ChatID
		if opt.GroupPerUser {
			key += ":" + src.UserID
		}
		return key
	}
}

// Command recognises the gateway's own commands, written with "/" or
// "!" (chat clients often swallow "/"), optionally addressed as
// /cmd@botname, and returns the command word in lower case. Other /words
// are not commands: they go to the agent. Platforms use it too, to know a
// message that resets the conversation (new, reset).
func Command(text string) (string, bool) {
	text = strings.TrimSpace(text)
	if len(text) < 2 || (text[0] != '/' && text[0] != '!') {
		return "", false
	}
	word, _, _ := strings.Cut(text[1:], " ")
	word, _, _ = strings.Cut(word, "@")
	word = strings.ToLower(word)
	switch word {
	case "new", "reset", "stop", "status", "help":
		return word, true
	}
	return "", false
}
