package inprocess_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/report"
)

// TestRepeatRunsFreshClusters runs a short scenario with repeat: 2 through
// two topologies: two runs per topology, in interleaved order, each on a
// cluster of its own (its own data directory holding its own logs, and a
// verification read that finds no message twice: the producers of both
// repeats send the same ids and sequence numbers, so a reused log would
// show the first repeat's messages as duplicates), and the aggregate in
// result.json made of exactly those runs' figures. The random schedule's
// path through the runner is tested in package scenarios.
func TestRepeatRunsFreshClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("four in-process runs")
	}
	res, out := runWith(t, `
name: repeat-small
topologies: [coordinator, nameserver]
cluster: {brokers: 3, nameservers: 2, etcd: 1, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 200, acks: all, duration: 3s, warmup: 1s, drain: 10s}
repeat: 2
`, scenarios.RunOptions{KeepData: true})
	var order []string
	for _, tr := range res.Topologies {
		order = append(order, tr.Topology+"#"+string(rune('0'+tr.Repeat)))
	}
	if want := []string{"coordinator#1", "nameserver#1", "coordinator#2", "nameserver#2"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("run order %v, want %v", order, want)
	}
	for i, tr := range res.Topologies {
		s := tr.Summary
		if s.Acked == 0 || s.Unexpected != 0 || s.Duplicated != 0 || s.Lost != 0 {
			t.Errorf("run %d (%s #%d): acked %d, unexpected %d, duplicated %d, lost %d: want acks and a verification read of this run's messages only",
				i, tr.Topology, tr.Repeat, s.Acked, s.Unexpected, s.Duplicated, s.Lost)
		}
	}
	// A fresh cluster per run: one data directory each, with logs in it.
	for _, dir := range []string{"coordinator-0-r1", "coordinator-0-r2", "nameserver-0-r1", "nameserver-0-r2"} {
		if n := countFiles(t, filepath.Join(out, "data", dir)); n == 0 {
			t.Errorf("data/%s holds no files", dir)
		}
	}
	rep := res.Repeats
	if rep == nil || rep.Count != 2 || len(rep.Groups) != 2 {
		t.Fatalf("repeat summary %+v, want 2 repeats of 2 topologies", rep)
	}
	for _, g := range rep.Groups {
		var acked []float64
		for _, i := range g.Runs {
			if res.Topologies[i].Topology != g.Topology {
				t.Fatalf("group %s holds run %d of %s", g.Topology, i, res.Topologies[i].Topology)
			}
			acked = append(acked, res.Topologies[i].Summary.PublishRate)
		}
		got := g.Figures["publish_rate"]
		if len(g.Runs) != 2 || got.N != 2 || got.Min != min(acked[0], acked[1]) || got.Max != max(acked[0], acked[1]) || got.Median != (acked[0]+acked[1])/2 {
			t.Errorf("%s: runs %v, publish rate spread %+v from %v", g.Topology, g.Runs, got, acked)
		}
	}
	// The result on disk carries the same aggregate.
	back, err := report.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Repeats.Groups[0].Figures["publish_rate"], rep.Groups[0].Figures["publish_rate"]) {
		t.Errorf("result.json aggregate %+v, in memory %+v", back.Repeats.Groups[0].Figures["publish_rate"], rep.Groups[0].Figures["publish_rate"])
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Errorf("%s: %v", dir, err)
	}
	return n
}

// TestRepeatReusesCluster: with reuse: true both repeats run back to back
// on one cluster: one data directory holding both repeats' topics (the
// second repeat's "bench-r2"), the second repeat's fault resolved against
// its own topic, each repeat's checker judging only its own messages (no
// duplicates or unexpected messages from the other repeat, nothing lost),
// and the report saying how the repeats ran.
func TestRepeatReusesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("two in-process runs")
	}
	res, out := runWith(t, `
name: reuse-small
topologies: [coordinator]
cluster: {brokers: 3, etcd: 1, timings: fast}
topic: {name: bench, partitions: 3, replication: 3, min_insync: 2}
workload: {producers: 1, consumers: 1, message_size: 256B, rate: 200, acks: all, duration: 6s, warmup: 1s, drain: 10s}
faults:
  - {at: 2s, kill: leader-of bench/0, for: 2s}
repeat: 2
reuse: true
`, scenarios.RunOptions{KeepData: true})
	if len(res.Topologies) != 2 {
		t.Fatalf("%d runs, want 2", len(res.Topologies))
	}
	for i, tr := range res.Topologies {
		s := tr.Summary
		if tr.Repeat != i+1 || s.Acked == 0 || s.Unexpected != 0 || s.Duplicated != 0 || s.Lost != 0 {
			t.Errorf("run %d (#%d): acked %d, unexpected %d, duplicated %d, lost %d: want acks and only this repeat's messages",
				i, tr.Repeat, s.Acked, s.Unexpected, s.Duplicated, s.Lost)
		}
		wantTopic := []string{"bench", "bench-r2"}[i]
		if len(tr.Faults) != 2 || tr.Faults[0].Err != "" || tr.Faults[0].Target != "leader-of "+wantTopic+"/0" || tr.Faults[1].Err != "" {
			t.Errorf("run %d faults %+v, want the kill of the leader of %s/0 and its restart", i, tr.Faults, wantTopic)
		}
	}
	// One cluster: one data directory, both topics' partitions in it.
	entries, err := os.ReadDir(filepath.Join(out, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "coordinator-0-reused" {
		t.Fatalf("data directories %v, want coordinator-0-reused alone", entries)
	}
	for _, dir := range []string{"bench-0", "bench-r2-0"} {
		found := false
		for b := range 3 {
			if _, err := os.Stat(filepath.Join(out, "data", "coordinator-0-reused", "broker-"+strconv.Itoa(b), dir)); err == nil {
				found = true
			}
		}
		if !found {
			t.Errorf("no broker of the shared cluster holds %s", dir)
		}
	}
	if rep := res.Repeats; rep == nil || !rep.Reused || rep.Count != 2 {
		t.Errorf("repeat summary %+v, want 2 reused repeats", rep)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil || !strings.Contains(string(md), "back to back on one cluster") {
		t.Errorf("report.md does not say the repeats shared a cluster (%v)", err)
	}
}
