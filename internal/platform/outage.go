package platform

import (
	"fmt"
	"sync"
	"time"
)

// OutageGrace is how long an adapter's connection must have failed without
// a success before readiness reports it (our choice: longer than a
// reconnect after a platform's routine disconnect, short enough for a
// load balancer to notice within its first probes).
const OutageGrace = 10 * time.Second

// Outage follows whether an adapter's connection to its platform works
// (polling, syncing, its event socket), for readiness. The zero value is a
// working connection.
type Outage struct {
	mu    sync.Mutex
	ok    time.Time // the last success
	since time.Time // when the failures began; zero while it works
	last  error
}

// Failed notes a failed attempt to reach the platform.
func (o *Outage) Failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = time.Now()
	}
	o.last = err
}

// Recovered notes a successful one.
func (o *Outage) Recovered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ok, o.since, o.last = time.Now(), time.Time{}, nil
}

// Err is the last failure when the last attempt failed and nothing has
// succeeded for OutageGrace (a request that hangs fails only at its
// deadline: the time it hung counts), else nil.
func (o *Outage) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return nil
	}
	from := o.since
	if !o.ok.IsZero() && o.ok.Before(from) {
		from = o.ok
	}
	if d := time.Since(from); d >= OutageGrace {
		return fmt.Errorf("no success for %s: %w", d.Round(time.Second), o.last)
	}
	return nil
}

// Connection is an adapter that knows whether its connection to the
// platform works now.
type Connection interface {
	// Outage is why the connection does not work, or nil (see Outage.Err).
	Outage() error
}
