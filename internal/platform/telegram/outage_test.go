package telegram

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

// Telegram down for a minute in the middle of an answer, answering 502 or
// not answering at all: readiness turns 503 and back, the answer
// completes once Telegram is back (or ends with one notice), the messages
// sent meanwhile are all answered once, and nothing was lost.
func TestTelegramOutage(t *testing.T) {
	for name, status := range map[string]int{"502": 502, "hanging": 0} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newServer(t)
				srv.AddChat(aliceDM)
				_, b := newSim(t, sim.Options{TokensPerSecond: 10, AnswerTokens: 60})
				counted := platformtest.Count(b)
				// Queue mode: the two messages sent during the outage come in
				// one batch, and in interrupt mode the second would stop the
				// first's answer, by design, whenever the first had begun.
				g := startGateway(t, srv, platformtest.Store(t), counted, gwConfig{transport: "edit", busyMode: "queue"})

				srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "a long one"})
				waitFor(t, srv, "the answer to begin", func() bool { return len(srv.BotMessages(aliceDM.ID)) == 1 })
				srv.Down(status)
				time.Sleep(platform.OutageGrace)
				for _, text := range []string{"during the outage", "and another"} {
					srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: text})
				}
				time.Sleep(time.Minute - platform.OutageGrace)
				if err := g.ready(); err == nil || !strings.Contains(err.Error(), "platform telegram: no success for") {
					t.Errorf("during the outage Ready() = %v", err)
				}
				srv.Up()
				// The cut answer's final delivery tries again up to a minute
				// after the last failure (with jitter), and the chat's next
				// answer comes after it: more than waitFor's usual bound.
				platformtest.WaitFor(t, srv, waitTimeout+time.Minute, "the answer to the first message after the outage", func() bool {
					final, ok := counted.Final("during the outage")
					return ok && slices.ContainsFunc(srv.BotMessages(aliceDM.ID), func(m telegramtest.Msg) bool { return m.Text == final })
				})
				waitAnswer(t, srv, counted, aliceDM.ID, "and another")
				time.Sleep(time.Minute)
				synctest.Wait()
				if err := g.ready(); err != nil {
					t.Errorf("once Telegram is back Ready() = %v", err)
				}
				g.stop()

				final, _ := counted.Final("a long one")
				var first []string
				for _, m := range srv.BotMessages(aliceDM.ID) {
					if strings.Contains(m.Text, `You said: "a long one"`) {
						first = append(first, m.Text)
					}
				}
				if len(first) != 1 || first[0] != final {
					t.Errorf("the answer cut by the outage shows %q, want it complete (%d bytes)", first, len(final))
				}
				for _, text := range []string{"a long one", "during the outage", "and another"} {
					if n := counted.Calls(text); n != 1 {
						t.Errorf("the agent was asked %d times for %q", n, text)
					}
				}
			})
		})
	}
}
