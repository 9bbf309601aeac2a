package inprocess_test

import (
	"testing"
)

// Leader or master kill and restart under the production profile: Kafka's
// 18 s session and RocketMQ's 30 s heartbeat and route poll and 120 s
// expiry, as the timing table gives them (only the run is kept short).
// Every acknowledged message must be read back exactly once, by the live
// consumer and by the verification read, with no partition left
// unreadable. Producer retries are off: a retry of a send that timed out
// writes it twice by design (neither client here is idempotent), which
// says nothing about the failover.
func TestProductionFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("production timings: about 50 s")
	}
	for _, tc := range []struct {
		topology string
		faults   string // kill and restart times
		duration string
	}{
		// The new leader is elected when the dead broker's 18 s lease
		// expires; the broker comes back as a follower.
		{"coordinator", "{at: 2s, kill: leader-of p/0}\n  - {at: 24s, restart: killed}", "28s"},
		// The name servers drop the master when its connection closes;
		// its slaves serve reads meanwhile. It stays down past a 30 s
		// route poll of its slaves, so they have seen it go; they must
		// follow it again within a master probe (5 s) of its return, not
		// at their next poll 30 s later, or writes never resume.
		{"nameserver", "{at: 2s, kill: leader-of p/0}\n  - {at: 34s, restart: killed}", "44s"},
	} {
		t.Run(tc.topology, func(t *testing.T) {
			t.Parallel()
			res, _ := run(t, `
name: production-failover
topologies: [`+tc.topology+`]
cluster: {brokers: 3, nameservers: 2, etcd: 1, timings: production}
topic: {name: p, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 200, acks: all, retries: 0, duration: `+tc.duration+`, warmup: 1s, drain: 30s}
faults:
  - `+tc.faults+`
`)
			tr := byTopology(t, res, tc.topology)
			s, c := tr.Summary, tr.Check
			if s.Acked < 1000 {
				t.Errorf("only %d acked", s.Acked)
			}
			if c.Lost != 0 || c.Unreadable != 0 || len(c.UnreadablePartitions) != 0 {
				t.Errorf("lost %d, unreadable %d %+v: want every acknowledged message read back", c.Lost, c.Unreadable, c.UnreadablePartitions)
			}
			if c.Duplicated != 0 || c.Reordered != 0 {
				t.Errorf("duplicated %d, reordered %d: want each acknowledged message once, in order", c.Duplicated, c.Reordered)
			}
			if s.Consumed < s.Acked {
				t.Errorf("live consumer received %d distinct messages of %d acked", s.Consumed, s.Acked)
			}
			for _, f := range tr.Faults {
				if f.Err != "" || !f.Recovered {
					t.Errorf("fault %s %s: err %q, recovered %v", f.Action, f.Target, f.Err, f.Recovered)
				}
			}
			if s.DetectionS == nil {
				t.Error("no detection time for the kill")
			}
		})
	}
}
