package platformtest

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-chat/herald/internal/platform"
)

// Diagnosis is what d finds, by check.
func Diagnosis(d platform.Diagnoser) map[string]platform.Finding {
	byCheck := map[string]platform.Finding{}
	for _, f := range d.Diagnose(context.Background()) {
		byCheck[f.Check] = f
	}
	return byCheck
}

// ExpectFinding fails the test unless the finding of check has status
// and its detail holds want.
func ExpectFinding(t testing.TB, findings map[string]platform.Finding, check string, status platform.Status, want string) {
	t.Helper()
	f, ok := findings[check]
	if !ok || f.Status != status || !strings.Contains(f.Detail, want) {
		t.Errorf("%s: %+v, want %s with %q (all: %+v)", check, f, status, want, findings)
	}
}
