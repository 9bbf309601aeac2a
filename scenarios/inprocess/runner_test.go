package inprocess_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	_ "github.com/brokerlab/brokerlab/scenarios/inprocess"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// run parses a scenario and runs it into a temporary directory.
func run(t *testing.T, yaml string) (report.Result, string) {
	t.Helper()
	return runWith(t, yaml, scenarios.RunOptions{})
}

// runWith is run with options (Out and Logger are set here).
func runWith(t *testing.T, yaml string, opts scenarios.RunOptions) (report.Result, string) {
	t.Helper()
	spec, err := scenario.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts.Out, opts.Logger = out, testutil.Logger(t, 8)
	res, err := scenarios.RunScenario(ctx, spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range res.Topologies {
		if tr.Error != "" {
			t.Fatalf("%s: %s", tr.Topology, tr.Error)
		}
		s := tr.Summary
		t.Logf("%s: sent %d acked %d failed %d lost %d dup %d reordered %d p99.9 %.0f ms unavail %.2f s",
			tr.Topology, s.Sent, s.Acked, s.Failed, s.Lost, s.Duplicated, s.Reordered, s.PublishP999Ms, s.MaxUnavailabilityS)
	}
	return res, out
}

func byTopology(t *testing.T, res report.Result, top string) analysis.TopologyResult {
	t.Helper()
	for _, tr := range res.Topologies {
		if tr.Topology == top {
			return tr
		}
	}
	t.Fatalf("no result for %s", top)
	return analysis.TopologyResult{}
}

// TestLeaderKillBothTopologies is the quickstart in small: a leader kill and
// restart under both control planes, all three outputs, nothing acknowledged
// lost by coordinator or by sync-mode nameserver, failover figures present.
func TestLeaderKillBothTopologies(t *testing.T) {
	res, out := run(t, `
name: small-failover
topologies: [coordinator, nameserver]
cluster: {brokers: 3, nameservers: 2, etcd: 1, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 400, acks: all, duration: 9s, warmup: 1s, drain: 10s}
faults:
  - {at: 2s, kill: leader-of bench/0}
  - {at: 6s, restart: killed}
`)
	for _, f := range []string{"result.json", "report.md", "report.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s missing or empty: %v", f, err)
		}
	}
	for _, top := range []string{"coordinator", "nameserver"} {
		tr := byTopology(t, res, top)
		s := tr.Summary
		if s.Acked < 1000 {
			t.Errorf("%s: only %d acked", top, s.Acked)
		}
		if s.Lost != 0 {
			t.Errorf("%s: %d acknowledged messages lost: %+v", top, s.Lost, tr.Check)
		}
		if s.DetectionS == nil {
			t.Errorf("%s: no detection time for the leader kill", top)
		}
		if len(tr.Faults) != 2 || tr.Faults[0].Node == "" {
			t.Errorf("%s: faults %+v", top, tr.Faults)
		}
	}
	if s := byTopology(t, res, "coordinator").Summary; s.MaxUnavailabilityS > 5 {
		t.Errorf("coordinator: %.1f s unavailable with a 2 s lease", s.MaxUnavailabilityS)
	}
}

// TestCheckerReportsAsyncMasterLoss: an async master cut off from its slaves
// keeps acknowledging, then dies; the checker must count the loss.
func TestCheckerReportsAsyncMasterLoss(t *testing.T) {
	res, _ := run(t, `
name: async-loss
topologies: [nameserver]
cluster: {brokers: 3, nameservers: 1, timings: fast}
topic: {name: bench, partitions: 2, replication: 3, min_insync: 1, replication_mode: async}
workload: {producers: 1, consumers: 1, message_size: 128B, rate: 300, acks: all, duration: 6s, warmup: 1s, drain: 8s}
faults:
  - {at: 1s, cut: broker 0 - broker 1}
  - {at: 1s, cut: broker 0 - broker 2}
  - {at: 3500ms, kill: broker 0}
`)
	if s := byTopology(t, res, "nameserver").Summary; s.Lost == 0 {
		t.Fatalf("async master killed after 2.5 s cut off from its slaves, yet no loss reported: %+v", s)
	}
}

