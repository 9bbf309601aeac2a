package gossip

import (
	"flag"
	"io"
	"testing"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/topology"
)

// TestBrokerCommandRanksByOffset: `brokerlab broker --control-plane
// gossip` (the Docker and swarm runtimes' brokers) gives the plane the
// broker's replication offsets, so replicas of a failed master rank by
// offset there as in-process brokers do, not by node id.
func TestBrokerCommandRanksByOffset(t *testing.T) {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	build := brokerFlags(PlacementSlots)(fs)
	if err := fs.Parse([]string{"--gossip-profile", "fast"}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	cp, _, err := build(topology.BrokerEnv{NodeID: 1, DataDir: t.TempDir(), Replicas: func() []broker.ReplicaStatus {
		calls++
		return []broker.ReplicaStatus{{Topic: "t", Partition: 2, LogEnd: 42}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	p := cp.(*Plane)
	if p.cfg.Offsets == nil {
		t.Fatal("the broker command's plane has no offsets: failover ranks by node id")
	}
	if got := p.cfg.Offsets()[PartitionKey("t", 2)]; got != 42 || calls != 1 {
		t.Fatalf("offset %d after %d calls, want 42 read from the broker", got, calls)
	}
}
