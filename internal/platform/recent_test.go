package platform

import "testing"

func TestRecentForgetsTheOldest(t *testing.T) {
	r := NewRecent[int, int](3)
	for i := range 5 {
		r.Put(i, i)
	}
	if _, ok := r.Get(0); ok {
		t.Error("the oldest entry was kept")
	}
	if v, ok := r.Get(4); !ok || v != 4 {
		t.Error("the newest entry was lost")
	}
	r.Remove(3)
	r.Put(3, 33)
	r.Put(5, 5)
	if v, ok := r.Get(3); !ok || v != 33 {
		t.Error("an entry put again after removal was lost")
	}
	if _, ok := r.Get(2); ok {
		t.Error("an entry beyond the size was kept")
	}
}
