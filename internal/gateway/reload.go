package gateway

import "slices"

// Reload takes from o what may change while the gateway runs (SIGHUP):
// who may talk (the allowlists, pairing), how messages during a turn are
// handled, what starts a new session, and how answers are shown
// (streaming, typing, tool progress, thinking, notices). Turns already
// running keep what they started with; the rest of Options holds until a
// restart.
func (r *Runner) Reload(o Options) {
	next := *r.live.Load()
	next.Access, next.PairUnknownDMs, next.DeliverAnyChat = o.Access, o.PairUnknownDMs, o.DeliverAnyChat
	next.BusyMode, next.BusyAck, next.ResetTriggers, next.SessionReset = o.BusyMode, o.BusyAck, o.ResetTriggers, o.SessionReset
	logger := next.Streaming.Logger
	next.Streaming, next.PlatformStreaming, next.NoTyping = o.Streaming, o.PlatformStreaming, o.NoTyping
	next.Streaming.Logger = logger
	next.ToolProgress, next.PlatformToolProgress = o.ToolProgress, o.PlatformToolProgress
	next.KeepThinking, next.QuietRestarts = o.KeepThinking, o.QuietRestarts
	r.live.Store(&next)
}

// settings are the options as last reloaded: read the fields Reload
// changes here, the others from r.opts.
func (r *Runner) settings() *Options { return r.live.Load() }

// Allows tells whether a user is named by the gateway's or a platform's
// allowlist as they are now (or the lists let everyone in), for what a
// platform decides itself: taking an invite, fetching an image.
func (r *Runner) Allows(platform, userID string) bool {
	access := r.settings().Access
	for _, a := range []Allowlist{access.All, access.Platforms[platform]} {
		if a.AllowAll || slices.Contains(a.Users, "*") || slices.Contains(a.Users, userID) {
			return true
		}
	}
	return false
}
