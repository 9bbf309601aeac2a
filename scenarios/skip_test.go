package scenarios

import (
	"context"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"strings"
	"testing"
)

// TestRunSkipsTopologyWithoutDriver: a topology with no driver for the
// runtime is skipped and reported, not run and failed.
func TestRunSkipsTopologyWithoutDriver(t *testing.T) {
	spec, err := scenario.Parse("skip.yaml", []byte("name: skip\ntopologies: [jetstream]\nruntime: docker\n"))
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	res, err := RunScenario(context.Background(), spec, RunOptions{Out: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Topologies) != 0 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0], "jetstream") {
		t.Fatalf("topologies %d, skipped %q", len(res.Topologies), res.Skipped)
	}
	if !strings.Contains(report.RenderMarkdown(res), "Skipped") || !strings.Contains(progress.String(), "skipped") {
		t.Fatal("the skip is not reported")
	}
}
