// Package mailbox hands the newest of a stream of values to one consumer,
// one at a time, without ever blocking the producer: a value offered while
// the previous one waits replaces it. Control planes deliver cluster views
// to their broker this way, and the broker applies them this way, so a slow
// consumer skips stale views instead of holding up whoever produces them.
//
//	views := mailbox.New[broker.ClusterView](nil)
//	go views.Run(ctx.Done(), apply) // apply is never called concurrently
//	views.Offer(v)                  // from any goroutine, never blocks
package mailbox

import "sync"

// Latest is a one-slot mailbox holding the newest value offered. Create it
// with New.
type Latest[T any] struct {
	equal func(a, b T) bool
	kick  chan struct{} // capacity 1: a value is pending

	mu        sync.Mutex // guards the fields below
	next      *T
	last      *T // the value most recently delivered
	delivered bool
}

// New returns an empty mailbox. With equal set, Run skips a value equal to
// the one it delivered last (a control plane that recomputes an unchanged
// view does not wake the broker for nothing).
func New[T any](equal func(a, b T) bool) *Latest[T] {
	return &Latest[T]{equal: equal, kick: make(chan struct{}, 1)}
}

// Offer makes v the pending value, replacing one not yet delivered. It
// never blocks and may be called from any goroutine, with any lock held
// that the consumer does not take.
func (m *Latest[T]) Offer(v T) {
	m.mu.Lock()
	m.next = &v
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run calls fn with each newest pending value until done is closed; fn is
// called from Run's goroutine only, so never concurrently with itself. Run
// must have one caller at a time. A value pending when done closes is not
// delivered.
func (m *Latest[T]) Run(done <-chan struct{}, fn func(T)) {
	for {
		select {
		case <-done:
			return
		case <-m.kick:
		}
		v, ok := m.take()
		if !ok {
			continue
		}
		select {
		case <-done:
			return
		default:
		}
		fn(v)
	}
}

// take removes the pending value, unless it equals the one delivered last.
func (m *Latest[T]) take() (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.next
	m.next = nil
	if v == nil || m.equal != nil && m.delivered && m.equal(*m.last, *v) {
		var zero T
		return zero, false
	}
	m.last, m.delivered = v, true
	return *v, true
}
