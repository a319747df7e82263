package gateway

import (
	"context"
	"time"

	"github.com/herald-chat/herald/internal/agent"
	"github.com/herald-chat/herald/internal/chat"
	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/store"
	"github.com/herald-chat/herald/internal/texts"
)

// command runs one of the gateway's commands. They bypass the session lane,
// so /stop works while an answer is being written.
func (r *Runner) command(a platform.Adapter, turn store.Turn, cmd string) {
	key := turn.SessionKey
	switch cmd {
	case "new", "reset":
		r.cancelLane(key, errStopped, true)
		// Set before the next message can read it.
		err := r.store.SetSessionID(context.Background(), key, chat.NewSessionID(time.Now()))
		if err != nil {
			r.turnLog(turn).Error("starting a new session failed", "error", err)
		}
		r.replyAsync(a, turn, func(context.Context) string {
			if err != nil {
				return texts.NewSessionFailed
			}
			return texts.NewSession
		})
	case "stop":
		stopped := r.cancelLane(key, errStopped, false)
		r.replyAsync(a, turn, func(context.Context) string {
			if stopped {
				return "" // the stopped turn ends with its own notice
			}
			return texts.NothingToStop
		})
	case "status":
		r.replyAsync(a, turn, func(ctx context.Context) string {
			id, _, err := r.store.SessionID(ctx, key)
			if err != nil || id == "" {
				id = "(none yet)"
			}
			reachable := "reachable"
			if p, ok := r.backend.(agent.Pinger); ok {
				if err := p.Ping(ctx); err != nil {
					reachable = "unreachable: " + err.Error()
				}
			}
			return texts.Status(id, r.backend.Name(), reachable, time.Since(r.started))
		})
	case "sethome":
		r.replyAsync(a, turn, func(ctx context.Context) string { return r.setHome(ctx, turn.Inbound.Source) })
	case "help":
		r.replyAsync(a, turn, func(context.Context) string { return texts.Help() })
	}
}
