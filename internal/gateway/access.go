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
}

func (a Allowlist) allows(userID string) bool {
	return a.AllowAll || slices.Contains(a.Users, "*") || (userID != "" && slices.Contains(a.Users, userID))
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
	access := r.opts.Access
	if access.All.allows(src.UserID) || access.Platforms[src.Platform].allows(src.UserID) {
		return true
	}
	paired, err := r.store.IsPaired(ctx, src.Platform, src.UserID)
	if err != nil {
		r.log.Warn("reading pairings failed", "error", err)
	}
	return paired
}
