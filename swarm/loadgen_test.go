package swarm

import (
	"context"
	"fmt"
	"github.com/brokerlab/brokerlab/docker"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
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
	n := &docker.Node{Name: "loadgen 0", Runner: map[int]string{loadgenPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}}
	l := &loadgens{nodes: []*docker.Node{n}, routes: &nodes.RouteLog{}, logger: slog.New(slog.DiscardHandler),
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

// TestLoadgenClients runs a producer and a consumer on a load generator
// on loopback against a real one-node broker, through the same remote
// clients the swarm runtime uses: every acknowledged message comes back as
// a send and as a receive, route changes reach the runner's log, and the
// consumer answers CaughtUp, Reads and LogReaches while it runs.
func TestLoadgenClients(t *testing.T) {
	b := brokertest.Standalone(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := discovery.DefaultBootstrapConfig()
	cfg.Brokers = []string{b.Addr()}
	d, err := discovery.NewBootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTopic(ctx, "lg", 2, 1); err != nil {
		t.Fatal(err)
	}
	d.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeLoadgen(sctx, ln, testLogger(t)) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	n := &docker.Node{Name: "loadgen 0", Runner: map[int]string{loadgenPort: ln.Addr().String()}}
	var changes atomic.Int64
	routes := &nodes.RouteLog{Forward: func(c discovery.Change) {
		if c.Client != "" && c.Addr == b.Addr() {
			changes.Add(1)
		}
	}}
	l := &loadgens{nodes: []*docker.Node{n}, routes: routes, style: producer.StyleKafka, logger: testLogger(t),
		discovery: func(s *session) {
			c := discovery.DefaultBootstrapConfig()
			c.Brokers = []string{b.Addr()}
			s.Bootstrap = &c
		}}
	spec := scenario.DefaultSpec()
	w := spec.Workload
	w.MessageSize, w.Acks, w.Timeout = 100, scenario.AcksAll, 5*time.Second

	cons, err := l.NewConsumer(scenarios.ConsumerConfig{ID: 0, Topic: "lg", Timings: spec.Timings()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	received := map[int64]bool{}
	consumeCtx, stopConsumer := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- cons.Run(consumeCtx, func(r history.Receive) {
			mu.Lock()
			received[r.Seq] = true
			mu.Unlock()
		})
	}()
	start := time.Now().Add(100 * time.Millisecond)
	p, err := l.NewProducer(scenarios.ProducerConfig{ID: 0, Topic: "lg", Rate: 200, Start: start, Duration: 2 * time.Second, Workload: w, Timings: spec.Timings()})
	if err != nil {
		t.Fatal(err)
	}
	var acked []int64
	if err := p.Run(ctx, func(s history.Send) {
		if s.Intended.Before(start.Add(-time.Second)) || s.Done.Before(s.Intended) {
			t.Errorf("send %d: intended %v, done %v, start %v", s.Seq, s.Intended, s.Done, start)
		}
		if s.Outcome == history.Acked {
			mu.Lock()
			acked = append(acked, s.Seq)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(acked) < 300 {
		t.Fatalf("%d of 400 acked", len(acked))
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		ok, err := cons.CaughtUp(ctx)
		if err != nil || !ok {
			return fmt.Errorf("not caught up: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, seq := range acked {
			if !received[seq] {
				return fmt.Errorf("message %d acked, not received", seq)
			}
		}
		return nil
	})
	pr := cons.(scenarios.PartitionReader)
	if reads := pr.Reads(); len(reads) != 2 {
		t.Errorf("reads of %d partitions, want 2: %+v", len(reads), reads)
	}
	if ok, err := pr.LogReaches(ctx, 0, 0); err != nil || !ok {
		t.Errorf("log of partition 0 reaches offset 0: %v, %v", ok, err)
	}
	stopConsumer()
	if err := <-consumed; err != nil {
		t.Errorf("consumer: %v", err)
	}
	if reads := pr.Reads(); len(reads) != 2 { // the final reads, after Run
		t.Errorf("final reads of %d partitions, want 2", len(reads))
	}
	if changes.Load() == 0 {
		t.Error("no client's route change came back")
	}
}
