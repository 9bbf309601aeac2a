package scenarios

import (
	"cmp"
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

// faultResults analyses every fault event of a run.
func faultResults(run Run) []FaultResult {
	if len(run.Faults) == 0 {
		return nil
	}
	events := slices.Clone(run.Faults)
	slices.SortStableFunc(events, func(a, b FaultEvent) int { return a.At.Compare(b.At) })
	parts := sendsByPartition(run.Sends)
	end := lastTime(run)
	prevEnd := map[int32]time.Time{}
	out := make([]FaultResult, 0, len(events))
	for i, ev := range events {
		next := end.Add(time.Hour)
		if i+1 < len(events) {
			next = events[i+1].At
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
		fr.Partitions = partitionGaps(run, parts, ev.At, next, end, prevEnd)
		fr.UnavailableS, fr.Recovered = topicGap(fr.Partitions)
		out = append(out, fr)
	}
	return out
}

// partitionSends are one partition's sends ordered by intended time.
type partitionSends struct {
	id    int32
	sends []history.Send
}

func sendsByPartition(sends []history.Send) []partitionSends {
	counts := map[int32]int{}
	for _, s := range sends {
		counts[max(s.Partition, -1)]++
	}
	m := make(map[int32][]history.Send, len(counts))
	for p, n := range counts {
		m[p] = make([]history.Send, 0, n)
	}
	for _, s := range sends {
		p := max(s.Partition, -1)
		m[p] = append(m[p], s)
	}
	out := make([]partitionSends, 0, len(m))
	for id, ss := range m {
		slices.SortStableFunc(ss, func(a, b history.Send) int { return a.Intended.Compare(b.Intended) })
		out = append(out, partitionSends{id, ss})
	}
	slices.SortFunc(out, func(a, b partitionSends) int { return cmp.Compare(a.id, b.id) })
	return out
}

func bad(s history.Send) bool {
	if s.Outcome == history.Unknown && s.Done.IsZero() {
		return false
	}
	return s.Outcome != history.Acked || s.Attempts > 1
}

// partitionGaps finds each partition's gap after a fault at f (next fault
// at next) and advances prevEnd.
func partitionGaps(run Run, parts []partitionSends, f, next, end time.Time, prevEnd map[int32]time.Time) []PartitionGap {
	var gaps []PartitionGap
	for _, p := range parts {
		first := -1
		for i, s := range p.sends {
			if !s.Intended.Before(next) {
				break
			}
			if bad(s) && !orTime(s.Done, end).Before(f) && !s.Intended.Before(prevEnd[p.id]) {
				first = i
				break
			}
		}
		if first < 0 {
			continue
		}
		from := p.sends[first].Intended
		start := later(f, from)
		recoveries := p.sends
		if p.id < 0 {
			recoveries = run.Sends // unrouted sends recover when anything is acked
		}
		stop, ok := firstAckFrom(recoveries, from, start)
		if !ok {
			stop = end
		}
		stop = later(stop, start)
		var failed int64
		for _, s := range p.sends[first:] {
			if !s.Intended.Before(stop) {
				break
			}
			if bad(s) {
				failed++
			}
		}
		prevEnd[p.id] = stop
		gaps = append(gaps, PartitionGap{
			Partition:    p.id,
			StartS:       start.Sub(run.Start).Seconds(),
			UnavailableS: stop.Sub(start).Seconds(),
			Failed:       failed,
			Recovered:    ok,
		})
	}
	return gaps
}

// firstAckFrom returns the earliest Done of an acked send intended at or
// after from whose (last) request went out at or after notBefore. An ack of
// a request sent before the gap started is no recovery: it was acked
// before the fault, or answered just after it by a broker that had already
// taken it.
func firstAckFrom(sends []history.Send, from, notBefore time.Time) (time.Time, bool) {
	var best time.Time
	found := false
	for _, s := range sends {
		if s.Outcome != history.Acked || s.Intended.Before(from) || s.Done.IsZero() || s.Sent.Before(notBefore) {
			continue
		}
		if !found || s.Done.Before(best) {
			best, found = s.Done, true
		}
	}
	return best, found
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
