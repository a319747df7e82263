// Package store keeps what must survive a restart: which session each
// conversation is in, the transcripts, the platform events already seen, the
// turn journal, the chats messages came from, the outbox of deliveries,
// pairing codes and platform positions (offsets, sync tokens).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/herald-chat/herald/internal/chat"
)

// ErrDuplicate means the platform event was already received.
var ErrDuplicate = errors.New("store: event already received")

// ErrNotFound means the thing asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// TurnStatus is where a turn is in its life.
type TurnStatus string

// A turn is received (journalled), then running, then delivered or failed.
const (
	Received  TurnStatus = "received"
	Running   TurnStatus = "running"
	Delivered TurnStatus = "delivered"
	Failed    TurnStatus = "failed"
)

// Turn is one journalled inbound message and what became of it.
type Turn struct {
	ID         int64
	SessionKey string
	Inbound    chat.Inbound
	Status     TurnStatus
	// Shown is true once any answer text reached the user; a turn cut off
	// after that is not run again, the user gets a notice instead.
	Shown bool
	// Final is the final text the turn was delivering when the process
	// stopped, and the messages it was editing into it; nil until the
	// final delivery starts.
	Final *Final
	// Progress is where the turn had got to: its run on the agent server
	// and the messages showing its answer so far.
	Progress  Progress
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Final is a turn's final text and the messages already showing the
// answer that its delivery edits into it, recorded before the edits so
// that after a crash they are made again (an edit is the same made twice)
// rather than a notice sent after a complete answer.
type Final struct {
	Text       string   `json:"text"`
	MessageIDs []string `json:"message_ids"`
}

// Progress is where a running turn has got to, recorded as it moves on so
// that after a crash the turn follows its run on the agent server (rather
// than asking the agent again) and finishes the answer in the messages
// that show it (rather than sending a notice).
type Progress struct {
	RunID      string   `json:"run_id,omitempty"`
	MessageIDs []string `json:"message_ids,omitempty"`
}

// Entry is one transcript line.
type Entry struct {
	Role      chat.Role
	Content   string
	MessageID string // the platform's message id, when there is one
	At        time.Time
}

// Pairing is a one-time code that lets an unknown user in once approved.
type Pairing struct {
	Code      string
	Platform  string
	UserID    string
	UserName  string
	CreatedAt time.Time
	Approved  bool
}

// Journal is the turn journal: every inbound message from the moment it
// arrives until its answer is delivered.
type Journal interface {
	// Receive journals an inbound message as a Received turn, unless its
	// (platform, event id) was seen before: then it returns ErrDuplicate.
	// The check and the insert are one transaction, which also records the
	// message's chat (see Chats).
	Receive(ctx context.Context, sessionKey string, in chat.Inbound) (Turn, error)
	// SetTurnStatus moves a turn on; errText is kept for a turn that ends,
	// Failed (its delivery failed) or Delivered (the chat was shown the
	// agent server's error, or "" when the agent answered).
	SetTurnStatus(ctx context.Context, id int64, status TurnStatus, errText string) error
	// MarkShown records that answer text reached the user.
	MarkShown(ctx context.Context, id int64) error
	// SetTurnFinal records the final text a turn is about to deliver.
	SetTurnFinal(ctx context.Context, id int64, f Final) error
	// SetTurnProgress records where a running turn has got to.
	SetTurnProgress(ctx context.Context, id int64, p Progress) error
	// PendingTurns lists turns left Received or Running, oldest first: after
	// a crash these are resumed or answered with a notice.
	PendingTurns(ctx context.Context) ([]Turn, error)
}

// Sessions maps each conversation to its current agent session.
type Sessions interface {
	// SessionID returns the current session id of a conversation.
	SessionID(ctx context.Context, key string) (id string, ok bool, err error)
	// SetSessionID starts a new session for a conversation, whatever its
	// current one (the user asked for a new conversation).
	SetSessionID(ctx context.Context, key, id string) error
	// SwapSessionID moves a conversation from session old to session new
	// only if old is still its current session ("" for none yet), in one
	// step: a rotation reported by the agent never overwrites a /new that
	// came meanwhile. It reports whether the swap happened.
	SwapSessionID(ctx context.Context, key, old, new string) (bool, error)
}

// Transcripts keeps each session's conversation.
type Transcripts interface {
	// Append adds entries to a session's transcript.
	Append(ctx context.Context, sessionID string, entries ...Entry) error
	// History returns a session's last limit entries, oldest first (all when limit <= 0).
	History(ctx context.Context, sessionID string, limit int) ([]Entry, error)
}

// Pairings are the one-time codes that let unknown users in.
type Pairings interface {
	// CreatePairing returns a pairing code for a user, reusing the user's
	// pending code if there is one.
	CreatePairing(ctx context.Context, platform, userID, userName string) (Pairing, error)
	// ApprovePairing approves a code; ErrNotFound if there is no such pending code.
	ApprovePairing(ctx context.Context, code string) (Pairing, error)
	// IsPaired reports whether a user was approved through pairing.
	IsPaired(ctx context.Context, platform, userID string) (bool, error)
}

// Admin is what the operator's commands (herald pairing, sessions,
// turns) read and change, beside a running gateway.
type Admin interface {
	// Pairings lists the pending codes still approvable and the users
	// approved, newest first.
	Pairings(ctx context.Context) ([]Pairing, error)
	// RevokePairing takes a paired user's approval back (and drops their
	// pending codes): the gateway refuses their next message. ErrNotFound
	// if the user was not paired.
	RevokePairing(ctx context.Context, platform, userID string) error
	// Conversations lists the conversations messages came from, with their
	// current session, last active first; on one platform, or all when
	// platform is "".
	Conversations(ctx context.Context, platform string) ([]Conversation, error)
	// Turns lists the last limit turns of the journal that filter keeps,
	// newest first.
	Turns(ctx context.Context, filter TurnFilter, limit int) ([]Turn, error)
}

// Conversation is a conversation as herald sessions lists it.
type Conversation struct {
	Chat
	// SessionID is its current session ("" before its first turn ran).
	SessionID string
}

// TurnFilter picks the turns Admin.Turns lists.
type TurnFilter int

// The filters: every turn; the turns not finished (received or running);
// the turns that ended with an error (the agent server's, shown in the
// chat, or their delivery's).
const (
	AllTurns TurnFilter = iota
	PendingTurnsOnly
	FailedTurnsOnly
)

// Chat is a conversation the gateway has received messages in: a place
// the agent's own messages may be delivered to.
type Chat struct {
	SessionKey string
	// Source is where its latest message came from, without the message's
	// id.
	Source chat.Source
	SeenAt time.Time
}

// Chats are the conversations the gateway knows, recorded as their
// messages are journalled (Journal.Receive).
type Chats interface {
	// FindChat returns the conversation last seen in a chat on a platform,
	// in its thread when threadID is not ""; ErrNotFound if none.
	FindChat(ctx context.Context, platform, chatID, threadID string) (Chat, error)
	// ChatOfSession returns the conversation whose current session is
	// sessionID; ErrNotFound if none.
	ChatOfSession(ctx context.Context, sessionID string) (Chat, error)
}

// SendStatus is where one send of a delivery is in its life.
type SendStatus string

// A send is queued, then sending (its call may be made: it is never made
// again), then sent or failed; one a restart found sending is uncertain.
const (
	Queued    SendStatus = "queued"
	Sending   SendStatus = "sending"
	Sent      SendStatus = "sent"
	NotSent   SendStatus = "failed"
	Uncertain SendStatus = "uncertain"
)

// Delivery is one message the agent asked to send on its own (a scheduled
// job's report), journalled in the outbox with a send for each chat its
// target names.
type Delivery struct {
	ID int64
	// Key is the caller's idempotency key: one key, one delivery.
	Key string
	// Target is the target as the caller named it.
	Target    string
	Text      string
	Sends     []Send
	CreatedAt time.Time
}

// Send is a delivery's message to one chat.
type Send struct {
	Platform   string
	Target     chat.Target
	Status     SendStatus
	Error      string
	MessageIDs []string
	UpdatedAt  time.Time
}

// Outbox journals the agent's own messages until they are delivered.
type Outbox interface {
	// Enqueue journals d with its sends, all Queued, in one transaction,
	// and returns it with its id; if d.Key was journalled before, it
	// writes nothing and returns that delivery with ErrDuplicate.
	Enqueue(ctx context.Context, d Delivery) (Delivery, error)
	// Delivery returns a delivery by id; ErrNotFound if none.
	Delivery(ctx context.Context, id int64) (Delivery, error)
	// DeliveryByKey returns the delivery of an idempotency key;
	// ErrNotFound if none.
	DeliveryByKey(ctx context.Context, key string) (Delivery, error)
	// SetSendStatus moves a delivery's send (its index in Sends) on, with
	// the messages that show it so far; errText is kept for NotSent and
	// Uncertain.
	SetSendStatus(ctx context.Context, id int64, send int, status SendStatus, errText string, messageIDs []string) error
	// UnsentDeliveries lists the deliveries with a send left Queued or
	// Sending, oldest first.
	UnsentDeliveries(ctx context.Context) ([]Delivery, error)
}

// Leaser hands out leases, for replicas sharing one store: a name is held
// by one holder at a time, until its expiry by the store's own clock, with
// a fencing token that grows with every new holder. Only a store several
// processes share has them (PostgreSQL); SQLite's one process needs none.
type Leaser interface {
	// TakeLease gives the lease to holder for ttl when it is free, lapsed,
	// or held by holder already (a renewal, token unchanged); it reports
	// whether holder holds it now, and its token.
	TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (token int64, held bool, err error)
	// ReleaseLease lets go of a lease holder holds, so that another may
	// take it at once.
	ReleaseLease(ctx context.Context, name, holder string) error
	// Leases returns the leases held now (not lapsed), by name, with
	// their holders: how replicas see each other (see package app).
	Leases(ctx context.Context) (map[string]string, error)
}

// Store is all of the gateway's persistent state, as one store provides
// it; each consumer asks for the part it needs. Implementations are safe
// for concurrent use.
type Store interface {
	Journal
	Sessions
	Transcripts
	Pairings
	Chats
	Outbox
	Admin
	// State reads a named platform position (an update offset, a sync token).
	State(ctx context.Context, name string) (value string, ok bool, err error)
	// SetState writes a named platform position.
	SetState(ctx context.Context, name, value string) error
	// PruneSeen and PruneTurns forget the seen events and settled turns
	// (and settled deliveries, with their keys) older than the given age,
	// and say how many.
	PruneSeen(ctx context.Context, olderThan time.Duration) (int64, error)
	PruneTurns(ctx context.Context, olderThan time.Duration) (int64, error)
	// Close flushes and closes the store.
	Close() error
}
