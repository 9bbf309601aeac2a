package inprocess_test

import (
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestLinkLoss: 30 % packet loss on the link between a partition's leader
// and a follower delays replication (TCP retransmits after an RTO) but
// loses nothing acknowledged, and the loss shows in the publish tail.
func TestLinkLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("an in-process run: about 15 s")
	}
	res, _ := run(t, `
name: link-loss
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: p, partitions: 1, replication: 3, min_insync: 3}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 200, acks: all, duration: 8s, warmup: 1s, drain: 20s}
faults:
  - {at: 2s, loss: leader-of p/0 - follower-of p/0, percent: 30%, for: 4s}
`)
	tr := byTopology(t, res, "coordinator")
	if len(tr.Faults) != 2 || tr.Faults[0].Action != scenario.ActionLoss || tr.Faults[0].Err != "" || tr.Faults[1].Action != scenario.ActionHeal {
		t.Fatalf("faults %+v, want the loss and its heal applied", tr.Faults)
	}
	if c := tr.Check; c.Lost != 0 || c.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d: packet loss must not lose acknowledged data", c.Lost, c.Duplicated)
	}
	// With min in-sync 3 every ack waits for the lossy follower: some waited
	// a 200 ms retransmission timeout.
	if p := tr.Summary.PublishP999Ms; p < 200 {
		t.Errorf("publish p99.9 %.1f ms under 30%% loss, want at least one 200 ms retransmission", p)
	}
}
