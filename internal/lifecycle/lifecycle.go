// Package lifecycle owns what a TCP server's Start and Close have in
// common: its listener, the goroutines it starts and a context that ends
// at Close. The name server and the controller embed one each.
//
//	o := lifecycle.New()
//	ln, err := o.Listen(ctx, "127.0.0.1:0", nil) // in Start
//	o.Go(func() { accept(ln) })
//	o.Close(func() { /* close connections */ }) // waits for every goroutine
package lifecycle

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrClosed is returned by Listen after Close, or when called twice.
var ErrClosed = errors.New("closed or already started")

// Owner is one server's lifecycle. Its methods are safe for concurrent
// use.
type Owner struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex // guards the fields below
	ln     net.Listener
	closed bool
}

// New returns an owner that is not listening yet.
func New() *Owner {
	ctx, cancel := context.WithCancel(context.Background())
	return &Owner{ctx: ctx, cancel: cancel}
}

// Context ends when Close begins.
func (o *Owner) Context() context.Context { return o.ctx }

// Listen listens on addr, or adopts ln when it is not nil. It fails with
// ErrClosed after Close or once a listener is set (ln is closed then).
func (o *Owner) Listen(ctx context.Context, addr string, ln net.Listener) (net.Listener, error) {
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return nil, err
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.ln != nil {
		_ = ln.Close()
		return nil, ErrClosed
	}
	o.ln = ln
	return ln, nil
}

// Addr returns the listening address, or "" before Listen.
func (o *Owner) Addr() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln == nil {
		return ""
	}
	return o.ln.Addr().String()
}

// Closed reports whether Close has begun.
func (o *Owner) Closed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// Go runs f on a goroutine Close waits for; after Close it runs nothing
// and returns false.
func (o *Owner) Go(f func()) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		f()
	}()
	return true
}

// Close, the first time, marks the owner closed (Go refuses from then on),
// ends the context, closes the listener and calls stop (which should close
// what the goroutines wait on: connections); every time, it then waits for
// every goroutine started by Go.
func (o *Owner) Close(stop func()) {
	o.once.Do(func() {
		o.mu.Lock()
		o.closed = true
		ln := o.ln
		o.mu.Unlock()
		o.cancel()
		if ln != nil {
			_ = ln.Close()
		}
		if stop != nil {
			stop()
		}
	})
	o.wg.Wait()
}
