// Package chat holds the platform-neutral types that flow between platform
// adapters, the gateway and the agent backends.
package chat

// ChatType says what kind of conversation a message came from; it decides how
// sessions are keyed and whether the bot must be mentioned.
type ChatType string

// The chat types the Hermes protocol knows.
const (
	DM      ChatType = "dm"
	Group   ChatType = "group"
	Channel ChatType = "channel"
	Thread  ChatType = "thread"
)

// Source identifies where a message came from: enough to answer it and to tell
// the agent who is speaking.
type Source struct {
	Platform  string   `json:"platform"`
	ChatID    string   `json:"chat_id"`
	ChatName  string   `json:"chat_name,omitempty"`
	ChatType  ChatType `json:"chat_type"`
	UserID    string   `json:"user_id"`
	UserName  string   `json:"user_name,omitempty"`
	ThreadID  string   `json:"thread_id,omitempty"` // empty when the message is not in a thread
	MessageID string   `json:"message_id,omitempty"`
}

// Target is where and how the answer to a message goes: everything an
// adapter needs to answer in place. It travels with the turn and is
// journalled with it, so that an answer resumed after a restart goes
// exactly where the first attempt's would have.
type Target struct {
	ChatID string `json:"chat_id"`
	// ThreadID is the thread the answer goes in. It may differ from the
	// Source's, which keys the session (Matrix threads that share their
	// room's session are still answered in the thread).
	ThreadID string `json:"thread_id,omitempty"`
	// ReplyTo is the message being answered, where the platform links replies.
	ReplyTo string `json:"reply_to,omitempty"`
	// Asker is that message's author, mentioned where the platform does.
	Asker string `json:"asker,omitempty"`
	// DM tells a direct chat from a group: platforms answer differently.
	DM bool `json:"dm,omitempty"`
	// Once, where set, tells this message apart from an identical one sent
	// to the same place (a delivery's key): a platform that makes a send
	// made twice one (Discord's nonce) counts it in.
	Once string `json:"once,omitempty"`
}

// TargetOf answers a message back where it came from.
func TargetOf(src Source) Target {
	return Target{ChatID: src.ChatID, ThreadID: src.ThreadID, ReplyTo: src.MessageID, Asker: src.UserID, DM: src.ChatType == DM}
}

// Role is the author of a transcript entry, as the chat completions API names it.
type Role string

// The roles a transcript may hold. Only User and Assistant entries with text
// are sent upstream; System and Tool come from imported Hermes histories,
// Notice from the gateway itself.
const (
	System    Role = "system"
	User      Role = "user"
	Assistant Role = "assistant"
	Tool      Role = "tool"
	// Notice is the gateway's own word in a conversation (a restart cut an
	// answer short): kept so that a chat's history shows it, never sent to
	// the agent.
	Notice Role = "notice"
)

// Message is one transcript entry. Content is empty for entries that carried
// no text (an assistant turn that only called tools, for example).
type Message struct {
	Role    Role   `json:"role"`
	Content string `json:"content"`
}
