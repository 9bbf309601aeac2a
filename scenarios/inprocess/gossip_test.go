package inprocess_test

import "testing"

// TestGossipLeaderKill: under the gossip topology with acks=all and min
// in-sync 2, killing the leader of a partition loses nothing acknowledged,
// the other brokers' gossip views drop it (a detection time), and writes
// resume.
func TestGossipLeaderKill(t *testing.T) {
	res, _ := run(t, `
name: gossip-failover
topologies: [gossip]
cluster: {brokers: 3, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 400, acks: all, duration: 9s, warmup: 1s, drain: 10s}
faults:
  - {at: 2s, kill: leader-of bench/0}
  - {at: 6s, restart: killed}
`)
	tr := byTopology(t, res, "gossip")
	s := tr.Summary
	if s.Acked < 1000 {
		t.Errorf("only %d acked", s.Acked)
	}
	if s.Lost != 0 {
		t.Errorf("%d acknowledged messages lost: %+v", s.Lost, tr.Check)
	}
	if len(tr.Faults) != 2 || tr.Faults[0].Node == "" || tr.Faults[0].Err != "" {
		t.Fatalf("faults %+v", tr.Faults)
	}
	if !tr.Faults[0].Recovered {
		t.Errorf("the leader kill never recovered: %+v", tr.Faults[0])
	}
	if tr.Faults[0].DetectionS == nil {
		t.Errorf("no detection time for the leader kill")
	}
}

// TestGossipIsolateCutsGossip: isolating a broker in the fault network
// also cuts its memberlist traffic, so the other brokers' gossip views drop
// it (a detection time) and, with acks=all, nothing acknowledged is lost.
func TestGossipIsolateCutsGossip(t *testing.T) {
	res, _ := run(t, `
name: gossip-isolate
topologies: [gossip-ring]
cluster: {brokers: 3, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 400, acks: all, duration: 9s, warmup: 1s, drain: 10s}
faults:
  - {at: 2s, isolate: leader-of bench/0}
  - {at: 6s, heal: all}
`)
	tr := byTopology(t, res, "gossip-ring")
	if s := tr.Summary; s.Lost != 0 {
		t.Errorf("%d acknowledged messages lost: %+v", s.Lost, tr.Check)
	}
	if len(tr.Faults) == 0 || tr.Faults[0].Err != "" {
		t.Fatalf("faults %+v", tr.Faults)
	}
	if tr.Faults[0].DetectionS == nil {
		t.Errorf("isolated broker never dropped from the others' gossip views")
	}
}

// TestSplitBrainAcksAll: the leader of bench/0 cut off from its peers while
// its clients still reach it (isolate with clients: keep), under the
// coordinator and gossip with acks=all and min in-sync 2: the rest of the
// cluster detects it, and nothing it or the new leader acknowledged is
// lost, although the clients keep writing to it.
func TestSplitBrainAcksAll(t *testing.T) {
	res, _ := run(t, `
name: split-brain-all
topologies: [coordinator, gossip]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 400, acks: all, duration: 8s, warmup: 1s, drain: 10s}
faults:
  - {at: 2s, isolate: leader-of bench/0, clients: keep, for: 4s}
`)
	for _, top := range []string{"coordinator", "gossip"} {
		tr := byTopology(t, res, top)
		if s := tr.Summary; s.Lost != 0 || s.Acked == 0 {
			t.Errorf("%s: acked %d, lost %d: acks=all must lose nothing in a split brain", top, s.Acked, s.Lost)
		}
		if len(tr.Faults) != 2 || tr.Faults[0].Err != "" || tr.Faults[0].Node == "" {
			t.Fatalf("%s: faults %+v", top, tr.Faults)
		}
		if tr.Faults[0].DetectionS == nil {
			t.Errorf("%s: the cut-off leader was never dropped by the others", top)
		}
	}
}
