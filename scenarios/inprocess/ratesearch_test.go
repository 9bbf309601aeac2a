package inprocess_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRateSearchOneNode runs a short real rate search on a one-broker
// nameserver cluster: it stays within its rates and its probe budget,
// finds a knee (the rates are far below what one broker sustains, the p99
// bound is generous), and the reports show it.
func TestRateSearchOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("three runs of a cluster")
	}
	res, out := run(t, `
name: search
topologies: [nameserver]
cluster: {brokers: 1, nameservers: 1, timings: fast}
topic: {name: bench, partitions: 2, replication: 1, min_insync: 1}
workload:
  producers: 1
  consumers: 1
  message_size: 256B
  rate_search: {p99_below: 5s, start: 200, max: 800, steps: 3, keep_up: 80%}
  acks: all
  duration: 3s
  warmup: 1s
  drain: 5s
`)
	if len(res.Searches) != 1 {
		t.Fatalf("%d searches, want 1", len(res.Searches))
	}
	s := res.Searches[0]
	t.Logf("knee %v, stopped: %s, probes %+v", s.Knee, s.End, s.Steps)
	if len(s.Steps) == 0 || len(s.Steps) > 3 || len(s.Steps) != len(res.Topologies) {
		t.Fatalf("%d probes (%d runs), want 1 to 3, one run each", len(s.Steps), len(res.Topologies))
	}
	for i, st := range s.Steps {
		if st.Rate < 200/16.0 || st.Rate > 800 || res.Topologies[i].TargetRate != st.Rate {
			t.Errorf("probe %d at %v (run at %v) outside [12.5, 800]", i, st.Rate, res.Topologies[i].TargetRate)
		}
	}
	if s.Knee < 200 || s.Knee > 800 || s.End == "" {
		t.Errorf("knee %v (%s), want one in [200, 800]", s.Knee, s.End)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "## Rate search") {
		t.Errorf("report.md has no rate search section")
	}
	js, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil || !strings.Contains(string(js), `"searches"`) {
		t.Errorf("result.json lacks the searches: %v", err)
	}
}
