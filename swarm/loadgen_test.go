package swarm

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// TestLoadgenSession runs a load generator on loopback and checks the
// session's clock exchange, and that a client it cannot build ends the
// session with the reason.
func TestLoadgenSession(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeLoadgen(ctx, ln, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	n := &node{name: "loadgen 0", hostIP: "127.0.0.1", pub: map[int]int{loadgenPort: port}}
	l := &loadgens{nodes: []*node{n}, routes: &nodes.RouteLog{}, logger: slog.New(slog.DiscardHandler),
		discovery: func(*session) {}} // no discovery: the producer cannot be built
	c, err := l.dial(context.Background(), n, "producer-0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if abs(c.offset) > c.rtt+time.Millisecond || c.rtt <= 0 {
		t.Errorf("one clock, offset %v, round trip %v", c.offset, c.rtt)
	}
	if err := c.start(session{}); err != nil {
		t.Fatal(err)
	}
	err = l.read(c, func(kind byte, body []byte) (bool, error) { return false, nil })
	if err == nil {
		t.Fatal("a session without a client ended well")
	}
	t.Logf("%v (port %s)", err, strconv.Itoa(port))
}
