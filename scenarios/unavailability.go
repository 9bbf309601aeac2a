package scenarios

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/history"
)

// Write unavailability, per DESIGN.md: from the first failed send after a
// fault to the first acked send after that, per partition and for the topic.
//
// Precisely, for fault i at time F (the next fault at F'), per partition:
//   - a send is bad when it was not acked, or needed more than one attempt
//     (a retried send hit a failure the client hid); an Unknown send with no
//     Done time (the run ended before an answer) is not counted;
//   - the first bad send is the one with the earliest intended time among
//     bad sends answered at or after F, intended before F', and intended at
//     or after the end of the partition's previous gap;
//   - the gap starts at the later of F and that send's intended time, and
//     ends at the earliest ack of any send to the partition intended at or
//     after it whose request went out after the start (an ack of a request
//     already in flight is no recovery); with no such ack the partition did
//     not recover and the gap runs to the end of the run.
//
// Sends are ordered by intended time, not sent time: the schedule is the
// same for every topology and a retried send's Sent is its last attempt.
// The topic's gap spans the earliest partition start to the latest end.

// faultResults analyses every fault event of a run. Each fault takes three
// passes over the history (first bad send, first recovering ack, sends
// failed in the gap), for every partition at once, so it needs memory per
// partition, not per message.
func faultResults(run Run, h clock) []FaultResult {
	if len(run.Faults) == 0 {
		return nil
	}
	events := slices.Clone(run.Faults)
	slices.SortStableFunc(events, func(a, b FaultEvent) int { return a.At.Compare(b.At) })
	end := h.last
	prevEnd := map[int32]int64{}
	out := make([]FaultResult, 0, len(events))
	for i, ev := range events {
		next := end + int64(time.Hour)
		if i+1 < len(events) {
			next = h.rel(events[i+1].At)
		}
		fr := FaultResult{
			AtS:          ev.At.Sub(run.Start).Seconds(),
			Action:       ev.Action,
			Target:       ev.Target,
			Node:         ev.Node,
			Err:          ev.Err,
			DetectionS:   sinceFault(ev.At, ev.Detected),
			ConvergenceS: sinceFault(ev.At, ev.Converged),
			Recovered:    true,
		}
		fr.Partitions = partitionGaps(h, h.rel(ev.At), next, end, prevEnd)
		fr.UnavailableS, fr.Recovered = topicGap(fr.Partitions)
		out = append(out, fr)
	}
	return out
}

func bad(m *history.Message) bool {
	if m.Outcome == history.Unknown && m.Done == history.NoTime {
		return false
	}
	return m.Outcome != history.Acked || m.Attempts > 1
}

// gap is one partition's window under construction; times in ns.
type gap struct {
	from, start, stop int64
	recovered         bool
	failed            int64
}

// partitionGaps finds each partition's gap after a fault at f (next fault
// at next) and advances prevEnd. Partition -1 collects sends that never
// reached a partition; they recover when anything is acked.
func partitionGaps(h clock, f, next, end int64, prevEnd map[int32]int64) []PartitionGap {
	gaps := map[int32]*gap{}
	prev := func(p int32) int64 {
		if v, ok := prevEnd[p]; ok {
			return v
		}
		return math.MinInt64
	}
	// The first bad send of each partition: the earliest intended.
	for _, m := range h.t.Messages() {
		if !m.HasSend() || !bad(m) || m.Intended == history.NoTime || m.Intended >= next {
			continue
		}
		p := max(m.Partition, -1)
		done := m.Done
		if done == history.NoTime {
			done = end
		}
		if done < f || m.Intended < prev(p) {
			continue
		}
		if g := gaps[p]; g == nil || m.Intended < g.from {
			gaps[p] = &gap{from: m.Intended}
		}
	}
	if len(gaps) == 0 {
		return nil
	}
	for _, g := range gaps {
		g.start = max(f, g.from)
	}
	// The first ack of a send intended at or after the gap's first bad
	// send whose (last) request went out at or after the gap started: an
	// ack of a request sent before is no recovery (acked before the fault,
	// or answered just after it by a broker that had already taken it).
	for _, m := range h.t.Messages() {
		if !m.HasSend() || m.Outcome != history.Acked || m.Done == history.NoTime || m.Sent == history.NoTime {
			continue
		}
		try := func(g *gap) {
			if g != nil && m.Intended >= g.from && m.Sent >= g.start && (!g.recovered || m.Done < g.stop) {
				g.stop, g.recovered = m.Done, true
			}
		}
		try(gaps[max(m.Partition, -1)])
		if m.Partition >= 0 {
			try(gaps[-1])
		}
	}
	for _, g := range gaps {
		if !g.recovered {
			g.stop = end
		}
		g.stop = max(g.stop, g.start)
	}
	// Failed or retried sends in the gap.
	for _, m := range h.t.Messages() {
		if !m.HasSend() || !bad(m) {
			continue
		}
		if g := gaps[max(m.Partition, -1)]; g != nil && m.Intended >= g.from && m.Intended < g.stop {
			g.failed++
		}
	}
	ids := slices.Sorted(maps.Keys(gaps))
	out := make([]PartitionGap, 0, len(ids))
	for _, p := range ids {
		g := gaps[p]
		prevEnd[p] = g.stop
		out = append(out, PartitionGap{
			Partition:    p,
			StartS:       time.Duration(g.start - h.start).Seconds(),
			UnavailableS: time.Duration(g.stop - g.start).Seconds(),
			Failed:       g.failed,
			Recovered:    g.recovered,
		})
	}
	return out
}

// topicGap spans the partition gaps.
func topicGap(gaps []PartitionGap) (float64, bool) {
	if len(gaps) == 0 {
		return 0, true
	}
	start, stop := gaps[0].StartS, gaps[0].StartS+gaps[0].UnavailableS
	recovered := true
	for _, g := range gaps {
		start = min(start, g.StartS)
		stop = max(stop, g.StartS+g.UnavailableS)
		recovered = recovered && g.Recovered
	}
	return stop - start, recovered
}
