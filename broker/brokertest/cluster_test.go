package brokertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/memplane"
	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/segmentio/kafka-go"
)

// writer produces to the cluster with acks=all through the fault network.
func writer(t *testing.T, c *Cluster, topic string) *kafka.Writer {
	w := &kafka.Writer{
		Addr:            kafka.TCP(c.Addrs()...),
		Topic:           topic,
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    5 * time.Millisecond,
		WriteBackoffMin: 20 * time.Millisecond,
		WriteBackoffMax: 200 * time.Millisecond,
		Transport:       &kafka.Transport{Dial: c.Net.Dialer("client"), MetadataTTL: time.Second},
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// produce writes values, retrying the whole call until it succeeds (a retry
// after a lost ack may duplicate, which readAll tolerates).
func produce(t *testing.T, w *kafka.Writer, values ...string) {
	t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: []byte(v)}
	}
	testutil.Eventually(t, Timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return w.WriteMessages(ctx, msgs...)
	})
}

// readAll reads partition 0 from the start until it has every value in want,
// and checks they first appear in that order.
func readAll(t *testing.T, c *Cluster, topic string, want []string) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.Addrs(),
		Topic:     topic,
		Partition: 0,
		MaxWait:   100 * time.Millisecond,
		Dialer:    &kafka.Dialer{DialFunc: c.Net.Dialer("client"), Timeout: 5 * time.Second},
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var got []string
	for len(got) < len(want) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d messages: %v", len(got), len(want), err)
		}
		if v := string(m.Value); !slices.Contains(got, v) {
			got = append(got, v)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func TestKillFailoverRestart(t *testing.T) {
	c := New(t)
	if got := c.IDs(); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("ids %v", got)
	}
	c.CreateTopic(t, broker.TopicConfig{Name: "smoke", Partitions: 1, ReplicationFactor: 3, MinInsync: 2})
	w := writer(t, c, "smoke")
	first := values("a", 50)
	produce(t, w, first...)

	old := c.LeaderOf("smoke", 0)
	c.Kill(old)
	if c.Running(old) || c.Broker(old) != nil || len(c.Addrs()) != 2 {
		t.Fatalf("broker %d still listed after Kill", old)
	}
	if got := c.LeaderOf("smoke", 0); got != old {
		t.Fatalf("leader moved to %d without Failover", got)
	}
	c.Plane.Failover(old)
	leader := c.WaitLeader("smoke", 0)
	if leader == old {
		t.Fatalf("leader still %d after failover", leader)
	}
	second := values("b", 50)
	produce(t, w, second...)

	c.Restart(old)
	c.WaitISR("smoke", 0, 1, 2, 3)
	readAll(t, c, "smoke", append(first, second...))

	// The restarted broker holds the same log as the leader.
	testutil.Eventually(t, Timeout, func() error {
		end := func(id int32) int64 {
			for _, rs := range c.Broker(id).Status() {
				if rs.Topic == "smoke" {
					return rs.LogEnd
				}
			}
			return -1
		}
		if a, b := end(leader), end(old); a != b || a < 100 {
			return fmt.Errorf("leader log end %d, restarted follower %d", a, b)
		}
		return nil
	})
}

func TestCutFollowerLeavesAndRejoinsISR(t *testing.T) {
	c := New(t, WithConfig(func(cfg *broker.Config) {
		cfg.ReplicaLagMax = time.Second
		cfg.ReplicaFetchWait = 100 * time.Millisecond
	}))
	c.CreateTopic(t, broker.TopicConfig{Name: "cut", Partitions: 1, ReplicationFactor: 3, MinInsync: 2})
	leader := c.LeaderOf("cut", 0)
	st, _ := c.Plane.State("cut", 0)
	follower := st.Replicas[slices.IndexFunc(st.Replicas, func(id int32) bool { return id != leader })]

	c.Net.Cut(Name(leader), Name(follower))
	w := writer(t, c, "cut")
	produce(t, w, values("x", 10)...) // acks=all holds until the follower is dropped
	testutil.Eventually(t, Timeout, func() error {
		if st, _ := c.Plane.State("cut", 0); st.InISR(follower) {
			return fmt.Errorf("cut follower %d still in ISR %v", follower, st.ISR)
		}
		return nil
	})

	c.Net.Heal(Name(leader), Name(follower))
	c.WaitISR("cut", 0, follower)
	if c.Net.Bytes(Name(follower), Name(leader)) == 0 || c.Net.Bytes(Name(leader), Name(follower)) == 0 {
		t.Fatal("no replication bytes counted between follower and leader")
	}
}

