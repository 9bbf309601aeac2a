package gossip_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// producer writes numbered records to one partition with franz-go and
// remembers which were acknowledged.
type producer struct {
	cl    *kgo.Client
	topic string
	part  int32

	mu    sync.Mutex
	acked map[int]bool
	sent  int
	fails int
}

func newProducer(t *testing.T, addrs []string, topic string, part int32, acksAll bool) *producer {
	t.Helper()
	acks := kgo.LeaderAck()
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(8 * time.Second),
		kgo.ProduceRequestTimeout(3 * time.Second), kgo.RetryTimeout(8 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond)}
	if acksAll {
		acks = kgo.AllISRAcks()
	} else {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(append(opts, kgo.RequiredAcks(acks))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{cl: cl, topic: topic, part: part, acked: map[int]bool{}}
}

// start runs the producer in the background; stop ends it and waits for
// the outstanding records.
func (p *producer) start(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx, interval) }()
	return func() { cancel(); <-done }
}

// run produces one record every interval until ctx ends, then waits for
// the outstanding ones.
func (p *producer) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_ = p.cl.Flush(fctx)
			cancel()
			return
		case <-tick.C:
		}
		n := i
		p.mu.Lock()
		p.sent++
		p.mu.Unlock()
		p.cl.Produce(context.Background(), &kgo.Record{Partition: p.part, Value: []byte(strconv.Itoa(n))}, func(_ *kgo.Record, err error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if err == nil {
				p.acked[n] = true
			} else {
				p.fails++
			}
		})
	}
}

// consumeAll reads the partition from the start through addr with
// franz-go until it has read up to the high watermark.
func consumeAll(t *testing.T, addr, topic string, part int32) map[int]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The end: the high watermark, read with kafka-go through the same
	// broker (any broker answers Metadata from its gossip view).
	var end int64
	testutil.Eventually(t, 20*time.Second, func() error {
		conn, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, int(part))
		if err != nil {
			return err
		}
		defer conn.Close()
		end, err = conn.ReadLastOffset()
		return err
	})
	got := map[int]bool{}
	var read int64
	deadline := time.Now().Add(30 * time.Second)
	for read < end && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := strconv.Atoi(string(r.Value))
			got[n] = true
			read = r.Offset + 1
		})
	}
	if read < end {
		t.Fatalf("read %d of %d records of %s/%d", read, end, topic, part)
	}
	return got
}

func lost(acked, got map[int]bool) int {
	n := 0
	for k := range acked {
		if !got[k] {
			n++
		}
	}
	return n
}

// startWithTopic starts three brokers of placement, every one a master,
// creates topic and returns the cluster and the leader of its partition 0.
func startWithTopic(t *testing.T, placement, topic string) (*cluster, int32) {
	t.Helper()
	c := newCluster(t, 3, placement)
	c.waitMasters(3)
	createTopic(t, c, topic)
	return c, c.WaitLeader(topic, 0)
}

func createTopic(t *testing.T, c *cluster, name string) {
	t.Helper()
	c.CreateTopic(t, broker.TopicConfig{Name: name, Partitions: 3, ReplicationFactor: 3, MinInsync: 2})
}

// TestMasterKillAcksAll kills the leader of a partition while a franz-go
// producer writes with acks=all: a replica takes over with a higher
// leader epoch and nothing acknowledged is lost.
func TestMasterKillAcksAll(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			c, leader := startWithTopic(t, placement, "kill")
			_, epoch := leaderIn(c.Broker(leader).View(), "kill", 0)
			p := newProducer(t, c.Addrs(), "kill", 0, true)
			stop := p.start(5 * time.Millisecond)
			waitAcked(t, p, 100)
			killed := time.Now()
			c.Kill(leader)
			var next int32
			testutil.Eventually(t, 30*time.Second, func() error {
				for _, id := range c.IDs() {
					if !c.Running(id) {
						continue
					}
					l, e := leaderIn(c.Broker(id).View(), "kill", 0)
					if l == leader || l < 0 || e <= epoch {
						return fmt.Errorf("broker %d: leader %d epoch %d", id, l, e)
					}
					next = l
				}
				return nil
			})
			t.Logf("leader %d killed; %d leads in a new epoch after %v", leader, next, time.Since(killed).Round(time.Millisecond))
			c.WaitLeader("kill", 0)
			before := ackedCount(p)
			waitAcked(t, p, before+100)
			stop()
			var addr string
			for _, id := range c.IDs() {
				if c.Running(id) && id != next {
					addr = c.Broker(id).Addr() // a broker that does not lead
				}
			}
			got := consumeAll(t, addr, "kill", 0)
			if n := lost(p.acked, got); n != 0 {
				t.Fatalf("%d of %d acknowledged records lost", n, len(p.acked))
			}
			t.Logf("sent %d, acked %d, failed %d, 0 lost", p.sent, len(p.acked), p.fails)
		})
	}
}

