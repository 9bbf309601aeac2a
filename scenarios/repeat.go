package scenarios

import (
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Repeated runs (Spec.Repeat): the runner makes them in RunOrder, each on
// a fresh deployment, and marks each result with its repeat; package
// report aggregates them (report.AggregateRepeats).

// PlannedRun is one entry of the run order.
type PlannedRun struct {
	Topology scenario.Topology
	Step     int // index into Workload.Rates
	Repeat   int // 0-based
}

// RunOrder lists the runs of a scenario in the order the runner makes
// them: repeat by repeat, and within a repeat topology by topology, rate
// step by rate step (with one repeat, the order of an unrepeated run).
func RunOrder(topologies []scenario.Topology, steps, repeats int) []PlannedRun {
	var out []PlannedRun
	for r := range max(repeats, 1) {
		for _, t := range topologies {
			for i := range steps {
				out = append(out, PlannedRun{Topology: t, Step: i, Repeat: r})
			}
		}
	}
	return out
}

// label marks a run with its repeat and fault seed.
func (s *stepRun) label(tr *analysis.Run) {
	if s.spec.Repeats() > 1 {
		tr.Repeat = s.repeat + 1
	}
	if s.spec.Random != nil {
		seed := s.spec.Random.SeedFor(s.repeat)
		tr.FaultSeed = &seed
	}
}
