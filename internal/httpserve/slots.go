package httpserve

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// Slots counts what clients hold of something scarce (connections, event
// streams) under a cap in total and a cap per client; a cap of 0 is off.
type Slots struct {
	max, perClient int

	mu    sync.Mutex
	total int
	held  map[string]int // only clients that hold a slot
}

// Why Take refused a slot.
var (
	ErrFull       = errors.New("every slot is taken")
	ErrClientFull = errors.New("the client holds its share of slots")
)

// NewSlots returns slots for at most max holders in all and perClient for
// one client.
func NewSlots(max, perClient int) *Slots {
	return &Slots{max: max, perClient: perClient, held: map[string]int{}}
}

// Take takes a slot for client, or says which cap is reached: ErrClientFull
// before ErrFull, so that a client over its own share learns that.
func (s *Slots) Take(client string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perClient > 0 && s.held[client] >= s.perClient:
		return ErrClientFull
	case s.max > 0 && s.total >= s.max:
		return ErrFull
	}
	s.total++
	s.held[client]++
	return nil
}

// Give gives back a slot client took.
func (s *Slots) Give(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.held[client]--; s.held[client] <= 0 {
		delete(s.held, client)
	}
}

// Client names the client at a remote address ("host:port") for per-client
// caps: its IP address, or for IPv6 its /64 network, since one host
// usually has a whole /64 to pick addresses from. An address that is not
// an IP (a Unix socket) is its own name.
func Client(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}
