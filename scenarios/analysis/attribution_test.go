package analysis_test

import (
	"math"

	"github.com/brokerlab/brokerlab/scenarios/analysis"

	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// placement4x8 is 8 partitions × 3 replicas over 4 brokers, partition p on
// brokers p, p+1, p+2 (mod 4), led by broker p mod 4.
func placement4x8() map[string][]int32 {
	m := map[string][]int32{}
	for p := range int32(8) {
		for r := range int32(3) {
			b := "broker " + string(rune('0'+(p+r)%4))
			m[b] = append(m[b], p)
		}
	}
	return m
}

// failWindow makes partition part's sends intended in [from, to) fail
// after failAfter, and those in flight at from (intended in [from-inflight,
// from)) fail just after from.
func failWindow(s *history.Send, part int32, from, to, inflight, failAfter time.Duration) {
	off := s.Intended.Sub(analysis.SyntheticStart)
	if s.Partition != part {
		return
	}
	switch {
	case off >= from-inflight && off < from:
		s.Outcome, s.Err = history.Failed, "connection reset"
		s.Done = analysis.SyntheticAt(from + 50*time.Millisecond)
	case off >= from && off < to:
		s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
		s.Done = s.Intended.Add(failAfter)
	}
}

// The case of the issue: a member of a 3-member etcd killed at 25 s, the
// leader of partition 3 killed at 30 s while it is down. The leader's
// partitions 1 and 3 (broker 3 leads 3, replicates 1 and 2; partition 2
// is not hit) stop taking writes until 50 s; sends in flight at the kill
// fail just after it. The etcd member loss did nothing: it shows 0 with no
// partition hit, and the leader's outage is counted once.
func TestUnavailabilityOverlappingFaultsChargedOnce(t *testing.T) {
	run := analysis.Synthetic{Rate: 800, Duration: 60 * time.Second, Warmup: 2 * time.Second, Partitions: 8,
		AckLatency: 2 * time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			for _, p := range []int32{1, 3} {
				failWindow(s, p, 30*time.Second, 50*time.Second, 20*time.Millisecond, 100*time.Millisecond)
			}
			return true
		}}.Run()
	pl := placement4x8()
	run.Faults = []analysis.FaultEvent{
		{At: analysis.SyntheticAt(5 * time.Second), Action: scenario.ActionKill, Target: "controller", Node: "broker 0", Placement: pl},
		{At: analysis.SyntheticAt(25 * time.Second), Action: scenario.ActionKill, Target: "etcd 0", Node: "etcd 0", Placement: pl},
		{At: analysis.SyntheticAt(30 * time.Second), Action: scenario.ActionKill, Target: "leader-of c/3", Node: "broker 3", Placement: pl},
		{At: analysis.SyntheticAt(50 * time.Second), Action: scenario.ActionRestart, Target: "killed", Node: "broker 3", Placement: pl},
	}
	res := analysis.Analyze(run, analysis.DefaultAnalysisConfig())
	ctl, etcd, leader, restart := res.Faults[0], res.Faults[1], res.Faults[2], res.Faults[3]
	for name, f := range map[string]analysis.FaultResult{"controller": ctl, "etcd member": etcd, "restart": restart} {
		if f.UnavailableS != 0 || analysis.HitPartitions(f) != 0 || len(f.Overlaps) != 0 {
			t.Errorf("%s was charged: %+v", name, f)
		}
	}
	near(t, "leader kill", leader.UnavailableS, 20.002, 0.01)
	near(t, "leader gap start", leader.GapStartS, 30, 0.001)
	if analysis.HitPartitions(leader) != 2 || leader.Partitions[0].Partition != 1 || leader.Partitions[1].Partition != 3 || len(leader.Overlaps) != 0 {
		t.Errorf("leader kill: %+v", leader)
	}
	near(t, "max unavailability", res.Summary.MaxUnavailabilityS, 20.002, 0.01)
	var charged float64
	for _, f := range res.Faults {
		for _, g := range f.Partitions {
			charged += g.UnavailableS
		}
	}
	near(t, "partition-seconds charged", charged, 2*20.002, 0.02)

	md := report.RenderMarkdown(report.Result{Version: report.ResultVersion, Topologies: []analysis.TopologyResult{res}})
	for _, want := range []string{"| F2 kill etcd 0 ", "| 30.0–50.0 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| overlaps") {
		t.Errorf("report notes an overlap where there is none:\n%s", md)
	}
}

