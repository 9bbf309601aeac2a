package brokertest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// StopWithHandoff stops broker id gracefully in two observed halves and
// fails the test unless the hand-off came first: Broker.Handoff must
// return while the broker still accepts connections, and by then every
// other running broker's view must have every partition of topic that id
// led (with another in-sync replica) led by a member of its old ISR in a
// newer leader epoch. Then it stops the broker (Close) as Stop does. It
// returns how many partitions moved.
func (c *Cluster) StopWithHandoff(t testing.TB, id int32, topic string) int {
	t.Helper()
	b := c.runningNode(id).b
	before, ok := b.View().Topic(topic)
	if !ok {
		t.Fatalf("brokertest: broker %d does not see %s", id, topic)
	}
	var led []broker.PartitionState
	for _, ps := range before.Partitions {
		if ps.Leader == id && len(ps.ISR) > 1 {
			led = append(led, ps)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	start := time.Now()
	if err := b.Handoff(ctx); err != nil {
		t.Fatalf("brokertest: handoff of broker %d: %v", id, err)
	}
	took := time.Since(start)
	// The listener is still open: the hand-off did not need the broker gone.
	conn, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("brokertest: broker %d stopped listening during its hand-off: %v", id, err)
	}
	_ = conn.Close()
	// The others follow: gossip and watches are asynchronous, so wait for
	// them, but the stopping broker itself is still up while they do.
	testutil.Eventually(t, Timeout, func() error {
		for _, other := range c.IDs() {
			ob := c.Broker(other)
			if other == id || ob == nil {
				continue
			}
			tv, _ := ob.View().Topic(topic)
			for _, old := range led {
				if int(old.Partition) >= len(tv.Partitions) {
					return fmt.Errorf("broker %d: no partition %d", other, old.Partition)
				}
				ps := tv.Partitions[old.Partition]
				if ps.Leader == id || !old.InISR(ps.Leader) || ps.LeaderEpoch <= old.LeaderEpoch {
					return fmt.Errorf("broker %d: %s/%d leader %d epoch %d (was %d epoch %d)",
						other, topic, old.Partition, ps.Leader, ps.LeaderEpoch, old.Leader, old.LeaderEpoch)
				}
			}
		}
		return nil
	})
	if conn, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second); err != nil {
		t.Fatalf("brokertest: broker %d stopped listening before the others saw the hand-off: %v", id, err)
	} else {
		_ = conn.Close()
	}
	t.Logf("broker %d handed %d partitions off in %v, still listening", id, len(led), took.Round(time.Millisecond))
	c.Stop(id)
	return len(led)
}
