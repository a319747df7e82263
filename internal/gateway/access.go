package gateway

import (
	"context"
	"slices"

	"github.com/herald-chat/herald/internal/chat"
)

// Allowlist says who may talk to the agent.
type Allowlist struct {
	AllowAll bool
	Users    []string // platform user ids; "*" allows everyone
	// GroupUsers may talk in group chats too; every member of GroupChats
	// ("*": of every group) may, as Hermes's TELEGRAM_GROUP_ALLOWED_*.
	GroupUsers, GroupChats []string
}

func (a Allowlist) allows(src chat.Source) bool {
	if a.AllowAll || slices.Contains(a.Users, "*") || (src.UserID != "" && slices.Contains(a.Users, src.UserID)) {
		return true
	}
	if src.ChatType == chat.DM {
		return false
	}
	return slices.Contains(a.GroupChats, "*") || slices.Contains(a.GroupChats, src.ChatID) ||
		(src.UserID != "" && slices.Contains(a.GroupUsers, src.UserID))
}

// Access holds the allowlists: one for every platform, one per platform.
// With none set, nobody is allowed: deny by default.
type Access struct {
	All       Allowlist
	Platforms map[string]Allowlist
}

// allowed reports whether the message's author may talk to the agent:
// listed in the gateway's or the platform's allowlist, or approved through
// pairing.
func (r *Runner) allowed(ctx context.Context, src chat.Source) bool {
	access := r.settings().Access
	return access.All.allows(src) || access.Platforms[src.Platform].allows(src) || r.paired(ctx, src)
}

// named reports whether the message's author is named: their id in the
// gateway's or the platform's allowlist, or approved through pairing.
func (r *Runner) named(ctx context.Context, src chat.Source) bool {
	if src.UserID == "" {
		return false
	}
	access := r.settings().Access
	for _, a := range []Allowlist{access.All, access.Platforms[src.Platform]} {
		if slices.Contains(a.Users, src.UserID) || slices.Contains(a.GroupUsers, src.UserID) {
			return true
		}
	}
	return r.paired(ctx, src)
}

// paired reports whether the message's author was approved through
// pairing.
func (r *Runner) paired(ctx context.Context, src chat.Source) bool {
	paired, err := r.store.IsPaired(ctx, src.Platform, src.UserID)
	if err != nil {
		r.log.Warn("reading pairings failed", "error", err)
	}
	return paired
}