func ackedCount(p *producer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func waitAcked(t *testing.T, p *producer, n int) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		if got := ackedCount(p); got < n {
			return fmt.Errorf("%d acked, want %d", got, n)
		}
		return nil
	})
}

// TestIsolateMasterMinority cuts a partition's leader from every other
// cluster node while its clients still reach it. The majority fails it
// over; the isolated leader cannot shrink its ISR without a majority, so
// under acks=all it stops acknowledging and nothing acknowledged is lost.
// Under acks=1 it keeps acknowledging writes that the truncation after
// the heal discards: the loss Redis Cluster documents.
func TestIsolateMasterMinority(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test")
	}
	for _, tc := range []struct {
		placement string
		acksAll   bool
	}{{gossip.PlacementSlots, true}, {gossip.PlacementSlots, false}, {gossip.PlacementRing, true}} {
		name := fmt.Sprintf("%s/acks=all:%v", tc.placement, tc.acksAll)
		t.Run(name, func(t *testing.T) {
			c, old := startWithTopic(t, tc.placement, "split")
			_, epoch := leaderIn(c.Broker(old).View(), "split", 0)
			p := newProducer(t, []string{c.Broker(old).Addr()}, "split", 0, tc.acksAll)
			stop := p.start(5 * time.Millisecond)
			waitAcked(t, p, 100)

			c.isolate(old)
			isolated := time.Now()
			var next int32
			testutil.Eventually(t, 30*time.Second, func() error {
				for _, id := range c.IDs() {
					if id == old {
						continue
					}
					l, e := leaderIn(c.Broker(id).View(), "split", 0)
					if l == old || l < 0 || e <= epoch {
						return fmt.Errorf("broker %d: leader %d epoch %d", id, l, e)
					}
					next = l
				}
				return nil
			})
			t.Logf("majority elected %d %v after the isolation", next, time.Since(isolated).Round(time.Millisecond))
			// The isolated leader still believes it leads.
			if l, _ := leaderIn(c.Broker(old).View(), "split", 0); l != old {
				t.Fatalf("isolated broker %d sees leader %d", old, l)
			}
			hw0, leo0 := replicaOf(c.Broker(old), "split", 0)
			time.Sleep(2 * time.Second) // keep producing into the isolated leader for a while
			hw1, leo1 := replicaOf(c.Broker(old), "split", 0)
			c.heal(old)
			testutil.Eventually(t, 30*time.Second, func() error {
				if l, e := leaderIn(c.Broker(old).View(), "split", 0); l != next || e <= epoch {
					return fmt.Errorf("healed broker %d sees leader %d epoch %d", old, l, e)
				}
				return nil
			})
			c.WaitLeader("split", 0)
			stop()
			got := consumeAll(t, c.Broker(old).Addr(), "split", 0)
			n := lost(p.acked, got)
			t.Logf("sent %d, acked %d, failed %d, acknowledged but lost %d; isolated leader: high watermark %d -> %d, log end %d -> %d",
				p.sent, len(p.acked), p.fails, n, hw0, hw1, leo0, leo1)
			switch {
			case tc.acksAll && n != 0:
				t.Fatalf("acks=all: %d acknowledged records lost", n)
			case hw1 != hw0:
				// acks=all is answered once the high watermark passes a
				// batch: an isolated leader whose ISR cannot shrink never
				// moves it.
				t.Fatalf("the isolated leader's high watermark moved %d -> %d", hw0, hw1)
			case !tc.acksAll && leo1 == leo0:
				t.Fatal("acks=1: the isolated leader took no writes; the test shows nothing")
			case !tc.acksAll && n == 0:
				t.Fatalf("acks=1: no loss although the isolated leader took %d records", leo1-leo0)
			}
		})
	}
}

// replicaOf returns a local replica's high watermark and log end offset.
func replicaOf(b *broker.Broker, topic string, part int32) (int64, int64) {
	for _, rs := range b.Status() {
		if rs.Topic == topic && rs.Partition == part {
			return rs.HighWater, rs.LogEnd
		}
	}
	return -1, -1
}

// TestJoinTakesSlotsAndClients: a fourth broker (not a seed) joins, takes
// its share of the slots, and leads partitions of a topic created after;
// kafka-go produces through one broker and franz-go consumes through
// another.
func TestJoinTakesSlotsAndClients(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := newCluster(t, 4, gossip.PlacementSlots)
	c.waitMasters(4)
	if n := c.plane(1).SlotsOf(4); n < gossip.Slots/8 {
		t.Fatalf("the joined broker owns %d slots", n)
	}
	c.CreateTopic(t, broker.TopicConfig{Name: "join", Partitions: 16, ReplicationFactor: 2, MinInsync: 1})
	leads := 0
	for p := range int32(16) {
		if c.WaitLeader("join", p) == 4 {
			leads++
		}
	}
	if leads == 0 {
		t.Fatal("the joined broker leads none of 16 partitions")
	}
	w := &kafka.Writer{Addr: kafka.TCP(c.Broker(4).Addr()), Topic: "join", Balancer: &kafka.RoundRobin{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for i := range 160 {
		msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	got := 0
	for p := range int32(16) {
		got += len(consumeAll(t, c.Broker(1).Addr(), "join", p))
	}
	if got != 160 {
		t.Fatalf("consumed %d of 160", got)
	}
	t.Logf("broker 4 owns %d slots and leads %d of 16 partitions; 160 written with kafka-go, 160 read with franz-go", c.plane(1).SlotsOf(4), leads)
}

// TestStopHandsOff: a graceful stop of a partition's leader under acks=all
// load hands its slots (ring: its partitions) to an in-sync replica in a
// newer epoch while it still listens (brokertest checks that order), leaves
// every ISR, and nothing acknowledged is lost.
func TestStopHandsOff(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			c, leader := startWithTopic(t, placement, "stop")
			p := newProducer(t, c.Addrs(), "stop", 0, true)
			stop := p.start(5 * time.Millisecond)
			waitAcked(t, p, 100)
			if moved := c.StopWithHandoff(t, leader, "stop"); moved == 0 {
				t.Fatalf("broker %d led nothing to hand off", leader)
			}
			// Every leader dropped the stopped node from its ISRs (asked by
			// it before it left), so acks=all does not wait for it.
			testutil.Eventually(t, 10*time.Second, func() error {
				for _, id := range c.IDs() {
					if !c.Running(id) {
						continue
					}
					tv, _ := c.Broker(id).View().Topic("stop")
					for _, ps := range tv.Partitions {
						if ps.InISR(leader) {
							return fmt.Errorf("broker %d: stop/%d ISR %v still has %d", id, ps.Partition, ps.ISR, leader)
						}
					}
				}
				return nil
			})
			next := c.WaitLeader("stop", 0)
			waitAcked(t, p, ackedCount(p)+100)
			stop()
			got := consumeAll(t, c.Broker(next).Addr(), "stop", 0)
			if n := lost(p.acked, got); n != 0 {
				t.Fatalf("%d of %d acknowledged records lost", n, len(p.acked))
			}
			t.Logf("leader %d stopped, %d took over: sent %d, acked %d, failed %d, 0 lost", leader, next, p.sent, len(p.acked), p.fails)
		})
	}
}

// TestHandoffStaysOutOfISRs: once a broker's hand-off returns, the broker
// is out of every ISR and stays out while it still runs, although it is
// still a replica of every partition: a broker handing off fetches as a
// follower no more. Before, it kept fetching (from the new leaders of the
// partitions it had just handed off, and from the leaders it followed), a
// leader added it back to its ISR within milliseconds, and once it exited
// acks=all writes waited replica_lag_max (3 s here) for it: a graceful stop
// right after a restart cost more than a kill. The leave must show within
// 2 s, under that lag, so only the leave request can satisfy it.
func TestHandoffStaysOutOfISRs(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			c := newCluster(t, 3, placement)
			c.waitMasters(3)
			createTopic(t, c, "out")
			leader := c.WaitLeader("out", 0)
			p := newProducer(t, c.Addrs(), "out", 0, true)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.run(ctx, 2*time.Millisecond) }()
			defer func() { stop(); <-done }()
			waitAcked(t, p, 100)
			hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Broker(leader).Handoff(hctx); err != nil {
				t.Fatal(err)
			}
			inISR := func() error {
				for _, id := range c.IDs() {
					if id == leader || !c.Running(id) {
						continue
					}
					tv, _ := c.Broker(id).View().Topic("out")
					for _, ps := range tv.Partitions {
						if ps.InISR(leader) {
							return fmt.Errorf("broker %d: out/%d ISR %v has the leaving broker %d", id, ps.Partition, ps.ISR, leader)
						}
					}
				}
				return nil
			}
			testutil.Eventually(t, 2*time.Second, inISR)
			for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if err := inISR(); err != nil {
					t.Fatalf("after the hand-off, while broker %d still runs: %v", leader, err)
				}
			}
			before := ackedCount(p)
			waitAcked(t, p, before+100)
			c.Stop(leader)
		})
	}
}
