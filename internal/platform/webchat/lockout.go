package webchat

import (
	"sync"
	"time"
)

// Wrong tokens a client may send (our choice): five a minute are more than
// a person mistypes and far too few to guess a token of minTokenLength
// characters. Beyond, the client is refused until its minute is over.
const (
	maxFailures   = 5
	failureWindow = time.Minute
)

// maxClients bounds how many clients' wrong tokens are remembered at once
// (our choice: a few hundred kilobytes at most, far more clients than a
// web chat has in a minute).
const maxClients = 4096

// A client that sent the right token within trustFor is trusted: the
// shared record of the clients without room does not lock it out. Our
// choice: ten minutes cover a page's reloads and reconnections; at most
// maxTrusted clients (a hundred kilobytes or so, more people than use one
// web chat at a time) are trusted at once.
const (
	trustFor   = 10 * time.Minute
	maxTrusted = 1024
)

// lockout counts wrong tokens per client. A client that sent maxFailures
// in its window is refused, whatever token it sends, until the window
// ends: were a right token let through, the refusal would tell a guesser
// when it guessed right. When the table is full, the clients it has no
// room for share one record, so that many addresses together get no more
// guesses than one; their right tokens are refused too while that record
// is locked, which is the price of never letting guesses through unseen.
// A trusted client (see trustFor) does not pay it: its wrong tokens are
// counted with its trust, so it is locked out by its own alone.
//
// A client is an address (httpserve.Client): behind a reverse proxy, every
// user has the proxy's, and five wrong tokens from anyone lock out all.
type lockout struct {
	mu      sync.Mutex
	clients map[string]*failures
	others  failures
	trusted map[string]*trust
}

// failures are a client's wrong tokens in the window that began at since.
type failures struct {
	count int
	since time.Time
}

// trust is when a client last sent the right token, and its wrong tokens
// while trusted, unless the table had a record of it already.
type trust struct {
	seen time.Time
	failures
}

func newLockout() *lockout {
	return &lockout{clients: map[string]*failures{}, trusted: map[string]*trust{}}
}

// wait returns how long client is still refused at now; 0 when it is not.
func (l *lockout) wait(client string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.find(client, now)
	if f == nil || f.count < maxFailures {
		return 0
	}
	return max(f.since.Add(failureWindow).Sub(now), 0)
}

// fail counts a wrong token from client at now, and reports whether it
// just made the client refused.
func (l *lockout) fail(client string, now time.Time) (locked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.find(client, now)
	if f == &l.others {
		l.forgetOver(now)
		f = l.find(client, now)
	}
	if f == nil {
		f = new(failures)
		l.clients[client] = f
	}
	if f.count == 0 || !now.Before(f.since.Add(failureWindow)) {
		f.count, f.since = 0, now
	}
	f.count++
	return f.count == maxFailures
}

// pass notes that client sent the right token at now, trusting it for
// trustFor if there is room.
func (l *lockout) pass(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.trusted[client]; t != nil {
		t.seen = now
		return
	}
	if len(l.trusted) >= maxTrusted {
		for c, t := range l.trusted {
			if !now.Before(t.seen.Add(trustFor)) {
				delete(l.trusted, c)
			}
		}
	}
	if len(l.trusted) < maxTrusted {
		l.trusted[client] = &trust{seen: now}
	}
}

// find returns the record that counts client's wrong tokens at now: its
// own, its trust's, or the shared one when the table has no room for it;
// nil when it has none yet and there is room.
func (l *lockout) find(client string, now time.Time) *failures {
	if f := l.clients[client]; f != nil {
		return f
	}
	if t := l.trusted[client]; t != nil && now.Before(t.seen.Add(trustFor)) {
		return &t.failures
	}
	if len(l.clients) >= maxClients {
		return &l.others
	}
	return nil
}

// forgetOver drops the clients whose window is over at now.
func (l *lockout) forgetOver(now time.Time) {
	for client, f := range l.clients {
		if !now.Before(f.since.Add(failureWindow)) {
			delete(l.clients, client)
		}
	}
}
