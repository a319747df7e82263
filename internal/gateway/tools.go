package gateway

import (
	"cmp"
	"log/slog"

	"github.com/herald-chat/herald/internal/agent"
)

// toolFilter decides which of the agent's tool events a chat shows, by the
// platform's display.tool_progress mode (off, new, all, verbose or log),
// as Hermes's gateway does.
type toolFilter struct {
	mode     string
	log      *slog.Logger
	last     string // the tool that ran last
	skipping bool   // the running call is the same tool again (mode new)
}

// toolFilter is the filter of one turn on a platform.
func (r *Runner) toolFilter(platform string, log *slog.Logger) *toolFilter {
	s := r.settings()
	mode := cmp.Or(s.PlatformToolProgress[platform], s.ToolProgress, "all")
	return &toolFilter{mode: mode, log: log}
}

// shows tells whether the chat shows ev: every event but a tool's, and a
// tool's as the mode says. In mode log the tool goes to the log instead.
func (f *toolFilter) shows(ev agent.Event) bool {
	if ev.Kind != agent.EventTool || ev.Tool == nil {
		return true
	}
	switch f.mode {
	case "off":
		return false
	case "log":
		f.log.Info("agent tool", "tool", ev.Tool.Tool, "label", ev.Tool.Label, "status", ev.Tool.Status)
		return false
	case "new":
		if ev.Tool.Status != "completed" { // a call starting
			f.skipping = ev.Tool.Tool == f.last
			f.last = ev.Tool.Tool
		}
		return !f.skipping
	}
	return true
}
