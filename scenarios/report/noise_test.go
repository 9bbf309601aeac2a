package report

import (
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"strings"
	"testing"
)

func TestNoiseInReport(t *testing.T) {
	tr := analysis.TopologyResult{Topology: "coordinator", Noise: &analysis.Noise{OtherPct: 42, SelfPct: 50, IdlePct: 8,
		Warnings: analysis.NoiseWarnings(analysis.Noise{OtherPct: 42, SelfPct: 50})}}
	md := RenderMarkdown(Result{Version: ResultVersion, Topologies: []analysis.TopologyResult{tr}})
	for _, want := range []string{"Noise: while coordinator ran, other processes used 42 % of the machine's CPU", "| 42 / 0 / 50 ! |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
