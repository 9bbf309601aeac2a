package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

func newHand(t *testing.T, listen string) (*broker.Broker, *handPlane) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = listen
	cp := &handPlane{}
	b, err := broker.New(cfg, cp)
	if err != nil {
		t.Fatal(err)
	}
	return b, cp
}

// TestCloseNeverStartedClosesPlane: a broker that never started still owns
// its control plane (which may hold an etcd client): Close closes it, once.
func TestCloseNeverStartedClosesPlane(t *testing.T) {
	b, cp := newHand(t, "127.0.0.1:0")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	b.Kill()
	if n := cp.closeCount(); n != 1 {
		t.Fatalf("control plane closed %d times, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Start(ctx); err == nil {
		b.Kill()
		t.Fatal("Start after Close succeeded")
	}
}

// TestFailedStartClosesPlane: a Start that cannot listen leaves nothing
// open, the control plane included, and a later Close does not close it
// again.
func TestFailedStartClosesPlane(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	b, cp := newHand(t, taken.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Start(ctx); err == nil {
		b.Kill()
		t.Fatal("Start on a taken port succeeded")
	}
	if n := cp.closeCount(); n != 1 {
		t.Fatalf("after a failed Start the control plane was closed %d times, want 1", n)
	}
	_ = b.Close()
	if n := cp.closeCount(); n != 1 {
		t.Fatalf("after Close the control plane was closed %d times, want 1", n)
	}
}

// TestStartedCloseClosesPlaneOnce: the ordinary path, for comparison.
func TestStartedCloseClosesPlaneOnce(t *testing.T) {
	b, cp := newHand(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	if n := cp.closeCount(); n != 1 {
		t.Fatalf("control plane closed %d times, want 1", n)
	}
}
