package platform

import "sync"

// Recent is a map that forgets its oldest entries beyond a size, for an
// adapter's memory of recent events (messages it sent, threads it knows):
// a gateway that runs for months must not grow with them. It is safe for
// concurrent use.
type Recent[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	m     map[K]V
	order []K
}

// NewRecent returns a map that keeps the max entries put last.
func NewRecent[K comparable, V any](max int) *Recent[K, V] {
	return &Recent[K, V]{max: max, m: map[K]V{}}
}

// Get returns the value of k, if it is still kept.
func (r *Recent[K, V]) Get(k K) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[k]
	return v, ok
}

// Put sets the value of k, forgetting the oldest entry when there are too
// many.
func (r *Recent[K, V]) Put(k K, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[k]; !ok {
		r.order = append(r.order, k)
		if len(r.order) > r.max {
			delete(r.m, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.m[k] = v
}

// Remove forgets k.
func (r *Recent[K, V]) Remove(k K) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[k]; !ok {
		return
	}
	delete(r.m, k)
	for i, o := range r.order {
		if o == k {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
}
