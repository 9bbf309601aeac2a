package producer_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/history/historytest"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/producer"
)

// changes collects route Changes.
type changes struct {
	mu  sync.Mutex
	all []discovery.Change
}

func (c *changes) add(ch discovery.Change) {
	c.mu.Lock()
	c.all = append(c.all, ch)
	c.mu.Unlock()
}

func (c *changes) find(f func(discovery.Change) bool) (discovery.Change, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.all {
		if f(ch) {
			return ch, true
		}
	}
	return discovery.Change{}, false
}

// TestRetriesFollowLeaderChange kills the leader of a partition under load
// and moves leadership to another replica: the producer's failed batches are
// retried on the same partition at the new leader, every message is acked
// once, the consumer follows the leader and reads every acked message, and
// both clients report when they started using the new leader.
func TestRetriesFollowLeaderChange(t *testing.T) {
	c := brokertest.New(t, brokertest.Brokers(3))
	c.CreateTopic(t, broker.TopicConfig{Name: "f", Partitions: 2, ReplicationFactor: 3, MinInsync: 2})
	log := testutil.Logger(t, slog.LevelWarn)

	// Each client has its own metadata, as separate Kafka clients do.
	newDiscovery := func() *discovery.Bootstrap {
		dcfg := discovery.DefaultBootstrapConfig()
		dcfg.Brokers = c.Addrs()
		dcfg.RequestTimeout = 3 * time.Second
		dcfg.Dial = c.Net.Dialer("client")
		dcfg.Logger = log
		d, err := discovery.NewBootstrap(dcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}

	rec := &historytest.Log{}
	routes := &changes{}
	ccfg := consumer.DefaultConfig()
	ccfg.Discovery, ccfg.Topic = newDiscovery(), "f"
	ccfg.MaxWait = 100 * time.Millisecond
	ccfg.RequestTimeout = 3 * time.Second
	ccfg.Dial = c.Net.Dialer("client")
	ccfg.OnRoute = routes.add
	ccfg.Logger = log
	cons := runConsumer(t, ccfg, rec)

	const n = 900
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic = newDiscovery(), "f"
	cfg.Rate, cfg.Count, cfg.MessageSize = 300, n, 100
	cfg.RequestTimeout = 3 * time.Second
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.Dial = c.Net.Dialer("client")
	cfg.OnRoute = routes.add
	cfg.Logger = log
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, rec.Send) }()

	testutil.Eventually(t, 10*time.Second, func() error {
		if a := p.Stats().Acked; a < 150 {
			return fmt.Errorf("%d acked", a)
		}
		return nil
	})
	old := c.LeaderOf("f", 0)
	oldAddr := c.Broker(old).Addr()
	killed := time.Now()
	c.Kill(old)
	c.Plane.Failover(old)
	nl := c.WaitLeader("f", 0)
	newAddr := c.Broker(nl).Addr()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	sends, _ := rec.Events()
	checkAllAcked(t, sends, n)
	st := p.Stats()
	if st.Retries == 0 {
		t.Errorf("no retries after the leader was killed: %+v", st)
	}
	for _, s := range sends {
		if s.Partition != int32(s.Seq%2) {
			t.Fatalf("seq %d moved to partition %d: Kafka-style retries stay on their partition", s.Seq, s.Partition)
		}
	}
	// The Kafka-style promise: one request in flight per partition and a
	// failed batch retried before any later one, so across the leader
	// change every partition holds its messages in sequence order.
	if r := reorderedIn(sends); len(r) != 0 {
		t.Errorf("Kafka-style retries reordered partitions (partition: messages): %v", r)
	}
	for _, client := range []string{"producer-0", "consumer-0"} {
		ch, ok := routes.find(func(ch discovery.Change) bool {
			return ch.Client == client && ch.Partition == 0 && ch.Addr == newAddr && ch.Previous == oldAddr
		})
		if !ok {
			t.Errorf("%s reported no move of partition 0 from %s to %s", client, oldAddr, newAddr)
			continue
		}
		if ch.At.Before(killed) {
			t.Errorf("%s moved at %v, before the kill at %v", client, ch.At, killed)
		}
		t.Logf("%s uses the new leader %v after the kill", client, ch.At.Sub(killed))
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer wcancel()
	if err := cons.WaitCaughtUp(wctx, stopped); err != nil {
		t.Fatalf("consumer did not catch up: %v %+v", err, cons.Progress())
	}
	_, recvs := rec.Events()
	checkReceivedAllowRetryDuplicates(t, sends, recvs)
}

// runConsumer runs a consumer of cfg into rec until the test ends.
func runConsumer(t *testing.T, cfg consumer.Config, rec *historytest.Log) *consumer.Consumer {
	t.Helper()
	cons, err := consumer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, rec.Receive) }()
	t.Cleanup(func() { stop(); <-done })
	return cons
}

// checkReceivedAllowRetryDuplicates is checkReceived where a message sent
// more than once may appear more than once (a retry after a lost response
// writes it again: Kafka without idempotence), as long as its acked offset
// is among its deliveries.
func checkReceivedAllowRetryDuplicates(t *testing.T, sends []history.Send, recvs []history.Receive) {
	t.Helper()
	got := map[int64][]history.Receive{}
	for _, r := range recvs {
		got[r.Seq] = append(got[r.Seq], r)
	}
	for _, s := range sends {
		rs := got[s.Seq]
		if len(rs) > 1 && s.Attempts < 2 {
			t.Fatalf("seq %d sent once, received %d times", s.Seq, len(rs))
		}
		found := false
		for _, r := range rs {
			if r.Partition == s.Partition && r.Offset == s.Offset && r.Intended.Equal(s.Intended) {
				found = true
			}
		}
		if !found {
			t.Fatalf("acked seq %d at %d/%d not received there: %+v", s.Seq, s.Partition, s.Offset, rs)
		}
	}
}