func TestStopAndRestartKeepsDataAndPort(t *testing.T) {
	c := New(t, Brokers(1))
	if got := c.Plane.View().ControllerID; got != 1 {
		t.Fatalf("controller %d, want 1", got)
	}
	addr := c.Addrs()[0]
	c.CreateTopic(t, broker.TopicConfig{Name: "keep", Partitions: 2, ReplicationFactor: 1})
	w := writer(t, c, "keep")
	w.Balancer = &kafka.Hash{}
	produce(t, w, "one")
	c.Stop(1)
	c.Restart(1)
	if got := c.Addrs()[0]; got != addr {
		t.Logf("restarted on %s, not the previous %s (port taken meanwhile)", got, addr)
	}
	if c.Net.Name(c.Addrs()[0]) != Name(1) {
		t.Fatalf("restarted broker's address is not named %s in Net", Name(1))
	}
	for p := range int32(2) {
		c.WaitLeader("keep", p)
	}
	var total int64
	for _, rs := range c.Broker(1).Status() {
		total += rs.LogEnd
	}
	if total != 1 {
		t.Fatalf("after restart the logs hold %d records, want 1", total)
	}
}

func TestWithControlPlaneFactory(t *testing.T) {
	var handed []int32
	shared := memplane.New(memplane.Options{})
	t.Cleanup(func() { shared.Close() })
	c := New(t, Brokers(2), WithControlPlane(func(id int32) broker.ControlPlane {
		handed = append(handed, id)
		return shared.Handle()
	}))
	if c.Plane != nil {
		t.Fatal("Plane set with a control-plane factory")
	}
	c.CreateTopic(t, broker.TopicConfig{Name: "f", Partitions: 2, ReplicationFactor: 2})
	if got := c.LeaderOf("f", 1); got < 1 {
		t.Fatalf("LeaderOf from broker views = %d", got)
	}
	c.Kill(2)
	c.Restart(2)
	if !slices.Equal(handed, []int32{1, 2, 2}) {
		t.Fatalf("factory called for %v, want [1 2 2]", handed)
	}
	if c.LeaderOf("missing", 0) != -1 {
		t.Fatal("LeaderOf an unknown topic is not -1")
	}
}

// TestPowerLoss: acknowledged writes survive a power loss only where an
// fsync covered them. With fsync never a restarted single replica has lost
// every acknowledged message of its incarnation; with fsync always none.
func TestPowerLoss(t *testing.T) {
	for _, c := range []struct {
		policy   storage.FsyncPolicy
		survives bool
	}{{storage.FsyncNever, false}, {storage.FsyncAlways, true}} {
		t.Run(string(c.policy), func(t *testing.T) {
			cl := New(t, Brokers(1), WithConfig(func(cfg *broker.Config) { cfg.Storage.Fsync = c.policy }))
			cl.CreateTopic(t, broker.TopicConfig{Name: "p", Partitions: 1, ReplicationFactor: 1})
			want := values("m", 20)
			produce(t, writer(t, cl, "p"), want...)
			cl.PowerLoss(1)
			cl.Restart(1)
			var end int64
			testutil.Eventually(t, Timeout, func() error {
				conn, err := (&kafka.Dialer{DialFunc: cl.Net.Dialer("client"), Timeout: 5 * time.Second}).
					DialLeader(context.Background(), "tcp", cl.Addrs()[0], "p", 0)
				if err != nil {
					return err
				}
				defer conn.Close()
				end, err = conn.ReadLastOffset()
				return err
			})
			switch {
			case c.survives && end != int64(len(want)):
				t.Fatalf("fsync %s: log end %d after power loss, want %d: acknowledged writes lost", c.policy, end, len(want))
			case !c.survives && end != 0:
				t.Fatalf("fsync %s: log end %d after power loss, want 0: unsynced writes survived", c.policy, end)
			}
			if c.survives {
				readAll(t, cl, "p", want)
			}
		})
	}
}
