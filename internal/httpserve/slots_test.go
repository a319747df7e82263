package httpserve

import (
	"errors"
	"net/netip"
	"testing"
)

func TestSlots(t *testing.T) {
	s := NewSlots(3, 2)
	for _, c := range []struct {
		client string
		want   error
	}{
		{"a", nil}, {"a", nil}, {"a", ErrClientFull}, {"b", nil}, {"c", ErrFull}, {"a", ErrClientFull},
	} {
		if err := s.Take(c.client); !errors.Is(err, c.want) {
			t.Fatalf("Take(%s) = %v, want %v", c.client, err, c.want)
		}
	}
	s.Give("a")
	if err := s.Take("c"); err != nil {
		t.Errorf("Take after a Give: %v", err)
	}
	s.Give("b")
	s.Give("c")
	s.Give("a")
	if s.total != 0 || len(s.held) != 0 {
		t.Errorf("after every slot is given back: total %d, held %v", s.total, s.held)
	}

	unbounded := NewSlots(0, 0)
	for range 1000 {
		if err := unbounded.Take("a"); err != nil {
			t.Fatalf("without caps: %v", err)
		}
	}
}

func TestClient(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:51234":                   "192.0.2.7",
		"[::ffff:192.0.2.7]:1":              "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:443":        "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9%eth0]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":             "2001:db8:1:3::/64",
		"[::1]:8643":                        "::/64",
		"/run/herald.sock":                  "/run/herald.sock",
		"not an address":                    "not an address",
		"127.0.0.1":                         "127.0.0.1",
		"[fe80::1%lo]:1":                    "fe80::/64",
		"[2001:db8:ffff:ffff:ffff::1]:9999": "2001:db8:ffff:ffff::/64",
	} {
		if got := Client(addr); got != want {
			t.Errorf("Client(%q) = %q, want %q", addr, got, want)
		}
	}
}

// Client names every address of one host (its port, its IPv6 interface
// id) the same, and never panics.
func FuzzClient(f *testing.F) {
	f.Add([]byte{192, 0, 2, 7}, uint16(1), uint16(2))
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(443), uint16(8643))
	f.Fuzz(func(t *testing.T, raw []byte, port1, port2 uint16) {
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			Client(string(raw)) // any text is a name
			return
		}
		a, b := netip.AddrPortFrom(ip, port1), netip.AddrPortFrom(ip, port2)
		if Client(a.String()) != Client(b.String()) {
			t.Errorf("%s and %s are different clients", a, b)
		}
		if ip.Is6() && !ip.Is4In6() {
			other := ip.As16()
			other[15] ^= 0xff // another interface id in the same /64
			c := netip.AddrPortFrom(netip.AddrFrom16(other), port1)
			if Client(a.String()) != Client(c.String()) {
				t.Errorf("%s and %s, in one /64, are different clients", a, c)
			}
		}
	})
}
