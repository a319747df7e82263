package webchat

import (
	"strconv"
	"testing"
	"time"
)

func TestLockoutWindow(t *testing.T) {
	l := newLockout()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxFailures {
		if l.wait("a", start) != 0 {
			t.Fatalf("refused after %d wrong tokens", i)
		}
		if locked := l.fail("a", start.Add(time.Duration(i)*time.Second)); locked != (i == maxFailures-1) {
			t.Errorf("wrong token %d: locked=%v", i+1, locked)
		}
	}
	if got := l.wait("a", start.Add(10*time.Second)); got != failureWindow-10*time.Second {
		t.Errorf("wait = %s, want the rest of the window", got)
	}
	if got := l.wait("b", start); got != 0 {
		t.Errorf("another client waits %s", got)
	}
	end := start.Add(failureWindow)
	if got := l.wait("a", end); got != 0 {
		t.Errorf("at the end of the window: wait %s", got)
	}
	// A new window starts from nothing.
	if l.fail("a", end) || l.wait("a", end) != 0 {
		t.Error("one wrong token in a new window locks the client out")
	}
}

// However many clients send wrong tokens, the table stays bounded; those
// it has no room for share one record, so that they get no more guesses
// together than one client; room comes back as windows end.
func TestLockoutTableIsBounded(t *testing.T) {
	l := newLockout()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxClients {
		l.fail("client-"+strconv.Itoa(i), now)
	}
	for i := range maxFailures {
		if l.wait("newcomer", now) != 0 {
			t.Fatalf("a client the table has no room for is refused after %d wrong tokens in all", i)
		}
		l.fail("other-"+strconv.Itoa(i), now)
	}
	if len(l.clients) > maxClients {
		t.Errorf("%d clients kept, want at most %d", len(l.clients), maxClients)
	}
	if l.wait("newcomer", now) == 0 {
		t.Errorf("after %d wrong tokens from clients without room, another one is not refused", maxFailures)
	}
	if l.wait("client-0", now) != 0 {
		t.Error("a client with its own record is refused for the others' wrong tokens")
	}

	later := now.Add(failureWindow)
	l.fail("newcomer", later)
	if len(l.clients) != 1 || l.clients["newcomer"] == nil {
		t.Errorf("after every window ended, a wrong token leaves %d clients kept, want the newcomer alone", len(l.clients))
	}
}

// Trust lasts trustFor after the last right token, and the trusted set
// stays bounded: beyond maxTrusted, a newcomer is trusted only once an
// older trust has lapsed.
func TestLockoutTrustIsBounded(t *testing.T) {
	l := newLockout()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxTrusted {
		l.pass("user-"+strconv.Itoa(i), now)
	}
	l.pass("late", now)
	if len(l.trusted) != maxTrusted {
		t.Errorf("%d clients trusted, want at most %d", len(l.trusted), maxTrusted)
	}

	// Guessers fill the table and lock the shared record shortly before
	// the trust ends.
	guessed := now.Add(trustFor - failureWindow/2)
	for i := range maxClients + maxFailures {
		l.fail("guesser-"+strconv.Itoa(i), guessed)
	}
	if l.wait("late", guessed) == 0 {
		t.Error("a client the trusted set had no room for is spared the shared record")
	}
	if l.wait("user-0", guessed) != 0 {
		t.Error("a trusted client is locked out by the shared record")
	}
	lapsed := now.Add(trustFor)
	if l.wait("user-0", lapsed) == 0 {
		t.Error("a client whose trust lapsed is spared the shared record")
	}

	l.pass("late", lapsed)
	if len(l.trusted) != 1 || l.wait("late", lapsed) != 0 {
		t.Errorf("once every trust lapsed, a newcomer's right token leaves %d trusted, want it alone and spared", len(l.trusted))
	}
}