// uncleanLoss is a scenario (but its name) that loses acknowledged
// messages: the leader is cut off from its followers (the ISR shrinks to
// itself, min_insync 1 keeps acks=all going), then killed, and unclean
// election makes a stale follower leader.
const uncleanLoss = `
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: bench, partitions: 1, replication: 3, min_insync: 1, unclean_election: true}
workload: {producers: 1, consumers: 1, message_size: 128B, rate: 300, acks: all, duration: 10s, warmup: 1s, drain: 8s}
faults:
  - {at: 1s, cut: broker 0 - broker 1}
  - {at: 1s, cut: broker 0 - broker 2}
  - {at: 1s, cut: broker 1 - broker 2}
  - {at: 7s, kill: leader-of bench/0}
  - {at: 7500ms, heal: all}
`

// TestCheckerReportsUncleanElectionLoss: the leader is cut off from its
// followers (the ISR shrinks to itself, min_insync 1 keeps acks=all going),
// then killed; with unclean election the controller picks a stale follower
// and what only the old leader had is gone.
func TestCheckerReportsUncleanElectionLoss(t *testing.T) {
	res, _ := run(t, "name: unclean-loss\n"+uncleanLoss)
	if s := byTopology(t, res, "coordinator").Summary; s.Lost == 0 {
		t.Fatalf("unclean election after an isolated leader acknowledged alone, yet no loss reported: %+v", s)
	}
}

// TestStreamedHistoryFindsLoss is the unclean-election loss with the
// history streamed to disk: the runner checks from the file, finds the loss,
// and re-analysing the file (brokerlab report -recheck) gives the same
// verdict.
func TestStreamedHistoryFindsLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for 15 s")
	}
	res, out := runWith(t, "name: unclean-loss-streamed\n"+uncleanLoss, scenarios.RunOptions{History: scenarios.HistoryFile})
	first := byTopology(t, res, "coordinator")
	if first.Summary.Lost == 0 || first.Summary.Sent < 2500 {
		t.Fatalf("streamed history: no loss found or too few sends: %+v", first.Summary)
	}
	if _, err := os.Stat(filepath.Join(out, "history-coordinator-0"+analysis.HistoryExt)); err != nil {
		t.Fatal(err)
	}
	if n, err := report.Recheck(out, analysis.DefaultAnalysisConfig()); err != nil || n != 1 {
		t.Fatalf("recheck: %d files, %v", n, err)
	}
	again, err := report.ReadResult(filepath.Join(out, report.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := first.Check, byTopology(t, again, "coordinator").Check; a.Lost != b.Lost || a.Sent != b.Sent || a.Acked != b.Acked ||
		a.Duplicated != b.Duplicated || a.Reordered != b.Reordered || a.Delivered != b.Delivered {
		t.Fatalf("re-analysis differs:\n%+v\n%+v", a, b)
	}
}

// TestPauseShowsInTailLatency: open-loop latency is measured from the
// intended send time, so pausing the only leader for 2 s at a fixed rate
// must put about 2 s into p99.9.
func TestPauseShowsInTailLatency(t *testing.T) {
	res, _ := run(t, `
name: pause
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: {profile: fast, broker_lease: 10s}}
topic: {name: bench, partitions: 1, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 128B, rate: 500, acks: all, duration: 8s, warmup: 1s, drain: 8s}
faults:
  - {at: 3s, pause: leader-of bench/0, for: 2s}
`)
	s := byTopology(t, res, "coordinator").Summary
	if s.PublishP999Ms < 1800 {
		t.Fatalf("publish p99.9 %.0f ms after a 2 s leader pause; coordinated omission?", s.PublishP999Ms)
	}
	if s.Lost != 0 {
		t.Fatalf("%d lost", s.Lost)
	}
}
