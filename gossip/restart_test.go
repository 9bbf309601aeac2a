package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// TestWholeClusterRestartKeepsState stops every node at once (a
// whole-cluster power failure: no hand-off, no leave) and starts them
// again. Each node reads its cluster state back from its state file, so
// the topic, its partitions and their owners are known again without
// anyone left to tell them: writes resume under acks=all and every
// record acknowledged before the failure is still served. Without the
// file the restarted cluster knew no topic ("no route") for good.
func TestWholeClusterRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-cluster restart")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			dir := t.TempDir()
			c := newClusterWith(t, 3, placement, func(id int32, cfg *gossip.Config) {
				cfg.StateFile = filepath.Join(dir, fmt.Sprintf("node-%d", id))
			})
			c.waitMasters(3)
			createTopic(t, c, "whole")
			c.WaitLeader("whole", 0)
			p := newProducer(t, c.Addrs(), "whole", 0, true)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.run(ctx, 5*time.Millisecond) }()
			waitAcked(t, p, 100)
			stop()
			<-done

			for _, id := range c.IDs() {
				c.Kill(id)
			}
			for _, id := range c.IDs() {
				c.Restart(id)
			}
			testutil.Eventually(t, 30*time.Second, func() error {
				for _, id := range c.IDs() {
					v := c.Broker(id).View()
					tv, ok := v.Topic("whole")
					if !ok {
						return fmt.Errorf("broker %d does not know the topic", id)
					}
					for _, ps := range tv.Partitions {
						if ps.Leader < 0 {
							return fmt.Errorf("broker %d: partition %d has no leader", id, ps.Partition)
						}
					}
				}
				return nil
			})
			p2 := newProducer(t, c.Addrs(), "whole", 0, true)
			ctx, stop = context.WithCancel(context.Background())
			done = make(chan struct{})
			go func() { defer close(done); p2.run(ctx, 5*time.Millisecond) }()
			waitAcked(t, p2, 50)
			stop()
			<-done
			got := consumeAll(t, c.Addrs()[0], "whole", 0)
			if n := lost(p.acked, got); n != 0 {
				t.Fatalf("%d of %d records acknowledged before the restart lost", n, len(p.acked))
			}
		})
	}
}

// A damaged state file stops the node with a clear error instead of a
// start from nothing (a node that forgot its votes could vote twice).
func TestDamagedStateFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), gossip.StateFileName)
	if err := os.WriteFile(path, []byte("BLGSTAT1 not a state"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(gossip.PlacementSlots)
	cfg.Bind = freeAddr(t)
	cfg.StateFile = path
	p, err := gossip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.Register(ctx, broker.BrokerInfo{ID: 1, Addr: "127.0.0.1:1"}, func(broker.ClusterView) {})
	if !errors.Is(err, gossip.ErrBadState) {
		t.Fatalf("register with a damaged state file: %v, want ErrBadState", err)
	}
	t.Log(err)
}

// TestRestartedLeaderTakesNewEpoch: the whole cluster stops while a
// producer writes with acks=all, and the leader of partition 0 comes back
// with a shorter log than its followers (its last fsync covered less, as
// after a power loss: here its last 20 records are cut while it is down).
// A restarted node leads again only in a new leader epoch, so the
// followers truncate to where the leader's log ends and every replica
// converges on the leader's log while writes go on. Before, the leader
// led on in its old epoch, the followers found no epoch boundary to cut
// at, stopped at a batch that no longer lined up with the leader's and
// fell out of the ISR: the partition took no acks=all write again.
func TestRestartedLeaderTakesNewEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("whole-cluster restart")
	}
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		t.Run(placement, func(t *testing.T) {
			dir := t.TempDir()
			c := newClusterWith(t, 3, placement, func(id int32, cfg *gossip.Config) {
				cfg.StateFile = filepath.Join(dir, fmt.Sprintf("state-%d", id))
			}, brokertest.WithConfig(func(cfg *broker.Config) {
				cfg.DataDir = filepath.Join(dir, fmt.Sprintf("broker-%d", cfg.NodeID))
			}))
			c.waitMasters(3)
			createTopic(t, c, "epoch")
			leader := c.WaitLeader("epoch", 0)
			_, before := leaderIn(c.Broker(leader).View(), "epoch", 0)
			p := newProducer(t, c.Addrs(), "epoch", 0, true)
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); p.run(ctx, 5*time.Millisecond) }()
			defer func() { stop(); <-done }()
			waitAcked(t, p, 200)

			for _, id := range c.IDs() {
				c.Kill(id)
			}
			log, err := storage.OpenFile(storage.Config{Dir: filepath.Join(dir, fmt.Sprintf("broker-%d", leader), "epoch-0")})
			if err != nil {
				t.Fatal(err)
			}
			end := log.EndOffset()
			if err := log.Truncate(end - 20); err != nil {
				t.Fatal(err)
			}
			if err := log.Close(); err != nil {
				t.Fatal(err)
			}
			for _, id := range c.IDs() {
				c.Restart(id)
			}
			testutil.Eventually(t, 30*time.Second, func() error {
				for _, id := range c.IDs() {
					l, e := leaderIn(c.Broker(id).View(), "epoch", 0)
					if l < 0 || e <= before {
						return fmt.Errorf("broker %d: epoch/0 led by %d in epoch %d, want a leader in an epoch after %d", id, l, e, before)
					}
				}
				return nil
			})
			waitAcked(t, p, ackedCount(p)+100)
			// Every replica holds the leader's log: same end, all in sync.
			testutil.Eventually(t, 30*time.Second, func() error {
				var ends []int64
				for _, id := range c.IDs() {
					for _, rs := range c.Broker(id).Status() {
						if rs.Topic == "epoch" && rs.Partition == 0 {
							ends = append(ends, rs.LogEnd)
						}
					}
				}
				if len(ends) != 3 || ends[0] != ends[1] || ends[1] != ends[2] {
					return fmt.Errorf("epoch/0 log ends %v, want three equal", ends)
				}
				return nil
			})
			t.Logf("leader %d was cut from %d to %d records; led again in a new epoch, replicas converged", leader, end, end-20)
		})
	}
}
