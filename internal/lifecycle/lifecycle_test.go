package lifecycle

import (
	"context"
	"errors"
	"net"
	"testing"
)

// A server's life: listen once, run goroutines until Close, which ends the
// context, closes the listener, runs stop and waits for them; after Close
// nothing starts.
func TestOwner(t *testing.T) {
	o := New()
	if o.Addr() != "" {
		t.Fatal("address before Listen")
	}
	ln, err := o.Listen(context.Background(), "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr() != ln.Addr().String() {
		t.Fatalf("Addr %q, listener on %s", o.Addr(), ln.Addr())
	}
	if _, err := o.Listen(context.Background(), "127.0.0.1:0", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Listen: %v", err)
	}
	accepted := make(chan error, 1)
	if !o.Go(func() { _, err := ln.Accept(); accepted <- err }) {
		t.Fatal("Go refused before Close")
	}
	ctxDone := make(chan struct{})
	o.Go(func() { <-o.Context().Done(); close(ctxDone) })
	stopped := false
	o.Close(func() { stopped = true })
	if !stopped || !o.Closed() {
		t.Fatal("Close did not run stop or mark closed")
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after Close: %v", err)
	}
	<-ctxDone
	if o.Go(func() {}) {
		t.Fatal("Go ran after Close")
	}
	o.Close(nil) // idempotent
	if _, err := o.Listen(context.Background(), "127.0.0.1:0", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Listen after Close: %v", err)
	}
}
