package scenarios

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// A rolling restart (`roll: brokers`) is what operators do for an upgrade:
// one broker at a time, stop it gracefully (with the topology's hand-off),
// start it again, and wait until every partition's ISR is full again
// before touching the next. The runner expands it into one stop and one
// restart event per broker, so the fault table shows each step's write
// unavailability, and the summary adds them up. A step that cannot start
// (the ISR never fills within RollWait) ends the roll with an error, as a
// careful operator would stop.

// Replication is a deployment that can tell whether the scenario's topic
// is fully replicated. A roll needs it.
type Replication interface {
	// UnderReplicated returns how many partitions of the scenario's topic
	// have an ISR smaller than their replica set, as the cluster reports
	// it now.
	UnderReplicated(ctx context.Context) (int, error)
}

// RollWait bounds how long a roll waits for a full ISR before a step (and
// after the last).
const RollWait = 2 * time.Minute

// roll runs a rolling restart and returns its events, in order.
func (s *stepRun) roll(ctx context.Context, dep Deployment, st scenario.Step, logger *slog.Logger) []analysis.FaultEvent {
	rep, ok := dep.(Replication)
	if !ok {
		return []analysis.FaultEvent{{At: time.Now(), Action: scenario.ActionRoll, Target: st.Target.String(),
			Err: fmt.Sprintf("%v: this runtime cannot tell when the ISR is full", ErrNotApplicable)}}
	}
	n := s.spec.Cluster.Brokers
	var out []analysis.FaultEvent
	for i := range n {
		target := scenario.Target{Kind: scenario.TargetBroker, Index: i}
		label := scenario.RollStepTarget(target, i+1, n)
		if _, err := waitReplicated(ctx, rep); err != nil {
			out = append(out, analysis.FaultEvent{At: time.Now(), Action: scenario.ActionRoll, Target: label, Err: "roll stopped: " + err.Error()})
			return out
		}
		stop := applyRollStep(ctx, dep, scenario.Step{Fault: scenario.Fault{Action: scenario.ActionStop, Target: target}, Revert: -1}, "", label)
		logger.Info("fault", "action", stop.Action, "target", stop.Target, "node", stop.Node, "error", stop.Err)
		out = append(out, stop)
		if stop.Err != "" {
			return out
		}
		restart := applyRollStep(ctx, dep, scenario.Step{Fault: scenario.Fault{Action: scenario.ActionRestart, Target: target}, Revert: 0}, stop.Node, label)
		if restart.Err == "" {
			took, err := waitReplicated(ctx, rep)
			if err != nil {
				restart.Err = "roll stopped: " + err.Error()
			} else {
				restart.Note = "ISR full " + strconv.FormatFloat(took.Seconds(), 'f', 2, 64) + " s after the restart"
			}
		}
		logger.Info("fault", "action", restart.Action, "target", restart.Target, "node", restart.Node, "note", restart.Note, "error", restart.Err)
		out = append(out, restart)
		if restart.Err != "" {
			return out
		}
	}
	return out
}

// applyRollStep applies one step of a roll and returns its event.
func applyRollStep(ctx context.Context, dep Deployment, st scenario.Step, node, label string) analysis.FaultEvent {
	ev := analysis.FaultEvent{At: time.Now(), Action: st.Action, Target: label}
	if pl, ok := dep.(Placer); ok {
		ev.Placement = pl.Placement()
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := dep.Apply(actx, st, node)
	ev.Node = r
	if err != nil {
		ev.Err = err.Error()
	}
	return ev
}

// waitReplicated polls rep until no partition is under-replicated, for at
// most RollWait, and returns how long it waited.
func waitReplicated(ctx context.Context, rep Replication) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, RollWait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		n, err := rep.UnderReplicated(ctx)
		if err == nil && n == 0 {
			return time.Since(start), nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("%d partitions under-replicated", n)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("ISR not full after %v: %w", RollWait, errors.Join(last, ctx.Err()))
		case <-t.C:
		}
	}
}
