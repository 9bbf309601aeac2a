package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// searchTable lists every topology's probes and its knee; a repeated search
// has a row per repeat and then each topology's knee over the repeats,
// median (min–max).
func searchTable(rs []analysis.SearchResult) table {
	t := table{header: []string{"topology", "knee (msgs/s)", "first failure above", "probes: target → acked/s, p99 (✓ pass, ✗ fail)", "stopped"}}
	repeated := slices.ContainsFunc(rs, func(r analysis.SearchResult) bool { return r.Repeat > 0 })
	var order []scenario.Topology
	knees := map[scenario.Topology][]float64{}
	for _, r := range rs {
		if _, ok := knees[r.Topology]; !ok {
			order = append(order, r.Topology)
		}
		knees[r.Topology] = append(knees[r.Topology], r.Knee)
		name := r.Topology
		if repeated {
			name = fmt.Sprintf("%s (repeat %d)", r.Topology, r.Repeat+1)
		}
		knee, below := "none", "–"
		if r.Knee > 0 {
			knee = fmtRate(r.Knee)
		}
		if r.Below > 0 {
			below = fmtRate(r.Below)
		}
		var steps []string
		for _, s := range r.Steps {
			mark := "✓"
			if !s.Pass {
				mark = "✗ " + s.Reason
			}
			steps = append(steps, fmt.Sprintf("%s → %s, %s ms %s", fmtRate(s.Rate), fmtRate(s.Achieved), fmtSig(s.P99Ms), mark))
		}
		t.rows = append(t.rows, []string{name, knee, below, strings.Join(steps, "; "), r.End})
	}
	if repeated {
		for _, top := range order {
			s := NewSpread(knees[top])
			t.rows = append(t.rows, []string{fmt.Sprintf("%s over %d searches", top, s.N),
				fmt.Sprintf("%s (%s–%s)", fmtRate(s.Median), fmtRate(s.Min), fmtRate(s.Max)), "–", "knee median (min–max); 0 where no probe passed", "–"})
		}
	}
	return t
}

// searchNote describes the pass rule for the reports.
func searchNote(r *scenario.RateSearch) string {
	if r == nil {
		return ""
	}
	d := r.WithDefaults()
	return fmt.Sprintf("The highest rate at which the producers kept up (acked at least %.0f %% of the target) and publish p99 stayed below %v: probes start at %s, double while they pass (up to %s), halve while they fail (down to %s), then bisect until within %.0f %%; at most %d probes per topology. Every probe is a full run, listed in the tables above.",
		100*d.KeepUp, d.P99Below, scenario.FormatRate(d.Start), scenario.FormatRate(d.Max), scenario.FormatRate(d.Min), 100*d.Precision, d.Steps)
}
