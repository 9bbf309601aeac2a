package inprocess_test

import (
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
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

// TestWholeClusterRestartTakesWrites: every broker loses power at once
// (fsync always, so nothing acknowledged may be lost) and all restart
// together. The topologies whose cluster state lives in the brokers must
// come back with it and take writes again: classic nameserver, whose
// restarted master registered before its slaves and never tracked them
// as followers (the ISR stayed [master], every acks=all write failed until
// the end of the run), and gossip and gossip-ring, which kept slot and
// ring ownership and topics in memory only (after the restart nobody knew
// the topic: "no route", every acknowledged message unreadable).
func TestWholeClusterRestartTakesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("three in-process runs: about 45 s")
	}
	res, _ := run(t, `
name: whole-restart
topologies: [nameserver, gossip, gossip-ring]
cluster: {brokers: 3, nameservers: 2, timings: fast, fsync: always}
topic: {name: p, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 12s, warmup: 1s, drain: 20s}
faults:
  - {at: 4s, power-loss: all}
  - {at: 6s, restart: killed}
`)
	for _, top := range []string{"nameserver", "gossip", "gossip-ring"} {
		tr := byTopology(t, res, top)
		var pl *analysis.FaultResult
		for i, f := range tr.Faults {
			if f.Err != "" {
				t.Errorf("%s: fault %s %s: %s", top, f.Action, f.Target, f.Err)
			}
			if f.Action == "power-loss" {
				pl = &tr.Faults[i]
			}
		}
		switch {
		case pl == nil:
			t.Errorf("%s: no power-loss row in the fault table", top)
		case !pl.Recovered:
			t.Errorf("%s: writes never resumed after the whole-cluster restart (unavailable %.1f s)", top, pl.UnavailableS)
		}
		if c := tr.Check; c.Lost != 0 || c.Unreadable != 0 {
			t.Errorf("%s: fsync always: %d acknowledged-but-lost, %d unreadable; want 0 and 0", top, c.Lost, c.Unreadable)
		}
	}
}
