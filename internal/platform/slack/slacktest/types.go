package slacktest

import (
	"encoding/json"
	"time"
)

// The types a test uses to build the workspace and to read what it shows.
// The JSON objects the server sends are built in objects.go, from Slack's
// documentation (docs.slack.dev, "Reference") rather than from a client
// library, so that the fake checks the adapter against the API's shapes.

// Channel is a conversation the bot is a member of. Its ID tells its kind,
// as Slack's do: "D…" a direct message (IM), "C…" a public channel, "G…" a
// private one.
type Channel struct {
	ID, Name string
	// User is the other member of an IM.
	User string
}

// User is a member of the workspace.
type User struct {
	ID, Name, RealName string
}

// File is a file a user shares with a message. It is served at its
// url_private, to the bot's token only.
type File struct {
	Name, MimeType string
	Data           []byte
}

// Incoming is a message a user posts, for Inject.
type Incoming struct {
	Channel, User string
	// Text is the message's text as Slack sends it: mentions as
	// "<@U…>", and "&", "<" and ">" of the user's own text escaped.
	Text string
	// ThreadTS makes the message a reply in that thread.
	ThreadTS string
	Files    []File
}

// Message is a message as a channel shows it.
type Message struct {
	TS, ThreadTS string
	// User is the author; for the bot, its bot user, with BotID set.
	User, BotID string
	// Text is the text field; for a message sent with blocks only, the
	// text of its blocks; for a streamed one, every markdown_text part.
	Text   string
	Blocks json.RawMessage
	// Streaming: chat.startStream made it and chat.stopStream has not
	// ended it yet. Streamed: chat.startStream made it.
	Streaming, Streamed bool
	// Edits counts the chat.update calls that changed it, and
	// StreamingEdits those made while it was still streaming, which
	// Slack's documentation neither allows nor forbids.
	Edits, StreamingEdits int
	// Appends counts the chat.appendStream calls that added to it.
	Appends int
	Files   []File
	At      time.Time
}

// Call is one request to the Web API, or one file download (Method
// "files-pri").
type Call struct {
	At     time.Time
	Method string
	// Channel is the channel argument (channel or channel_id), if any.
	Channel string
	// Params are the arguments but the token; a JSON body's values other
	// than strings are kept as JSON text.
	Params map[string]string
	// Status is the HTTP status answered: 200, or 429 for a rate limit.
	Status int
	// Error is the answer's error code; "" when ok.
	Error string
	// RetryAfter is the Retry-After of a 429.
	RetryAfter time.Duration
}

// Penalty is a time a method (in one channel, or in all when Channel is
// empty) refused every call with 429.
type Penalty struct {
	Method, Channel string
	At, Until       time.Time
}

// Envelope is one delivery of an event over Socket Mode.
type Envelope struct {
	ID, EventID, Type string
	// Retry is the retry_attempt: 0 for the first delivery.
	Retry       int
	RetryReason string
	// Conn numbers the connection it went out on, from 1.
	Conn    int
	SentAt  time.Time
	AckedAt time.Time // zero while it is not acknowledged
}

// Ack is an acknowledgement a client sent.
type Ack struct {
	EnvelopeID string
	At         time.Time
	// Payload is the ack's payload, if it had one.
	Payload json.RawMessage
	// Late: the envelope had already been given up on (its ack time was
	// over, or its connection was gone) or was unknown.
	Late bool
}

// Status is one change of an assistant thread's status.
type Status struct {
	// Text is the status; "" clears it.
	Text string
	At   time.Time
	// Reply: the bot's reply in the thread cleared it, as Slack does.
	Reply bool
}
