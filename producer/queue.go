package producer

import (
	"sync"
	"time"
)

// message is one scheduled message and its progress.
type message struct {
	seq       int64
	intended  time.Time // from the schedule
	enqueued  time.Time // when the scheduler queued it
	partition int32     // current partition
	attempts  int       // requests that carried it
	tries     int       // failed tries counted against Retries
	sent      time.Time // last attempt handed to the network
	lastErr   error     // last attempt's error
	written   bool      // some attempt may have reached the broker
}

// queue is one partition's unbounded FIFO of messages not yet in a request.
// The scheduler (and, in RocketMQ style, other partitions' goroutines moving
// messages) push; the partition's goroutine takes. The queue never blocks a
// pusher, so the open-loop schedule never waits for a stalled partition.
type queue struct {
	mu   sync.Mutex // guards msgs
	msgs []*message
	// notify (capacity 1) wakes the partition's goroutine after a push.
	notify chan struct{}
}

func newQueue() *queue { return &queue{notify: make(chan struct{}, 1)} }

// push appends ms.
func (q *queue) push(ms ...*message) {
	q.mu.Lock()
	q.msgs = append(q.msgs, ms...)
	q.mu.Unlock()
	q.wake()
}

// pushFront puts ms before every queued message (a batch moved here from
// another partition was due before them).
func (q *queue) pushFront(ms []*message) {
	q.mu.Lock()
	q.msgs = append(append(make([]*message, 0, len(ms)+len(q.msgs)), ms...), q.msgs...)
	q.mu.Unlock()
	q.wake()
}

func (q *queue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// state returns how many messages are queued and when the oldest was queued.
func (q *queue) state() (n int, oldest time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return 0, time.Time{}
	}
	return len(q.msgs), q.msgs[0].enqueued
}

// take removes up to maxN messages whose values total at most maxBytes (at
// least one message).
func (q *queue) take(maxN, maxBytes, size int) []*message {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(maxN, len(q.msgs))
	if size > 0 {
		n = min(n, max(1, maxBytes/size))
	}
	out := make([]*message, n)
	copy(out, q.msgs[:n])
	clear(q.msgs[:n])
	q.msgs = q.msgs[n:]
	if len(q.msgs) == 0 {
		q.msgs = nil // release the backing array after a backlog
	}
	return out
}

// drain removes every queued message.
func (q *queue) drain() []*message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}
