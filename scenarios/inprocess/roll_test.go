package inprocess_test

import (
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestRollingRestart: `roll: brokers` under acks=all stops and restarts
// every broker in turn. Before each stop and after each restart the
// runner read the brokers' partition states and found every ISR full
// (the restart's note says after how long); the steps never overlap; and
// nothing acknowledged is lost.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("an in-process run: about 20 s")
	}
	res, _ := run(t, `
name: roll
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: r, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 14s, warmup: 1s, drain: 20s}
faults:
  - {at: 2s, roll: brokers}
`)
	tr := byTopology(t, res, "coordinator")
	if len(tr.Faults) != 6 {
		t.Fatalf("%d fault events, want a stop and a restart for each of 3 brokers: %+v", len(tr.Faults), tr.Faults)
	}
	for i, f := range tr.Faults {
		want := scenario.ActionStop
		if i%2 == 1 {
			want = scenario.ActionRestart
		}
		node := "broker " + string(rune('0'+i/2))
		switch {
		case f.Err != "":
			t.Errorf("step %d (%s %s): %s", i, f.Action, f.Target, f.Err)
		case f.Action != want || f.Node != node || !strings.HasPrefix(f.Target, node+" (roll "):
			t.Errorf("step %d: %s %s on %q, want %s of %s", i, f.Action, f.Target, f.Node, want, node)
		case want == scenario.ActionRestart && !strings.HasPrefix(f.Note, "ISR full"):
			t.Errorf("step %d: restart note %q, want the wait for a full ISR", i, f.Note)
		case i > 0 && f.AtS < tr.Faults[i-1].AtS:
			t.Errorf("step %d at %.2f s before step %d at %.2f s", i, f.AtS, i-1, tr.Faults[i-1].AtS)
		}
		t.Logf("%.2f s %s %s: unavailable %.2f s %s", f.AtS, f.Action, f.Target, f.UnavailableS, f.Note)
	}
	if c := tr.Check; c.Lost != 0 || c.Unreadable != 0 {
		t.Errorf("acknowledged-but-lost %d, unreadable %d after a rolling restart with acks=all", c.Lost, c.Unreadable)
	}
}
