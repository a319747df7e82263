package app

import (
	"fmt"
	"slices"
	"testing"
)

func TestShare(t *testing.T) {
	for _, c := range []struct {
		units, mine int
		others      []int
		release     int
		take        bool
	}{
		{units: 4, mine: 0, others: nil, take: true},                         // alone: all of them
		{units: 4, mine: 4, others: nil, take: false},                        // alone, holding all
		{units: 4, mine: 4, others: []int{0}, release: 2},                    // a second joins
		{units: 4, mine: 0, others: []int{4}, take: true},                    // the one that joined
		{units: 4, mine: 2, others: []int{2}, take: false},                   // even
		{units: 4, mine: 2, others: []int{2, 0}, release: 1},                 // a third joins: give one up
		{units: 4, mine: 0, others: []int{2, 2}, take: true},                 // the third
		{units: 4, mine: 1, others: []int{1, 1}, take: true},                 // one left free: anyone may
		{units: 4, mine: 1, others: []int{2, 0}, take: false},                // leave it for the one with none
		{units: 4, mine: 2, others: []int{1, 1}, take: false},                // at most its share
		{units: 1, mine: 0, others: []int{1}, take: true},                    // one lease: the other would take it, were it free
		{units: 1, mine: 1, others: []int{0, 0}, take: false},                // and is not given up for it
		{units: 5, mine: 3, others: []int{2}, take: false},                   // uneven, at its most
		{units: 3, mine: 0, others: []int{1, 1, 1}, take: true},              // more replicas than units: a free one, if any
		{units: 2, mine: 2, others: []int{0, 0, 0}, release: 1, take: false}, // over its most
	} {
		release, take := share(c.units, c.mine, c.others)
		if release != c.release || take != c.take {
			t.Errorf("share(%d units, mine %d, others %v) = give up %d, take %v; want %d, %v",
				c.units, c.mine, c.others, release, take, c.release, c.take)
		}
	}
}

// Replicas that each decide by share alone, one at a time, end with the
// units spread evenly and stay there: as a replica joins, and as one
// leaves (its units lapse).
func TestShareSettles(t *testing.T) {
	const units = 4
	settle := func(held []int) []int {
		t.Helper()
		for range 100 {
			moved := false
			for i := range held {
				others := slices.Delete(slices.Clone(held), i, i+1)
				release, take := share(units, held[i], others)
				free := units
				for _, n := range held {
					free -= n
				}
				switch {
				case release > 0:
					held[i] -= release
					moved = true
				case take && free > 0:
					held[i]++
					moved = true
				}
			}
			if !moved {
				return held
			}
		}
		t.Fatalf("the replicas never settle: %v", held)
		return nil
	}
	held := settle([]int{0})
	if fmt.Sprint(held) != "[4]" {
		t.Errorf("alone: %v", held)
	}
	if held = settle(append(held, 0)); fmt.Sprint(held) != "[2 2]" {
		t.Errorf("two replicas: %v", held)
	}
	held = settle(append(held, 0))
	slices.Sort(held)
	if fmt.Sprint(held) != "[1 1 2]" {
		t.Errorf("three replicas: %v", held)
	}
	if held = settle(held[1:]); fmt.Sprint(held) != "[2 2]" {
		t.Errorf("one of three gone: %v", held)
	}
}
