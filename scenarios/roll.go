package scenarios

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
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

// rollLabel marks the events of a roll step in Target: "broker 1 (roll
// 2/3)".
const rollLabel = " (roll "

// roll runs a rolling restart and returns its events, in order.
func (s *stepRun) roll(ctx context.Context, dep Deployment, st Step, logger *slog.Logger) []FaultEvent {
	rep, ok := dep.(Replication)
	if !ok {
		return []FaultEvent{{At: time.Now(), Action: ActionRoll, Target: st.Target.String(),
			Err: fmt.Sprintf("%v: this runtime cannot tell when the ISR is full", ErrNotApplicable)}}
	}
	n := s.spec.Cluster.Brokers
	var out []FaultEvent
	for i := range n {
		target := Target{Kind: TargetBroker, Index: i}
		label := fmt.Sprintf("%s%s%d/%d)", target, rollLabel, i+1, n)
		if _, err := waitReplicated(ctx, rep); err != nil {
			out = append(out, FaultEvent{At: time.Now(), Action: ActionRoll, Target: label, Err: "roll stopped: " + err.Error()})
			return out
		}
		stop := applyRollStep(ctx, dep, Step{Fault: Fault{Action: ActionStop, Target: target}, Revert: -1}, "", label)
		logger.Info("fault", "action", stop.Action, "target", stop.Target, "node", stop.Node, "error", stop.Err)
		out = append(out, stop)
		if stop.Err != "" {
			return out
		}
		restart := applyRollStep(ctx, dep, Step{Fault: Fault{Action: ActionRestart, Target: target}, Revert: 0}, stop.Node, label)
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
func applyRollStep(ctx context.Context, dep Deployment, st Step, node, label string) FaultEvent {
	ev := FaultEvent{At: time.Now(), Action: st.Action, Target: label}
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

// isRollStep reports whether a fault result is a step of a roll.
func isRollStep(f FaultResult) bool { return strings.Contains(f.Target, rollLabel) }

// rollFindings sums up each topology's rolling restart: write
// unavailability per step (stop and restart of one broker) and in total.
func rollFindings(all []TopologyResult, heads []string) []finding {
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
			if f.Action == ActionRestart || f.Err != "" {
				continue
			}
			node, _, _ := strings.Cut(f.Target, rollLabel)
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
func rollStepUnavailable(tr TopologyResult, node string) float64 {
	s := 0.0
	for _, f := range tr.Faults {
		if isRollStep(f) && strings.HasPrefix(f.Target, node+rollLabel) {
			s += f.UnavailableS
		}
	}
	return s
}

func fmtSecs(s float64) string { return strconv.FormatFloat(s, 'f', 2, 64) + " s" }
