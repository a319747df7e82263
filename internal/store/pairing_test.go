package store

import (
	"strings"
	"testing"
)

func TestNewPairingCodeUsesWholeAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for range 500 {
		code, err := NewPairingCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != CodeLen {
			t.Fatalf("code %q", code)
		}
		for _, r := range code {
			if !strings.ContainsRune(CodeAlphabet, r) {
				t.Fatalf("code %q has %q", code, r)
			}
			seen[r] = true
		}
	}
	// 4000 draws over 31 letters: missing one by chance is below 1e-50.
	if len(seen) != len(CodeAlphabet) {
		t.Errorf("only %d of %d letters used", len(seen), len(CodeAlphabet))
	}
}

func TestNormalCode(t *testing.T) {
	if got := NormalCode(" abcd2345\n"); got != "ABCD2345" {
		t.Errorf("NormalCode = %q", got)
	}
}
