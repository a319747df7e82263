package texts

import (
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/chat"
)

// /help lists every command, another word for one beside it, once each.
func TestHelpListsEveryCommand(t *testing.T) {
	help := Help()
	for _, c := range chat.Commands {
		if n := strings.Count(help, "`/"+c.Word+"`"); n != 1 {
			t.Errorf("/help names /%s %d times, want once:\n%s", c.Word, n, help)
		}
	}
	if !strings.Contains(help, "- `/new` or `/reset`: start a new conversation\n") {
		t.Errorf("/help does not list /reset beside /new:\n%s", help)
	}
}

func TestMenuEntry(t *testing.T) {
	for c, want := range map[chat.CommandInfo]string{
		{Word: "stop", About: "stop the answer being written"}:          "Stop the answer being written",
		{Word: "reset", Same: "new", About: "start a new conversation"}: "Start a new conversation (same as /new)",
	} {
		if got := MenuEntry(c); got != want {
			t.Errorf("MenuEntry(%s) = %q, want %q", c.Word, got, want)
		}
	}
}

func TestInterruptedByRestartQuotesTheMessage(t *testing.T) {
	for in, want := range map[string]string{
		"what is the weather?":  "⚠️ Herald restarted while answering your message “what is the weather?”; the answer was cut short. Please send it again.",
		"first line\nsecond":    "⚠️ Herald restarted while answering your message “first line…”; the answer was cut short. Please send it again.",
		strings.Repeat("ä", 70): "⚠️ Herald restarted while answering your message “" + strings.Repeat("ä", 60) + "…”; the answer was cut short. Please send it again.",
		"  ":                    "⚠️ Herald restarted while answering your message; the answer was cut short. Please send it again.",
	} {
		if got := InterruptedByRestart(in); got != want {
			t.Errorf("InterruptedByRestart(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"first line\nsecond": "⚠️ Herald restarted while sending the answer to your message “first line…”. If it did not arrive, please send your message again.",
		"":                   "⚠️ Herald restarted while sending the answer to your message. If it did not arrive, please send your message again.",
	} {
		if got := RestartedWhileSending(in); got != want {
			t.Errorf("RestartedWhileSending(%q) = %q, want %q", in, got, want)
		}
	}
}
