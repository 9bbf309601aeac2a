package docker

import (
	"context"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// runDocker runs a scenario through the runner under docker.
func runDocker(t *testing.T, yaml string) analysis.TopologyResult {
	t.Helper()
	pool := needEngine(t)
	testImage(t, pool)
	spec, err := scenario.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := scenarios.RunScenario(ctx, spec, scenarios.RunOptions{Out: t.TempDir(), Runtime: scenario.RuntimeDocker, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Topologies) != 1 || res.Topologies[0].Error != "" {
		t.Fatalf("run: %+v", res.Topologies)
	}
	tr := res.Topologies[0]
	for _, f := range tr.Faults {
		t.Logf("%.2f s %s %s -> %s: unavailable %.2f s %s %s", f.AtS, f.Action, f.Target, f.Node, f.UnavailableS, f.Note, f.Err)
		if f.Err != "" {
			t.Errorf("fault %s %s: %s", f.Action, f.Target, f.Err)
		}
	}
	t.Logf("acked %d, failed %d, lost %d, unreadable %d", tr.Summary.Acked, tr.Summary.Failed, tr.Check.Lost, tr.Check.Unreadable)
	return tr
}

// TestPowerLossNeverSync: under docker with fsync never, a power loss of
// every broker (SIGKILL, files cut to what the brokers had synced) loses
// acknowledged writes, and the checker says so.
func TestPowerLossNeverSync(t *testing.T) {
	if testing.Short() {
		t.Skip("docker: about 40 s; skipped with -short")
	}
	tr := runDocker(t, `
name: docker-power-loss-never
topologies: [coordinator]
runtime: docker
cluster: {brokers: 3, etcd: 1, timings: fast, fsync: never}
topic: {name: p, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 8s, warmup: 1s, drain: 20s}
faults:
  - {at: 4s, power-loss: all}
  - {at: 5s, restart: killed}
`)
	if tr.Summary.Acked < 300 {
		t.Fatalf("only %d acked", tr.Summary.Acked)
	}
	if tr.Check.Lost == 0 {
		t.Errorf("fsync never, power loss of every broker: 0 acknowledged-but-lost reported")
	}
}

// TestStopThenPowerLossAlwaysSync: under docker with fsync always, a
// graceful stop (SIGTERM: the controller moves the leaderships before the
// broker leaves) costs less write unavailability than a kill's lease
// expiry, and a power loss of every broker
// loses nothing acknowledged.
func TestStopThenPowerLossAlwaysSync(t *testing.T) {
	if testing.Short() {
		t.Skip("docker: about 45 s; skipped with -short")
	}
	tr := runDocker(t, `
name: docker-stop-power-loss-always
topologies: [coordinator]
runtime: docker
cluster: {brokers: 3, etcd: 1, timings: fast, fsync: always}
topic: {name: p, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 300, acks: all, duration: 10s, warmup: 1s, drain: 20s}
faults:
  - {at: 2s, stop: leader-of p/0}
  - {at: 4s, restart: killed}
  - {at: 6s, power-loss: all}
  - {at: 7s, restart: killed}
`)
	if len(tr.Faults) != 4 || tr.Faults[0].Action != scenario.ActionStop {
		t.Fatalf("faults %+v", tr.Faults)
	}
	if c := tr.Check; c.Lost != 0 || c.Unreadable != 0 {
		t.Errorf("fsync always: %d acknowledged-but-lost, %d unreadable, want 0", c.Lost, c.Unreadable)
	}
	// A kill is noticed when the broker's lease expires; a graceful stop
	// moves the leaderships first, so the producers' retries after
	// NOT_LEADER_FOR_PARTITION find the new leader well before that.
	fast, _ := scenario.Profile(scenario.ProfileFast)
	lease := fast.BrokerLease
	if stop := tr.Faults[0]; !stop.Recovered || stop.UnavailableS >= lease.Seconds() {
		t.Errorf("graceful stop: %.2f s of write unavailability (recovered %v), want less than the %v lease a kill waits for", stop.UnavailableS, stop.Recovered, lease)
	}
}
