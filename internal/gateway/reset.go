package gateway

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/stream"
	"github.com/herald-chat/herald/internal/texts"
)

// SessionReset starts a conversation afresh by itself, as Hermes's
// session_reset does: after it was idle, or once a day.
type SessionReset struct {
	Mode   string        // none, idle, daily or both
	Idle   time.Duration // for idle and both
	AtHour int           // for daily and both, in local time
	Notify bool          // tell the user
	Quiet  []string      // platforms whose users are not told
}

// due says why a conversation last active at last starts afresh at now,
// "" when it does not.
func (p SessionReset) due(last, now time.Time) string {
	idle := p.Mode == "idle" || p.Mode == "both"
	daily := p.Mode == "daily" || p.Mode == "both"
	if idle && p.Idle > 0 && now.Sub(last) > p.Idle {
		return texts.IdleFor(now.Sub(last))
	}
	if daily {
		boundary := time.Date(now.Year(), now.Month(), now.Day(), p.AtHour, 0, 0, 0, now.Location())
		if boundary.After(now) {
			boundary = boundary.AddDate(0, 0, -1)
		}
		if last.Before(boundary) {
			return texts.DailyAt(p.AtHour)
		}
	}
	return ""
}

// resetSession moves the turn's conversation to a new session, unless
// something else (a /new) did meanwhile, and tells the user why, if the
// policy says to. It returns the session the turn runs in.
func (r *Runner) resetSession(j *job, old, why string, log *slog.Logger) string {
	id := chat.NewSessionID(time.Now())
	swapped, err := r.store.SwapSessionID(j.ctx, j.turn.SessionKey, old, id)
	if err != nil || !swapped {
		current, _, err2 := r.store.SessionID(j.ctx, j.turn.SessionKey)
		if err != nil || err2 != nil || current == "" {
			return old // unreadable: carry on in the old one
		}
		return current
	}
	log.Info("a new conversation by session_reset", "from", old, "to", id, "reason", why)
	if reset := r.settings().SessionReset; reset.Notify && !slices.Contains(reset.Quiet, j.adapter.Name()) {
		target := j.turn.Inbound.AnswerTarget()
		if err := r.reply(j.adapter, target, texts.SessionReset(why), stream.Params{}); err != nil {
			log.Info("telling the user of the new conversation failed", "error", err)
		}
	}
	return id
}

// isResetTrigger tells whether a message is one of the reset triggers.
func (r *Runner) isResetTrigger(text string) bool {
	text = strings.TrimSpace(text)
	for _, t := range r.settings().ResetTriggers {
		if strings.EqualFold(text, strings.TrimSpace(t)) {
			return true
		}
	}
	return false
}
