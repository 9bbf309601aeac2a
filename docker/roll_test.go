package docker

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestRollingRestartDocker: `roll: brokers` in containers under acks=all.
// Each broker gets SIGTERM (its leaderships handed off first) and is
// started again; the runner reads every partition's ISR from Kafka
// Metadata and starts the next step only once it is full, so the steps
// run one after the other, each restart's note says how long the ISR
// took to fill, and nothing acknowledged is lost.
func TestRollingRestartDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("docker: about 50 s; skipped with -short")
	}
	tr := runDocker(t, `
name: docker-roll
topologies: [coordinator]
runtime: docker
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: r, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 16s, warmup: 1s, drain: 20s}
faults:
  - {at: 2s, roll: brokers}
`)
	if len(tr.Faults) != 6 {
		t.Fatalf("%d fault events, want a stop and a restart for each of 3 brokers: %+v", len(tr.Faults), tr.Faults)
	}
	ready := 0.0 // when the previous step's ISR was full again
	for i, f := range tr.Faults {
		want, node := scenario.ActionStop, fmt.Sprintf("broker %d", i/2)
		if i%2 == 1 {
			want = scenario.ActionRestart
		}
		switch {
		case f.Action != want || f.Node != node || !strings.HasPrefix(f.Target, node+" (roll "):
			t.Errorf("step %d: %s %s on %q, want %s of %s", i, f.Action, f.Target, f.Node, want, node)
		case want == scenario.ActionStop && f.AtS < ready:
			t.Errorf("step %d: %s stopped at %.2f s, before the ISR was full again at %.2f s", i, node, f.AtS, ready)
		case want == scenario.ActionRestart:
			took, ok := isrWait(f.Note)
			if !ok {
				t.Errorf("step %d: restart note %q, want the wait for a full ISR", i, f.Note)
			}
			ready = f.AtS + took
		}
	}
	if c := tr.Check; c.Lost != 0 || c.Unreadable != 0 {
		t.Errorf("acknowledged-but-lost %d, unreadable %d after a rolling restart with acks=all", c.Lost, c.Unreadable)
	}
	if tr.Summary.Acked < 1000 {
		t.Errorf("only %d acknowledged", tr.Summary.Acked)
	}
}

// isrWait reads the seconds out of a roll restart's note ("ISR full 0.42 s
// after the restart").
func isrWait(note string) (float64, bool) {
	rest, ok := strings.CutPrefix(note, "ISR full ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, " s after")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
