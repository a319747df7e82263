// Package bearer compares a request's bearer credential with the expected
// one, for the servers Herald runs that take one (the web chat, the
// simulator); each reads its Authorization header its own way.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Token is an expected bearer token. Only its hash is kept, and a
// credential is compared with it in constant time, hashed first, so that
// neither the comparison's timing nor its length gives the token away.
type Token struct {
	set bool
	sum [sha256.Size]byte
}

// New returns the Token for token; "" means no token is required.
func New(token string) Token {
	return Token{set: token != "", sum: sha256.Sum256([]byte(token))}
}

// Required reports whether a token was set.
func (t Token) Required() bool { return t.set }

// Matches reports whether credential is the token.
func (t Token) Matches(credential string) bool {
	sum := sha256.Sum256([]byte(credential))
	return subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1
}
