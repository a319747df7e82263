// Package texts holds every text that Herald itself, rather than the agent,
// shows in a chat: command answers, notices and error summaries. Wording is
// decided here and nowhere else.
package texts

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-chat/herald/internal/chat"
)

// Answers to the gateway's commands and its notices.
const (
	NewSession       = "✨ New conversation started."
	NewSessionFailed = "⚠️ Could not start a new conversation: the state store failed."
	NothingToStop    = "Nothing to stop: no answer is being written."
	Stopped          = "⏹ Stopped."
	ShutdownNotice   = "⚠️ Herald is shutting down; the answer was cut short. Please send your message again in a moment."
	// HomeRefused answers /sethome from a user who is let in without being
	// named (by a wildcard, a group's list, or everyone being allowed).
	HomeRefused = "Only a user named in the allowlist, or paired, can make this chat the home channel."
	// HomeFailed answers /sethome when the state store could not keep it.
	HomeFailed = "⚠️ Could not set the home channel: the state store failed."
	// CannotDecrypt tells the sender of an encrypted message that could
	// not be decrypted that it was not answered.
	CannotDecrypt = "🔒 I could not decrypt your last message, so I cannot answer it. Please send it again; " +
		"if this keeps happening, my operator should check Herald's log."
)

// InterruptedByRestart tells the user that a restart cut short the answer
// to their message, which it quotes (its first line, up to 60 characters),
// so that the notice says which message it is about on every platform,
// whether or not the platform links it to the message.
func InterruptedByRestart(message string) string {
	if q := quote(message); q != "" {
		return fmt.Sprintf("⚠️ Herald restarted while answering your message %s; the answer was cut short. Please send it again.", q)
	}
	return "⚠️ Herald restarted while answering your message; the answer was cut short. Please send it again."
}

// RestartedWhileSending tells the user that a restart came while the
// complete answer to their message was being sent in one message, which
// may or may not have arrived: the platform cannot say, so the notice
// does not claim either.
func RestartedWhileSending(message string) string {
	if q := quote(message); q != "" {
		return fmt.Sprintf("⚠️ Herald restarted while sending the answer to your message %s. If it did not arrive, please send your message again.", q)
	}
	return "⚠️ Herald restarted while sending the answer to your message. If it did not arrive, please send your message again."
}

// HomeSet answers /sethome: the chat, by name, is now where the agent's
// own messages for its platform go.
func HomeSet(chatName string) string {
	return fmt.Sprintf("🏠 %s is now the home channel: the agent's scheduled reports and messages for this platform come here.", chatName)
}

// quote is the first line of message, up to 60 characters, in quotation
// marks; "" for a blank message.
func quote(message string) string {
	q, _, cut := strings.Cut(strings.TrimSpace(message), "\n")
	if r := []rune(q); len(r) > 60 {
		q, cut = string(r[:60]), true
	}
	if cut {
		q = strings.TrimSpace(q) + "…"
	}
	if q == "" {
		return ""
	}
	return "“" + q + "”"
}

// Help lists the commands (chat.Commands), for /help.
func Help() string {
	var b strings.Builder
	b.WriteString("**Commands** (`!` works as well as `/`):\n")
	for _, c := range chat.Commands {
		if c.Same != "" {
			continue // listed with the command it is another word for
		}
		b.WriteString("- `/" + c.Word + "`")
		for _, other := range chat.Commands {
			if other.Same == c.Word {
				b.WriteString(" or `/" + other.Word + "`")
			}
		}
		b.WriteString(": " + c.About + "\n")
	}
	b.WriteString("\nAnything else goes to the agent.")
	return b.String()
}

// MenuEntry is a command's one-line description in a platform's command
// menu: capitalised, and saying which command another word is the same as.
func MenuEntry(c chat.CommandInfo) string {
	about := strings.ToUpper(c.About[:1]) + c.About[1:]
	if c.Same != "" {
		about += " (same as /" + c.Same + ")"
	}
	return about
}

// Pairing answers an unknown user's DM with their pairing code.
func Pairing(code string) string {
	return fmt.Sprintf("🔐 This agent is private. To be let in, ask its owner to run:\n\n`herald pairing approve %s`\n\nThe code is valid for one hour.", code)
}

// Status answers /status.
func Status(sessionID, backend, reachable string, uptime time.Duration) string {
	return fmt.Sprintf("**Status**\n- session: `%s`\n- agent server: %s (%s)\n- uptime: %s", sessionID, backend, reachable, uptime.Round(time.Second))
}

// What the user sees when a turn did not end with an answer. server names
// the upstream: "Proxy" for a Hermes API server, "Model server" otherwise.
const (
	NoResponse  = "(No response from remote agent)"
	AgentFailed = "⚠️ The agent reported an error."
)

// AnswerTruncated ends an answer cut at gateway.max_answer_bytes.
func AnswerTruncated(limit int) string {
	return fmt.Sprintf("⚠️ The answer was longer than %d bytes; the rest was cut off.", limit)
}

// ServerError is an error status from the agent server, with its message.
func ServerError(server string, status int, message string) string {
	return fmt.Sprintf("⚠️ %s error (%d): %s", server, status, message)
}

// ConnectionError is a failure to reach the agent server.
func ConnectionError(server string, err error) string {
	return fmt.Sprintf("⚠️ %s connection error: %s", server, err)
}

// Interrupted is an answer the connection lost before its end.
func Interrupted(err error) string {
	return "⚠️ The answer was interrupted: " + err.Error()
}

// WithNotice ends an answer's text with a notice.
func WithNotice(text, notice string) string {
	if text == "" {
		return notice
	}
	return text + "\n\n" + notice
}

// SessionReset tells the user that their conversation started afresh by
// itself (session_reset), and why: IdleFor or DailyAt.
func SessionReset(why string) string {
	return "◐ A new conversation has begun (" + why + "): earlier messages are not carried over. /new starts one whenever you like."
}

// IdleFor is why a conversation idle for d started afresh.
func IdleFor(d time.Duration) string {
	d = d.Round(time.Minute)
	return fmt.Sprintf("no message for %dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// DailyAt is why a conversation started afresh at the daily hour.
func DailyAt(hour int) string {
	return fmt.Sprintf("the daily new start at %d:00", hour)
}

// BusyAck tells the user what their message, sent while a turn runs,
// does: by busy input mode (interrupt, queue or steer).
func BusyAck(mode string) string {
	switch mode {
	case "queue":
		return "⏳ Your message waits its turn: I'll answer it when the current task is done."
	case "steer":
		return "⏩ Passed to the task in progress: the agent reads it after its next step."
	}
	return "⚡ Stopping the current task to take up your message."
}
