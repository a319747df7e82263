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

func TestPlacePairingCode(t *testing.T) {
	tries := 0
	code, err := PlacePairingCode(func(string) (bool, error) { tries++; return tries == 3, nil })
	if err != nil || len(code) != CodeLen || tries != 3 {
		t.Errorf("placed %q after %d tries, %v; want a code on the third", code, tries, err)
	}
	if _, err := PlacePairingCode(func(string) (bool, error) { return false, nil }); err == nil || !strings.Contains(err.Error(), "no free code") {
		t.Errorf("every code taken: %v, want an error saying so", err)
	}
}
