package inprocess_test

import (
	"strings"
	"testing"
)

// TestOverlappingFaultsChargedOnce is issue 21 run for real: one member of
// a 3-member etcd is killed, then a partition leader while the member is
// down. etcd keeps its quorum, so its member loss must be charged with no
// write gap; the leader's outage is charged once, to the leader kill, and
// only to partitions the killed broker led or replicated.
func TestOverlappingFaultsChargedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: a 12 s in-process run")
	}
	res, _ := run(t, `
name: overlap
topologies: [coordinator]
cluster: {brokers: 4, etcd: 3, timings: fast}
topic: {name: c, partitions: 8, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 400, acks: all, duration: 12s, warmup: 1s, drain: 10s}
faults:
  - {at: 3s, kill: etcd 0}
  - {at: 5s, kill: leader-of c/3}
  - {at: 10s, restart: killed}
`)
	tr := byTopology(t, res, "coordinator")
	if !strings.HasPrefix(tr.ProducerRetries, "ordered:") {
		t.Errorf("producer retries %q: the Kafka-style producer keeps a partition's order", tr.ProducerRetries)
	}
	if len(tr.Faults) != 3 {
		t.Fatalf("faults %+v", tr.Faults)
	}
	etcd, leader := tr.Faults[0], tr.Faults[1]
	for _, f := range tr.Faults {
		t.Logf("%s %s (%s): %.2f s from %.2f s, partitions %+v, overlaps %v", f.Action, f.Target, f.Node, f.UnavailableS, f.GapStartS, f.Partitions, f.Overlaps)
	}
	if etcd.Err != "" || leader.Err != "" {
		t.Fatalf("faults not applied: %+v", tr.Faults)
	}
	if etcd.UnavailableS != 0 || len(etcd.Partitions) != 0 {
		t.Errorf("the etcd member loss was charged with %.2f s on %d partitions", etcd.UnavailableS, len(etcd.Partitions))
	}
	if leader.UnavailableS <= 0 || len(leader.Partitions) == 0 {
		t.Errorf("the leader kill caused no gap: %+v", leader)
	}
	if got := tr.Summary.MaxUnavailabilityS; got != leader.UnavailableS {
		t.Errorf("max unavailability %.2f s, want the leader's %.2f s", got, leader.UnavailableS)
	}
	// The killed broker's partitions (from the placement the runner took)
	// are the only ones its kill may be charged with.
	hit := map[int32]bool{}
	for _, g := range leader.Partitions {
		hit[g.Partition] = true
	}
	if !hit[3] {
		t.Errorf("partition 3, whose leader was killed, not charged: %+v", leader.Partitions)
	}
	if len(hit) > 6 { // 8 partitions × 3 replicas over 4 brokers: 6 per broker
		t.Errorf("leader kill charged with %d partitions, more than a broker holds", len(hit))
	}
}
