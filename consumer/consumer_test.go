package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/producer"
)

func newDiscovery(t *testing.T, addr string) *discovery.Bootstrap {
	t.Helper()
	cfg := discovery.DefaultBootstrapConfig()
	cfg.Brokers = []string{addr}
	cfg.RequestTimeout = 2 * time.Second
	d, err := discovery.NewBootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// produce writes n messages to topic and returns when all are acked.
func produce(t *testing.T, d discovery.Discovery, topic string, id int32, n int64) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.ProducerID, cfg.Rate, cfg.Count, cfg.MessageSize = d, topic, id, 0, n, 50
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Acked != n {
		t.Fatalf("producer stats %+v, want %d acked", st, n)
	}
}

// TestDrainDetection: CaughtUp stays false until every partition has been
// fetched after the given time and read to its high watermark; messages
// without the history headers are counted, not recorded.
func TestDrainDetection(t *testing.T) {
	b := brokertest.Standalone(t)
	d := newDiscovery(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := discovery.CreateTopic(ctx, d, "d", 3, 1); err != nil {
		t.Fatal(err)
	}
	produce(t, d, "d", 1, 300)

	var mu sync.Mutex
	var recvs []history.Receive
	cfg := consumer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.Partitions = d, "d", []int32{0, 2}
	cfg.MaxWait = 50 * time.Millisecond
	cfg.Logger = testutil.Logger(t, slog.LevelInfo)
	c, err := consumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.CaughtUp(time.Time{}) {
		t.Fatal("caught up before running")
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(r history.Receive) {
			mu.Lock()
			recvs = append(recvs, r)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { stop(); <-done })

	since := time.Now()
	if err := c.WaitCaughtUp(ctx, since); err != nil {
		t.Fatalf("not caught up: %v %+v", err, c.Progress())
	}
	mu.Lock()
	n := len(recvs)
	mu.Unlock()
	if n != 200 || c.Lag() != 0 {
		t.Fatalf("%d received from partitions 0 and 2, lag %d; want 200, 0", n, c.Lag())
	}
	for _, p := range c.Progress() {
		if p.Partition == 1 || p.Position != 100 || p.HighWatermark != 100 || p.Reader != b.Addr() || p.FetchSent.Before(since) {
			t.Fatalf("progress %+v", p)
		}
	}
	// A later mark is not reached by fetches sent before it.
	later := time.Now().Add(time.Hour)
	if c.CaughtUp(later) {
		t.Fatal("caught up with a mark in the future")
	}

	// More messages: lag appears, then drains.
	produce(t, d, "d", 2, 90)
	mark := time.Now()
	if err := c.WaitCaughtUp(ctx, mark); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n = len(recvs)
	mu.Unlock()
	if n != 260 {
		t.Fatalf("%d received after the second batch, want 260", n)
	}
	if st := c.Stats(); st.Received != 260 || st.Foreign != 0 || st.Fetches == 0 {
		t.Fatalf("stats %+v", st)
	}

	// A partition nobody serves never catches up.
	b.Kill()
	wctx, wcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer wcancel()
	if err := c.WaitCaughtUp(wctx, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCaughtUp with the broker dead: %v, want a deadline error", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, p := range c.Progress() {
			if p.LastErr == "" {
				return errors.New("no fetch error recorded yet")
			}
		}
		return nil
	})
}
