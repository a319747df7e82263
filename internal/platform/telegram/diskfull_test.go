package telegram

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herald-chat/herald/internal/platform/platformtest"
	"github.com/herald-chat/herald/internal/platform/telegram/telegramtest"
	"github.com/herald-chat/herald/internal/sim"
)

// A full disk. A message that cannot be journalled is not confirmed to
// Telegram, which keeps it until it is; a turn whose journal records
// cannot be written waits for them rather than show an answer it could
// not record. Once space is freed, every message is answered once and
// nothing is left in the journal.
func TestDiskFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t)
		srv.AddChat(aliceDM)
		_, b := newSim(t, sim.Options{FirstTokenDelay: 2 * time.Second, TokensPerSecond: 20, AnswerTokens: 10})
		counted := platformtest.Count(b)
		st := &platformtest.DiskFull{Store: platformtest.Store(t)}
		g := startGateway(t, srv, st, counted, gwConfig{})

		st.Full.Store(true)
		first := srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "while the disk is full"})
		time.Sleep(time.Minute)
		synctest.Wait()
		if srv.Confirmed() > first.UpdateID {
			t.Fatal("an update that could not be journalled was confirmed to Telegram")
		}
		if n := len(counted.Turns()); n != 0 {
			t.Fatalf("the agent was asked %d times for a message not journalled", n)
		}
		st.Full.Store(false)
		waitAnswer(t, srv, counted, aliceDM.ID, "while the disk is full")

		srv.Inject(telegramtest.Incoming{Chat: aliceDM, From: alice, Text: "the disk fills now"})
		waitFor(t, srv, "the agent to be asked", func() bool { return len(counted.Turns()) == 2 })
		st.Full.Store(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(srv.BotMessages(aliceDM.ID)); n != 1 {
			t.Errorf("with the disk full the chat shows %d bot messages, want only the first answer", n)
		}
		st.Full.Store(false)
		waitAnswer(t, srv, counted, aliceDM.ID, "the disk fills now")
		g.stop()

		if n := len(srv.BotMessages(aliceDM.ID)); n != 2 {
			t.Errorf("the chat shows %d bot messages, want the two answers", n)
		}
		for _, m := range []string{"while the disk is full", "the disk fills now"} {
			if n := counted.Calls(m); n != 1 {
				t.Errorf("the agent was asked %d times for %q", n, m)
			}
		}
		if pending, err := st.PendingTurns(context.Background()); err != nil || len(pending) != 0 {
			t.Errorf("left in the journal: %+v (%v)", pending, err)
		}
	})
}
