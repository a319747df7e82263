package chat

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

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

// NewSessionID returns a new session id in the shape Hermes API servers
// validate: YYYYMMDD_HHMMSS_ and six hex digits.
func NewSessionID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return now.Format("20060102_150405") + "_" + hex.EncodeToString(b[:])
}
