package faultnet

import (
	"testing"
	"time"
)

// TestDeadlineSetAfterStop: a deadline stopped (as Close does) and then set
// again must not block. It used to wait forever for the stopped timer's
// callback.
func TestDeadlineSetAfterStop(t *testing.T) {
	d := newDeadline()
	d.set(time.Now().Add(time.Hour))
	d.stop()
	done := make(chan struct{})
	go func() {
		d.set(time.Now().Add(time.Hour))
		d.set(time.Time{})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("set after stop blocked")
	}
}
