package inprocess_test

import (
	"testing"
)

// TestPowerLossAllBrokers: a whole-cluster power failure under acks=all.
// With fsync never every acknowledged write of the run was in page cache
// only, so the checker must report acknowledged-but-lost; with fsync always
// every acknowledged write was on disk before its ack, so nothing is lost.
func TestPowerLossAllBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("two in-process runs: about 30 s")
	}
	for _, tc := range []struct {
		fsync string
		lost  bool
	}{{"never", true}, {"always", false}} {
		t.Run(tc.fsync, func(t *testing.T) {
			res, _ := run(t, `
name: power-loss
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: fast, fsync: `+tc.fsync+`}
topic: {name: p, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 9s, warmup: 1s, drain: 20s}
faults:
  - {at: 4s, power-loss: all}
  - {at: 6s, restart: killed}
`)
			tr := byTopology(t, res, "coordinator")
			c := tr.Check
			if tr.Summary.Acked < 500 {
				t.Fatalf("only %d acked", tr.Summary.Acked)
			}
			for _, f := range tr.Faults {
				if f.Err != "" {
					t.Fatalf("fault %s %s: %s", f.Action, f.Target, f.Err)
				}
			}
			switch {
			case tc.lost && c.Lost == 0:
				t.Errorf("fsync never, power loss of every broker: 0 acknowledged-but-lost reported (acked %d)", tr.Summary.Acked)
			case !tc.lost && c.Lost != 0:
				t.Errorf("fsync always: %d acknowledged-but-lost, want 0", c.Lost)
			}
			t.Logf("fsync %s: acked %d, lost %d, unreadable %d", tc.fsync, tr.Summary.Acked, c.Lost, c.Unreadable)
		})
	}
}
