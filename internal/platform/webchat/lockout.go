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

// lockout counts wrong tokens per client. A client that sent maxFailures
// in its window is refused, whatever token it sends, until the window
// ends: were a right token let through, the refusal would tell a guesser
// when it guessed right. When the table is full, the clients it has no
// room for share one record, so that many addresses together get no more
// guesses than one; their right tokens are refused too while that record
// is locked, which is the price of never letting guesses through unseen.
type lockout struct {
	mu      sync.Mutex
	clients map[string]*failures
	others  failures
}

// failures are a client's wrong tokens in the window that began at since.
type failures struct {
	count int
	since time.Time
}

func newLockout() *lockout { return &lockout{clients: map[string]*failures{}} }

// wait returns how long client is still refused at now; 0 when it is not.
func (l *lockout) wait(client string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.clients[client]
	if f == nil && len(l.clients) >= maxClients {
		f = &l.others
	}
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
	f := l.clients[client]
	if f == nil {
		if len(l.clients) >= maxClients {
			l.forgetOver(now)
		}
		if len(l.clients) < maxClients {
			f = new(failures)
			l.clients[client] = f
		} else {
			f = &l.others
		}
	}
	if f.count == 0 || !now.Before(f.since.Add(failureWindow)) {
		f.count, f.since = 0, now
	}
	f.count++
	return f.count == maxFailures
}

// forgetOver drops the clients whose window is over at now.
func (l *lockout) forgetOver(now time.Time) {
	for client, f := range l.clients {
		if !now.Before(f.since.Add(failureWindow)) {
			delete(l.clients, client)
		}
	}
}
