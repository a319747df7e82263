package matrix

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-chat/herald/internal/platform"
	"github.com/herald-chat/herald/internal/platform/matrix/matrixtest"
	"github.com/herald-chat/herald/internal/sim"
)

// Dendrite stopped in the middle of an encrypted answer and started again
// a while later: readiness names the homeserver meanwhile, the answer
// completes once it is back (one message, no notice), and a message sent
// after it is answered.
func TestHomeserverStoppedMidAnswer(t *testing.T) {
	srv := matrixtest.Start(t)
	alice := newUser(t, srv, "alice")
	home := t.TempDir()
	opts, bot, _ := registerBot(t, srv, home, alice.id)
	const tokens = 40
	s := sim.New(sim.Options{AllowSessionWithoutKey: true, TokensPerSecond: 8, AnswerTokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	simSrv := httptest.NewServer(s)
	defer simSrv.Close()
	g := startGateway(t, opts, home, simSrv.URL)
	room := alice.createRoom(true, true, bot)
	alice.waitJoined(room, bot)

	alice.say(room, "a long one")
	alice.waitFor("the answer to begin", func() bool { return len(alice.answersFrom(room, bot)) > 0 })
	srv.Stop()
	deadline := time.Now().Add(platform.OutageGrace + 30*time.Second)
	for g.ready() == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if err := g.ready(); err == nil || !strings.Contains(err.Error(), "platform matrix: no success for") {
		t.Errorf("with the homeserver down Ready() = %v", err)
	}
	srv.Restart(t)

	alice.waitAnswer(room, bot, sim.Answer(1, "a long one", tokens))
	alice.say(room, "and now?")
	alice.waitAnswer(room, bot, sim.Answer(2, "and now?", tokens))
	if answers := alice.answersFrom(room, bot); len(answers) != 2 {
		var texts []string
		for _, a := range answers {
			texts = append(texts, a.text)
		}
		t.Errorf("the bot sent %d messages, want the two answers: %q", len(answers), texts)
	}
	for deadline := time.Now().Add(time.Minute); g.ready() != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := g.ready(); err != nil {
		t.Errorf("once the homeserver is back Ready() = %v", err)
	}
}
