package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// isRollStep reports whether a fault result is a step of a roll.
func isRollStep(f analysis.FaultResult) bool {
	_, ok := scenario.RollStepNode(f.Target)
	return ok
}

// rollFindings sums up each topology's rolling restart: write
// unavailability per step (stop and restart of one broker) and in total.
func rollFindings(all []analysis.TopologyResult, heads []string) []finding {
	var out []finding
	for i, tr := range all {
		var steps []string
		total := 0.0
		failed := ""
		for _, f := range tr.Faults {
			if !isRollStep(f) {
				continue
			}
			if f.Err != "" && failed == "" {
				failed = f.Err
			}
			total += f.UnavailableS
			if f.Action == scenario.ActionRestart || f.Err != "" {
				continue
			}
			node, _ := scenario.RollStepNode(f.Target)
			steps = append(steps, node)
		}
		if len(steps) == 0 && failed == "" {
			continue
		}
		per := make([]string, 0, len(steps))
		for _, node := range steps {
			per = append(per, node+" "+fmtSecs(rollStepUnavailable(tr, node)))
		}
		text := fmt.Sprintf("%s rolled %d brokers with %s of write unavailability in total (%s)", heads[i], len(steps), fmtSecs(total), strings.Join(per, ", "))
		if failed != "" {
			text += "; " + strings.TrimSuffix(failed, ".")
		}
		out = append(out, finding{text + ".", anchorFaults})
	}
	return out
}

// rollStepUnavailable is the write unavailability charged to one roll
// step: the stop and the restart of node.
func rollStepUnavailable(tr analysis.TopologyResult, node string) float64 {
	s := 0.0
	for _, f := range tr.Faults {
		if n, ok := scenario.RollStepNode(f.Target); ok && n == node {
			s += f.UnavailableS
		}
	}
	return s
}

func fmtSecs(s float64) string { return strconv.FormatFloat(s, 'f', 2, 64) + " s" }
