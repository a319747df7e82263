package gateway

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/herald-chat/herald/internal/agent"
)

// Each display.tool_progress mode shows what Hermes's does, and the
// answer's text always.
func TestToolProgressModes(t *testing.T) {
	tool := func(name, status string) agent.Event {
		return agent.Event{Kind: agent.EventTool, Tool: &agent.ToolProgress{Tool: name, Status: status}}
	}
	events := []agent.Event{
		tool("web_search", "running"), tool("web_search", "completed"),
		tool("web_search", "running"), tool("web_search", "completed"),
		{Kind: agent.EventDelta, Text: "text"},
		tool("terminal", "running"), tool("terminal", "completed"),
		tool("web_search", "running"),
	}
	for mode, want := range map[string][]int{
		"off":     {4},
		"log":     {4},
		"new":     {0, 1, 4, 5, 6, 7},
		"all":     {0, 1, 2, 3, 4, 5, 6, 7},
		"verbose": {0, 1, 2, 3, 4, 5, 6, 7},
	} {
		r := New(Options{ToolProgress: "all", PlatformToolProgress: map[string]string{"fake": mode}}, nil, nil)
		f := r.toolFilter("fake", slog.New(slog.DiscardHandler))
		var shown []int
		for i, ev := range events {
			if f.shows(ev) {
				shown = append(shown, i)
			}
		}
		if !slices.Equal(shown, want) {
			t.Errorf("mode %s showed events %v, want %v", mode, shown, want)
		}
	}
}
