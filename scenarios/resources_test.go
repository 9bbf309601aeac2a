package scenarios

import (
	"context"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"strings"
	"testing"
)

// TestInProcessResources: the in-process sampler reports the process's CPU
// spent between start and stop, and a peak resident set that covers memory
// touched in between.
func TestInProcessResources(t *testing.T) {
	r := startResources(context.Background(), scenario.RuntimeInProcess, nil)
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i)
	}
	x := 0
	for i := range 50_000_000 {
		x += i ^ int(buf[(i*4096)%len(buf)])
	}
	got := r.stop()
	if len(got) != 1 || got[0].Node != "process" {
		t.Fatalf("got %+v", got)
	}
	if got[0].CPUSeconds <= 0 {
		t.Errorf("no CPU time measured (x=%d)", x)
	}
	if got[0].PeakMemoryBytes < 64<<20 {
		t.Errorf("peak memory %d below the 64 MiB touched", got[0].PeakMemoryBytes)
	}
	md := report.RenderMarkdown(report.Result{Topologies: []analysis.TopologyResult{{Topology: "coordinator", Resources: got}}})
	if !strings.Contains(md, "## CPU and memory") || !strings.Contains(md, "| process |") {
		t.Errorf("report lacks the CPU and memory table:\n%s", md)
	}
}
