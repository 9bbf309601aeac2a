package scenarios

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Reused clusters (Spec.Reuse): a topology's repeats run back to back on
// one deployment. The first repeat starts it; each later one first heals
// every cut and isolation the previous timeline left and waits until the
// ISR is full (where the deployment can tell), then creates its own topic
// (scenario.ReuseTopic) and runs the timeline against it.

// ReuseOrder lists the runs of a reuse scenario in the order the runner
// makes them: topology by topology, rate step by rate step, and within
// each its repeats back to back (they share one cluster, so they cannot
// interleave with other topologies' runs as RunOrder's do).
func ReuseOrder(topologies []scenario.Topology, steps, repeats int) []PlannedRun {
	var out []PlannedRun
	for _, t := range topologies {
		for i := range steps {
			for r := range max(repeats, 1) {
				out = append(out, PlannedRun{Topology: t, Step: i, Repeat: r})
			}
		}
	}
	return out
}

// sharedDeployment holds the deployment a reuse run's repeats share. The
// runner runs one step at a time, so no lock is needed.
type sharedDeployment struct {
	dep Deployment
}

// get returns the shared deployment, nil when there is none yet (or the
// run does not reuse).
func (s *sharedDeployment) get() Deployment {
	if s == nil {
		return nil
	}
	return s.dep
}

func (s *sharedDeployment) set(d Deployment) { s.dep = d }

// close closes the shared deployment, if any.
func (s *sharedDeployment) close(logger *slog.Logger) {
	if s == nil || s.dep == nil {
		return
	}
	if err := s.dep.Close(); err != nil {
		logger.Warn("close deployment", "error", err)
	}
	s.dep = nil
}

// settle makes a reused cluster ready for the next repeat: every cut and
// isolation healed, and every partition of the cluster's first topic in
// sync again (bounded by RollWait) where the deployment can tell.
func settle(ctx context.Context, dep Deployment, logger *slog.Logger) error {
	heal := scenario.Step{Fault: scenario.Fault{Action: scenario.ActionHeal, Target: scenario.Target{Kind: scenario.TargetAll}}, Revert: -1}
	if _, err := dep.Apply(ctx, heal, ""); err != nil {
		logger.Warn("reused cluster: heal all", "error", err)
	}
	rep, ok := dep.(Replication)
	if !ok {
		return nil
	}
	took, err := waitReplicated(ctx, rep)
	if err != nil {
		return fmt.Errorf("not in sync before the next repeat: %w", err)
	}
	logger.Info("reused cluster in sync", "waited", took)
	return nil
}
