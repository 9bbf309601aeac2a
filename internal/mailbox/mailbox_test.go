package mailbox

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

// runner runs a mailbox and records what it delivers; block holds fn until
// released, to make a backlog.
type runner struct {
	mu    sync.Mutex
	got   []int
	busy  bool
	twice bool // fn ran concurrently with itself
	gate  chan struct{}
	done  chan struct{}
	exit  chan struct{}
}

func start(m *Latest[int], gated bool) *runner {
	r := &runner{done: make(chan struct{}), exit: make(chan struct{})}
	if gated {
		r.gate = make(chan struct{})
	}
	go func() {
		defer close(r.exit)
		m.Run(r.done, func(v int) {
			r.mu.Lock()
			r.twice = r.twice || r.busy
			r.busy = true
			r.got = append(r.got, v)
			r.mu.Unlock()
			if r.gate != nil {
				<-r.gate
			}
			r.mu.Lock()
			r.busy = false
			r.mu.Unlock()
		})
	}()
	return r
}

func (r *runner) delivered() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...)
}

func (r *runner) waitFor(t *testing.T, n int) []int {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := r.delivered(); len(got) < n {
			return fmt.Errorf("delivered %v, want %d values", got, n)
		}
		return nil
	})
	return r.delivered()
}

func (r *runner) stop(t *testing.T) {
	t.Helper()
	close(r.done)
	if r.gate != nil {
		close(r.gate)
	}
	<-r.exit
	if r.twice {
		t.Fatal("fn ran concurrently with itself")
	}
}

// TestNewestOnly: values offered while the consumer is busy collapse into
// the newest; none is delivered twice and order is kept.
func TestNewestOnly(t *testing.T) {
	m := New[int](nil)
	r := start(m, true)
	m.Offer(1)
	r.waitFor(t, 1) // fn holds 1 until the gate opens
	for v := 2; v <= 100; v++ {
		m.Offer(v)
	}
	r.gate <- struct{}{} // release 1
	got := r.waitFor(t, 2)
	r.gate <- struct{}{} // release 100
	if got[0] != 1 || got[1] != 100 {
		t.Fatalf("delivered %v, want [1 100]", got)
	}
	r.stop(t)
	if got := r.delivered(); len(got) != 2 {
		t.Fatalf("delivered %v, want only [1 100]", got)
	}
}

// TestOfferBeforeRun: a value offered before Run starts is delivered.
func TestOfferBeforeRun(t *testing.T) {
	m := New[int](nil)
	m.Offer(7)
	r := start(m, false)
	if got := r.waitFor(t, 1); got[0] != 7 {
		t.Fatalf("delivered %v, want [7]", got)
	}
	r.stop(t)
}

// TestEqualSkipped: with equal set, a value equal to the last delivered one
// is not delivered again; a different one is.
func TestEqualSkipped(t *testing.T) {
	m := New(func(a, b int) bool { return a == b })
	r := start(m, false)
	m.Offer(1)
	r.waitFor(t, 1)
	m.Offer(1)
	m.Offer(2)
	if got := r.waitFor(t, 2); len(got) != 2 || got[1] != 2 {
		t.Fatalf("delivered %v, want [1 2]", got)
	}
	m.Offer(2)
	m.Offer(3)
	got := r.waitFor(t, 3)
	r.stop(t)
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("delivered %v, want [1 2 3]", got)
	}
}

// TestRunStops: Run returns once done closes, with a value still pending
// undelivered.
func TestRunStops(t *testing.T) {
	m := New[int](nil)
	r := start(m, false)
	close(r.done)
	<-r.exit
	m.Offer(1) // no one runs: must not block
	if got := r.delivered(); len(got) != 0 {
		t.Fatalf("delivered %v after done", got)
	}
}
