package platform

import "context"

// Status is how a check of herald doctor came out.
type Status string

// The outcomes of a check: it works; it works but something will bite;
// it does not work.
const (
	OK   Status = "OK"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Finding is one line of herald doctor's checklist.
type Finding struct {
	Status Status `json:"status"`
	// Check names what was checked: "telegram: bot token".
	Check string `json:"check"`
	// Detail is what was found, never a secret.
	Detail string `json:"detail"`
	// Fix says in one sentence what to do, for WARN and FAIL.
	Fix string `json:"fix,omitempty"`
}

// Diagnoser is an adapter that checks, without connecting for good, that
// what it needs from its platform works: the token or login, the account's
// settings on the platform side. herald doctor asks it, beside a running
// gateway too, so it only reads.
type Diagnoser interface {
	Diagnose(ctx context.Context) []Finding
}
