package platform

import (
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/config"
)

// The reply modes, as Hermes's reply_to_mode names them: which messages
// of an answer reply to (quote) the message it answers.
const (
	ReplyOff   = "off"
	ReplyFirst = "first" // the answer's first message, Hermes's default
	ReplyAll   = "all"
)

// Replies decides, for a platform that links a message to the one it
// replies to, which messages of an answer do (see the reply modes). It is
// safe for concurrent use.
type Replies struct {
	mode string
	// replied holds the messages (chat/message id) an answer has replied
	// to already.
	replied *Recent[string, bool]
}

// NewReplies follows mode; "" is ReplyFirst.
func NewReplies(mode string) *Replies {
	if mode == "" {
		mode = ReplyFirst
	}
	return &Replies{mode: mode, replied: NewRecent[string, bool](4096)}
}

// Next tells whether the next message to t replies to the message t
// answers.
func (r *Replies) Next(t chat.Target) bool {
	switch r.mode {
	case ReplyAll:
		return t.ReplyTo != ""
	case ReplyFirst:
		_, sent := r.replied.Get(t.ChatID + "/" + t.ReplyTo)
		return t.ReplyTo != "" && !sent
	}
	return false
}

// Sent records that a message of the answer to t went out.
func (r *Replies) Sent(t chat.Target) {
	if t.ReplyTo != "" {
		r.replied.Put(t.ChatID+"/"+t.ReplyTo, true)
	}
}

// ReplyModeSetting is a platform's reply_to_mode, read as Hermes reads it
// (platforms.<name>.reply_to_mode, its extra and <name>: spellings, and
// env), into dst.
func ReplyModeSetting(name, env string, dst *string) config.Setting {
	return config.Setting{Key: "platforms." + name + ".reply_to_mode", Env: env, Default: ReplyFirst,
		AltKeys: []string{"platforms." + name + ".extra.reply_to_mode", name + ".reply_to_mode"},
		Set:     config.Enum(dst, ReplyOff, ReplyFirst, ReplyAll), Category: config.Messaging, Advanced: true,
		Description: "Which messages of an answer reply to the message answered: off, first (the answer's first message) or all",
		Prompt:      name + " reply mode"}
}