// Two faults that both cause a gap: partition 0's leader (broker 0) is
// killed at 10 s and its next leader (broker 1) at 11 s, before the
// partition recovered; it takes writes again at 15 s. The gap is charged
// once, to the first kill, and each fault notes the other.
func TestUnavailabilitySharedGapNotesOverlap(t *testing.T) {
	run := analysis.Synthetic{Rate: 300, Duration: 30 * time.Second, Warmup: time.Second, Partitions: 3,
		AckLatency: time.Millisecond, RecvDelay: time.Millisecond,
		Edit: func(s *history.Send) bool {
			failWindow(s, 0, 10*time.Second, 15*time.Second, 0, 100*time.Millisecond)
			return true
		}}.Run()
	pl := map[string][]int32{"broker 0": {0, 1}, "broker 1": {0, 2}, "broker 2": {1, 2}}
	run.Faults = []analysis.FaultEvent{
		{At: analysis.SyntheticAt(10 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 0", Placement: pl},
		{At: analysis.SyntheticAt(11 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 1", Placement: pl},
		{At: analysis.SyntheticAt(20 * time.Second), Action: scenario.ActionRestart, Target: "broker 0", Node: "broker 0", Placement: pl},
	}
	res := analysis.Analyze(run, analysis.DefaultAnalysisConfig())
	first, second := res.Faults[0], res.Faults[1]
	near(t, "first kill", first.UnavailableS, 5.001, 0.005)
	if second.UnavailableS != 0 || analysis.HitPartitions(second) != 0 {
		t.Errorf("second kill charged again: %+v", second)
	}
	if !reflect.DeepEqual(first.Overlaps, []int{1}) || !reflect.DeepEqual(second.Overlaps, []int{0}) ||
		!reflect.DeepEqual(first.Partitions[0].Overlaps, []int{1}) {
		t.Errorf("overlaps: first %+v, second %+v", first, second)
	}
	if len(res.Faults[2].Overlaps) != 0 {
		t.Errorf("a restart shares no gap: %+v", res.Faults[2])
	}
	near(t, "max unavailability", res.Summary.MaxUnavailabilityS, 5.001, 0.005)
	md := report.RenderMarkdown(report.Result{Version: report.ResultVersion, Topologies: []analysis.TopologyResult{res}})
	for _, want := range []string{"overlaps F2", "overlaps F1"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// Faults fired a few milliseconds apart cannot be told apart by the sends:
// the gap goes to the later one and both note the overlap.
func TestUnavailabilitySimultaneousFaultsOverlap(t *testing.T) {
	run := analysis.Synthetic{Rate: 1000, Duration: 20 * time.Second, Warmup: time.Second, Partitions: 1,
		AckLatency: time.Millisecond,
		Edit: func(s *history.Send) bool {
			failWindow(s, 0, 10*time.Second, 13*time.Second, 10*time.Millisecond, 200*time.Millisecond)
			return true
		}}.Run()
	run.Faults = []analysis.FaultEvent{
		{At: analysis.SyntheticAt(10 * time.Second), Action: scenario.ActionKill, Target: "broker 0", Node: "broker 0"},
		{At: analysis.SyntheticAt(10*time.Second + 5*time.Millisecond), Action: scenario.ActionKill, Target: "broker 1", Node: "broker 1"},
	}
	res := analysis.Analyze(run, analysis.DefaultAnalysisConfig())
	if res.Faults[0].UnavailableS != 0 || !reflect.DeepEqual(res.Faults[0].Overlaps, []int{1}) {
		t.Errorf("first: %+v", res.Faults[0])
	}
	near(t, "second", res.Faults[1].UnavailableS, 2.996, 0.005)
}

// A fault whose effect began before the next one (sends overdue by more
// than stallEvidence when it fired) keeps its gap though the sends are
// answered only after the next fault: etcd's quorum lost at 25 s stalls
// writes (requests time out after 10 s), a leader kill at 30 s lands in
// the stall.
func TestUnavailabilityStallBeforeNextFault(t *testing.T) {
	run := analysis.Synthetic{Rate: 200, Duration: 60 * time.Second, Warmup: time.Second, Partitions: 2,
		AckLatency: time.Millisecond,
		Edit: func(s *history.Send) bool {
			if off := s.Intended.Sub(analysis.SyntheticStart); off >= 26*time.Second && off < 40*time.Second {
				s.Outcome, s.Done = history.Unknown, s.Intended.Add(10*time.Second)
			}
			return true
		}}.Run()
	pl := map[string][]int32{"broker 0": {0}, "broker 1": {1}}
	run.Faults = []analysis.FaultEvent{
		{At: analysis.SyntheticAt(25 * time.Second), Action: scenario.ActionKill, Target: "etcd", Node: "etcd 0,etcd 1", Placement: pl},
		{At: analysis.SyntheticAt(30 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 0", Placement: pl},
	}
	res := analysis.Analyze(run, analysis.DefaultAnalysisConfig())
	etcd, leader := res.Faults[0], res.Faults[1]
	near(t, "etcd gap", etcd.UnavailableS, 14.001, 0.01)
	if analysis.HitPartitions(etcd) != 2 || leader.UnavailableS != 0 {
		t.Errorf("etcd %+v, leader %+v", etcd, leader)
	}
	if !reflect.DeepEqual(leader.Overlaps, []int{0}) {
		t.Errorf("the leader kill fired inside partition 0's gap: %+v", leader)
	}
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}
