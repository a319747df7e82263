package store

import (
	"crypto/rand"
	"errors"
	"strings"
	"time"
)

// PairingTTL is how long a pairing code can be approved after it was made;
// an operator approves a code the user just sent them, so an old one is
// more likely leaked than wanted.
const PairingTTL = time.Hour

// clockSkew is how far in the future a code's creation may lie and still
// count (our choice: more than a time server's step, less than a jump). A
// code from further on was made before the clock jumped back: its age is
// unknown, so it is taken as expired rather than valid for hours more.
const clockSkew = time.Minute

// Approvable is the window of creation times of codes still approvable at
// now, in Unix milliseconds: after (now - PairingTTL), not after now +
// clockSkew. Every store applies it the same way.
func Approvable(now time.Time) (after, until int64) {
	return now.Add(-PairingTTL).UnixMilli(), now.Add(clockSkew).UnixMilli()
}

// CodeAlphabet has no 0/O, 1/I/L, which read alike when a code is copied
// by hand.
const CodeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// CodeLen is a pairing code's length.
const CodeLen = 8

// NewPairingCode draws a code from CodeAlphabet with crypto/rand,
// uniformly.
func NewPairingCode() (string, error) {
	const n = len(CodeAlphabet)
	code := make([]byte, 0, CodeLen)
	buf := make([]byte, 2*CodeLen)
	for len(code) < CodeLen {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			// Dropping bytes past the last whole multiple of n keeps
			// every letter equally likely.
			if int(b) < 256/n*n && len(code) < CodeLen {
				code = append(code, CodeAlphabet[int(b)%n])
			}
		}
	}
	return string(code), nil
}

// PlacePairingCode draws new codes until insert takes one, and returns
// it: insert reports false for a code that is taken. A clash is one in
// 31^8 per existing code, so a few tries are plenty.
func PlacePairingCode(insert func(code string) (placed bool, err error)) (string, error) {
	for range 5 {
		code, err := NewPairingCode()
		if err != nil {
			return "", err
		}
		if ok, err := insert(code); err != nil || ok {
			return code, err
		}
	}
	return "", errors.New("no free code after 5 tries")
}

// NormalCode is a code as the operator typed it, made comparable: case
// and surrounding spaces ignored.
func NormalCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }
