package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/segmentio/kafka-go"
)

// replicationConfig is a fast profile: follower fetches long-poll 100 ms and
// a follower silent for 1.5 s leaves the ISR.
func replicationConfig(c *broker.Config) {
	c.ReplicaFetchWait = 100 * time.Millisecond
	c.ReplicaLagMax = 1500 * time.Millisecond
	c.ReplicaBackoff = 50 * time.Millisecond
}

// ackedMsg is a message the cluster acknowledged.
type ackedMsg struct {
	seq    int
	offset int64
}

// seqProducer writes "seq-N" values to a partition's current leader with
// raw Produce requests, never retrying a request (so nothing it is told
// was acknowledged can appear twice), and remembers every acknowledgement.
type seqProducer struct {
	c     *brokertest.Cluster
	topic string
	acks  kafka.RequiredAcks

	mu     sync.Mutex
	next   int
	acked  map[int][]ackedMsg
	errors map[string]int
}

func newSeqProducer(c *brokertest.Cluster, topic string, acks kafka.RequiredAcks) *seqProducer {
	return &seqProducer{
		c: c, topic: topic, acks: acks,
		acked: map[int][]ackedMsg{}, errors: map[string]int{},
	}
}

// send writes n messages to partition p through its current leader.
func (sp *seqProducer) send(ctx context.Context, p, n int) error {
	leader := sp.c.LeaderOf(sp.topic, int32(p))
	if leader < 0 || !sp.c.Running(leader) {
		return errors.New("no live leader")
	}
	sp.mu.Lock()
	first := sp.next
	sp.next += n
	sp.mu.Unlock()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte("seq-" + strconv.Itoa(first+i))}
	}
	base, err := sp.write(ctx, leader, p, msgs)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err != nil {
		sp.errors[err.Error()]++
		return err
	}
	for i := range n {
		sp.acked[p] = append(sp.acked[p], ackedMsg{first + i, base + int64(i)})
	}
	return nil
}

// write sends msgs in one Produce request straight to broker id (kafka-go's
// Client would route by its own metadata cache instead).
func (sp *seqProducer) write(ctx context.Context, id int32, p int, msgs []kafka.Message) (int64, error) {
	conn, err := dialPartition(ctx, sp.c, "client", id, sp.topic, p)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetRequiredAcks(int(sp.acks)); err != nil {
		return 0, err
	}
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	_, _, base, _, err := conn.WriteCompressedMessagesAt(nil, msgs...)
	return base, err
}

// dialPartition connects to broker id for one partition, through the fault
// network under the name from.
func dialPartition(ctx context.Context, c *brokertest.Cluster, from string, id int32, topic string, p int) (*kafka.Conn, error) {
	host, port, err := net.SplitHostPort(c.Broker(id).Addr())
	if err != nil {
		return nil, err
	}
	portN, _ := strconv.Atoi(port)
	d := &kafka.Dialer{Timeout: time.Second, DialFunc: c.Net.Dialer(from)}
	return d.DialPartition(ctx, "tcp", "", kafka.Partition{Topic: topic, ID: p, Leader: kafka.Broker{Host: host, Port: portN, ID: int(id)}})
}

func (sp *seqProducer) ackedCount() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := 0
	for _, a := range sp.acked {
		n += len(a)
	}
	return n
}

// run sends batches of 10 round-robin over partitions until ctx ends.
func (sp *seqProducer) run(ctx context.Context, partitions int) {
	for i := 0; ctx.Err() == nil; i++ {
		if err := sp.send(ctx, i%partitions, 10); err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

var _ net.Addr = tcpAddr("")

// readPartition fetches a partition from broker id from offset 0 to its high
// watermark and returns the values by offset.
func readPartition(t *testing.T, c *brokertest.Cluster, id int32, topic string, p int) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := dialPartition(ctx, c, "reader", id, topic, p)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for offset := int64(0); ; {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
			t.Fatalf("seek %s/%d on %d to %d: %v", topic, p, id, offset, err)
		}
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 10 * time.Millisecond})
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			out[m.Offset] = string(m.Value)
			offset = m.Offset + 1
		}
		hw := batch.HighWaterMark()
		if err := batch.Close(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("fetch %s/%d from %d at %d: %v", topic, p, id, offset, err)
		}
		if offset >= hw {
			return out
		}
	}
}

// checkAcked asserts every acknowledged message sits at its acknowledged
// offset, appears once, and that acknowledged messages are in producer
// order per partition.
func checkAcked(t *testing.T, c *brokertest.Cluster, sp *seqProducer, partitions int) {
	t.Helper()
	for p := range partitions {
		leader := c.WaitLeader(sp.topic, int32(p))
		sp.mu.Lock()
		var need int64
		for _, a := range sp.acked[p] {
			need = max(need, a.offset+1)
		}
		sp.mu.Unlock()
		// A new leader's high watermark can trail the old one's until its
		// followers fetch again (as in Kafka): wait for it to cover every
		// acknowledged offset. If it never does, the data is gone.
		testutil.Eventually(t, 15*time.Second, func() error {
			for _, st := range c.Broker(leader).Status() {
				if st.Topic == sp.topic && st.Partition == int32(p) && st.HighWater >= need {
					return nil
				}
			}
			return fmt.Errorf("partition %d: leader %d high watermark below %d", p, leader, need)
		})
		log := readPartition(t, c, leader, sp.topic, p)
		seen := map[string]int{}
		for _, v := range log {
			seen[v]++
		}
		sp.mu.Lock()
		acked := slices.Clone(sp.acked[p])
		sp.mu.Unlock()
		for i, a := range acked {
			want := "seq-" + strconv.Itoa(a.seq)
			if got := log[a.offset]; got != want {
				t.Fatalf("partition %d: acked %s at offset %d, log has %q", p, want, a.offset, got)
			}
			if seen[want] != 1 {
				t.Fatalf("partition %d: acked %s appears %d times", p, want, seen[want])
			}
			if i > 0 && a.offset <= acked[i-1].offset {
				t.Fatalf("partition %d: acked seq %d at %d not after seq %d at %d", p, a.seq, a.offset, acked[i-1].seq, acked[i-1].offset)
			}
		}
	}
}

var fanouts = []broker.Fanout{broker.FanoutStar, broker.FanoutChain}

// TestLeaderKillsUnderLoad: a producer writes with acks=all while the leader
// is killed 20 times at random moments, leadership moves to an ISR member and
// the killed node comes back. Nothing acknowledged may be lost, duplicated
// or reordered, and every restarted node must rejoin the ISR.
func TestLeaderKillsUnderLoad(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 5
	}
	for _, fanout := range fanouts {
		t.Run(string(fanout), func(t *testing.T) {
			c := brokertest.New(t, brokertest.Brokers(3), brokertest.WithConfig(replicationConfig))
			const partitions = 2
			c.CreateTopic(t, broker.TopicConfig{Name: "kills", Partitions: partitions, ReplicationFactor: 3, MinInsync: 2, Fanout: fanout})
			sp := newSeqProducer(c, "kills", kafka.RequireAll)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); sp.run(ctx, partitions) }()
			rng := rand.New(rand.NewPCG(uint64(len(fanout)), 11))
			for i := range kills {
				time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond) // a random moment
				p := int32(rng.IntN(partitions))
				old := c.LeaderOf("kills", p)
				c.Kill(old)
				c.Plane.Failover(old)
				if nl := c.WaitLeader("kills", p); nl == old {
					t.Fatalf("kill %d: leadership did not move off %d", i, old)
				}
				c.Restart(old)
				for q := range partitions {
					c.WaitISR("kills", int32(q), 1, 2, 3)
				}
			}
			cancel()
			<-done
			if sp.ackedCount() == 0 {
				t.Fatal("nothing was acknowledged")
			}
			t.Logf("%d messages acknowledged; send errors: %v", sp.ackedCount(), sp.errors)
			checkAcked(t, c, sp, partitions)
			for q := range partitions {
				c.WaitISR("kills", int32(q), 1, 2, 3)
			}
		})
	}
}

// TestFollowerCutOff: a follower cut off from the leader leaves the ISR
// within replica_lag_max plus one check interval, acks=all goes on with two
// of three; a second cut makes acks=all fail with NOT_ENOUGH_REPLICAS; after
// healing, both rejoin the ISR and catch up.
func TestFollowerCutOff(t *testing.T) {
	for _, fanout := range fanouts {
		t.Run(string(fanout), func(t *testing.T) {
			c := brokertest.New(t, brokertest.Brokers(3), brokertest.WithConfig(replicationConfig))
			c.CreateTopic(t, broker.TopicConfig{Name: "cut", Partitions: 1, ReplicationFactor: 3, MinInsync: 2, Fanout: fanout})
			leader := c.LeaderOf("cut", 0)
			var followers []int32
			for _, id := range c.IDs() {
				if id != leader {
					followers = append(followers, id)
				}
			}
			sp := newSeqProducer(c, "cut", kafka.RequireAll)
			ctx := context.Background()
			if err := sp.send(ctx, 0, 10); err != nil {
				t.Fatal(err)
			}
			// Cut the last follower: in a chain that one fetches from the
			// middle one, so cut it from everyone.
			f1 := followers[1]
			cutAt := time.Now()
			c.Net.Isolate(brokertest.Name(f1))
			waitISRWithout(t, c, "cut", f1)
			limit := 1500*time.Millisecond + 750*time.Millisecond
			if took := time.Since(cutAt); took > limit+1500*time.Millisecond {
				t.Errorf("follower left the ISR after %v, want within %v (+ scheduling slack)", took, limit)
			}
			if err := sp.send(ctx, 0, 10); err != nil {
				t.Fatalf("acks=all with 2 of 3 in sync: %v", err)
			}
			f0 := followers[0]
			c.Net.Isolate(brokertest.Name(f0))
			waitISRWithout(t, c, "cut", f0)
			err := sp.send(ctx, 0, 10)
			if !errors.Is(err, kafka.NotEnoughReplicas) {
				t.Fatalf("acks=all with 1 of 3 in sync: err %v, want NOT_ENOUGH_REPLICAS", err)
			}
			c.Net.Rejoin(brokertest.Name(f0))
			c.Net.Rejoin(brokertest.Name(f1))
			c.WaitISR("cut", 0, 1, 2, 3)
			if err := sp.send(ctx, 0, 10); err != nil {
				t.Fatalf("after heal: %v", err)
			}
			testutil.Eventually(t, 10*time.Second, func() error { return sameLogEnd(c, "cut", 0) })
			checkAcked(t, c, sp, 1)
		})
	}
}

func waitISRWithout(t *testing.T, c *brokertest.Cluster, topic string, id int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		st, _ := c.Plane.State(topic, 0)
		if st.InISR(id) {
			return fmt.Errorf("isr %v still has %d", st.ISR, id)
		}
		return nil
	})
}

// sameLogEnd reports whether every replica has the same log end offset.
func sameLogEnd(c *brokertest.Cluster, topic string, p int32) error {
	var ends []int64
	for _, id := range c.IDs() {
		for _, s := range c.Broker(id).Status() {
			if s.Topic == topic && s.Partition == p {
				ends = append(ends, s.LogEnd)
			}
		}
	}
	if len(ends) != len(c.IDs()) || slices.Min(ends) != slices.Max(ends) {
		return fmt.Errorf("log ends %v", ends)
	}
	return nil
}

// TestDivergentTailTruncated: a leader cut off from its followers accepts
// acks=1 writes that never reach them; leadership moves on and new data is
// written; when the old leader returns as a follower it truncates the
// divergent tail and converges on the new leader's log. No consumer of the
// old leader ever saw the divergent writes (they stayed above its high
// watermark).
func TestDivergentTailTruncated(t *testing.T) {
	for _, fanout := range fanouts {
		t.Run(string(fanout), func(t *testing.T) {
			c := brokertest.New(t, brokertest.Brokers(3), brokertest.WithConfig(replicationConfig))
			c.CreateTopic(t, broker.TopicConfig{Name: "div", Partitions: 1, ReplicationFactor: 3, MinInsync: 1, Fanout: fanout})
			ctx := context.Background()
			all := newSeqProducer(c, "div", kafka.RequireAll)
			if err := all.send(ctx, 0, 20); err != nil {
				t.Fatal(err)
			}
			old := c.LeaderOf("div", 0)
			var others []int32
			for _, id := range c.IDs() {
				if id != old {
					others = append(others, id)
				}
			}
			for _, o := range others {
				c.Net.Cut(brokertest.Name(old), brokertest.Name(o))
			}
			one := newSeqProducer(c, "div", kafka.RequireOne)
			one.next = 1000
			if err := one.send(ctx, 0, 15); err != nil {
				t.Fatal(err)
			}
			// A consumer of the old leader sees only up to its high watermark.
			if got := readPartition(t, c, old, "div", 0); len(got) != 20 {
				t.Fatalf("consumer of the isolated leader read %d messages, want the 20 committed", len(got))
			}
			// The controller moves leadership to an in-sync follower.
			newLeader := others[0]
			if err := c.Plane.Update("div", 0, func(st *broker.PartitionState) {
				st.Leader, st.LeaderEpoch, st.ISR = newLeader, st.LeaderEpoch+1, others
			}); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				return all.send(ctx, 0, 5)
			})
			for _, o := range others {
				c.Net.Heal(brokertest.Name(old), brokertest.Name(o))
			}
			c.WaitISR("div", 0, 1, 2, 3)
			testutil.Eventually(t, 10*time.Second, func() error { return sameLogEnd(c, "div", 0) })
			// Give the old leader leadership back and read its log whole.
			if err := c.Plane.SetLeader("div", 0, old); err != nil {
				t.Fatal(err)
			}
			c.WaitLeader("div", 0)
			testutil.Eventually(t, 10*time.Second, func() error { return all.send(ctx, 0, 1) })
			log := readPartition(t, c, old, "div", 0)
			for off, v := range log {
				if n, _ := strconv.Atoi(v[4:]); n >= 1000 && n < 1015 {
					t.Fatalf("divergent write %s survived at offset %d", v, off)
				}
			}
			checkAcked(t, c, all, 1)
		})
	}
}
