package chat

import (
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
	// To is where the answer goes, when the adapter knows better than
	// TargetOf(Source); see AnswerTarget.
	To *Target `json:"to,omitempty"`
}

// AnswerTarget is where the answer to the message goes: To as the adapter
// set it, else back where the message came from (also for messages
// journalled before To existed).
func (in Inbound) AnswerTarget() Target {
	if in.To != nil {
		return *in.To
	}
	return TargetOf(in.Source)
}
