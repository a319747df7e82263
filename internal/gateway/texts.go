package gateway

import (
	"fmt"
	"strings"
	"time"
)

// The texts users see from the gateway itself, in one place.

const helpText = "**Commands** (`!` works as well as `/`):\n" +
	"- `/new` or `/reset`: start a new conversation\n" +
	"- `/stop`: stop the answer being written\n" +
	"- `/status`: session, agent server and uptime\n" +
	"- `/help`: this list\n\n" +
	"Anything else goes to the agent."

const (
	newSessionText       = "✨ New conversation started."
	stoppedText          = "⏹ Stopped."
	nothingToStop        = "Nothing to stop: no answer is being written."
	shutdownNotice       = "⚠️ Herald is shutting down; the answer was cut short. Please send your message again in a moment."
	interruptedByRestart = "⚠️ Herald restarted while answering your message; the answer was cut short. Please send it again."
)

func pairingText(code string) string {
	return fmt.Sprintf("🔐 This agent is private. To be let in, ask its owner to run:\n\n`herald pairing approve %s`\n\nThe code is valid for one hour.", code)
}

func statusText(sessionID, backend, reachable string, uptime time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Status**\n- session: `%s`\n- agent server: %s (%s)\n- uptime: %s", sessionID, backend, reachable, uptime.Round(time.Second))
	return b.String()
}
