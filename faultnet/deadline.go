package faultnet

import (
	"sync"
	"time"
)

// deadline is a read or write deadline of a conn: the channel returned by
// wait is closed once the deadline has passed. It follows net.Pipe's
// pipeDeadline, except that the timer's callback takes the lock and closes
// the channel only if the deadline it was armed for is still the current
// one: a callback already running when set or stop replaced its deadline
// does nothing (it used to close a channel set had closed or reused).
type deadline struct {
	mu     sync.Mutex // guards everything below
	timer  *time.Timer
	gen    uint64        // bumped by every set and stop: which arming is current
	cancel chan struct{} // never nil
}

func newDeadline() *deadline { return &deadline{cancel: make(chan struct{})} }

// set arms the deadline at t; the zero time disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.disarmLocked()
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		gen, cancel := d.gen, d.cancel
		d.timer = time.AfterFunc(dur, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.gen == gen && !isClosed(cancel) {
				close(cancel)
			}
		})
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.disarmLocked()
}

// disarmLocked stops the timer and makes any callback of it still to run a
// no-op. Lock should be held.
func (d *deadline) disarmLocked() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
