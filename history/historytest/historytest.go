// Package historytest keeps the events a producer and a consumer report,
// in arrival order, for tests that look at them one by one.
//
//	var log historytest.Log
//	err := p.Run(ctx, log.Send)
//	sends, _ := log.Events()
package historytest

import (
	"sync"

	"github.com/brokerlab/brokerlab/history"
)

// Log collects sends and receives; it is safe for concurrent use and its
// zero value is ready.
type Log struct {
	mu       sync.Mutex
	sends    []history.Send
	receives []history.Receive
}

// Send records a send.
func (l *Log) Send(s history.Send) {
	l.mu.Lock()
	l.sends = append(l.sends, s)
	l.mu.Unlock()
}

// Receive records a receive.
func (l *Log) Receive(r history.Receive) {
	l.mu.Lock()
	l.receives = append(l.receives, r)
	l.mu.Unlock()
}

// Events returns copies of what was recorded so far.
func (l *Log) Events() ([]history.Send, []history.Receive) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]history.Send(nil), l.sends...), append([]history.Receive(nil), l.receives...)
}
