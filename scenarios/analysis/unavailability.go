package analysis

import (
	"cmp"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/history"
)

// Write unavailability, per DESIGN.md: from the first failed send after a
// fault to the first acked send after that, per partition and for the topic.
// Each partition's gap is charged once, to the fault that caused it.
//
// A fault can affect only some partitions (see faultScope): a broker fault
// those the broker led or replicated, a link fault those whose replicas use
// the link, a control-plane fault (etcd, controller, name server) all of
// them. Per partition, only the faults that can affect it cut its timeline
// into windows; for the window of fault F (the partition's next such fault
// at F'):
//   - a send is bad when it was not acked, or needed more than one attempt
//     (a retried send hit a failure the client hid); an Unknown send with no
//     Done time (the run ended before an answer) is not counted;
//   - the first bad send is the one with the earliest intended time among
//     bad sends intended before F' and at or after the end of the
//     partition's previous gap, answered at or after F, and that show
//     trouble before F': answered before F', or still unanswered at F'
//     though due stallEvidence earlier. A send merely in flight when F'
//     fired failed because of F', not F: it starts F''s gap;
//   - the gap starts at the later of F and that send's intended time, and
//     ends at the earliest ack of any send to the partition intended at or
//     after it whose request went out after the start (an ack of a request
//     already in flight is no recovery); with no such ack the partition did
//     not recover and the gap runs to the end of the run.
//
// The gap is charged to F alone. Another fault that can affect the
// partition and fired while the gap was open (or less than stallEvidence
// before it began, too close to tell apart) shares the cause: both
// faults note the overlap, the gap is not charged twice. Reverts (restart,
// resume, heal) open windows like any fault but never share a gap that
// began before them.
//
// Sends are ordered by intended time, not sent time: the schedule is the
// same for every topology and a retried send's Sent is its last attempt.
// A fault's topic-level gap spans the earliest start to the latest end of
// the partition gaps charged to it.

// stallEvidence is how long a send must have been due and unanswered
// before a fault to count as evidence that its partition was already in
// trouble; requests slower than this are not normal in any topology.
const stallEvidence = time.Second

// sendView is what the unavailability analysis reads of a send, times in
// the history's base (ns after its start, history.NoTime when absent, so
// that an absent time orders first as the zero time.Time would). The
// views are built from the history only when the run had faults, and only
// for the analysis: 32 bytes per send while it runs.
type sendView struct {
	Intended, Sent, Done int64
	Partition            int32
	Outcome              history.Outcome
	Attempts             uint8
}

// sendViews lists the sends of one shard of a history, in key order.
func sendViews(h clock, t *history.Table) []sendView {
	var out []sendView
	for _, m := range t.Messages() {
		if m.HasSend() {
			out = append(out, sendView{Partition: m.Partition, Intended: m.Intended, Sent: m.Sent,
				Done: m.Done, Outcome: m.Outcome, Attempts: m.Attempts})
		}
	}
	return out
}

// faultResults analyses every fault event of a run; sends are the run's
// sends in key order (sendViews).
func faultResults(run Run, h clock, sends []sendView) []FaultResult {
	if len(run.Faults) == 0 {
		return nil
	}
	events := slices.Clone(run.Faults)
	slices.SortStableFunc(events, func(a, b FaultEvent) int { return a.At.Compare(b.At) })
	scopes := make([]scope, len(events))
	out := make([]FaultResult, len(events))
	for i, ev := range events {
		scopes[i] = faultScope(ev)
		out[i] = FaultResult{
			AtS:          ev.At.Sub(run.Start).Seconds(),
			Action:       ev.Action,
			Target:       ev.Target,
			Node:         ev.Node,
			Err:          ev.Err,
			Note:         ev.Note,
			DetectionS:   sinceFault(ev.At, ev.Detected),
			ConvergenceS: sinceFault(ev.At, ev.Converged),
			Recovered:    true,
		}
	}
	end := lastTime(run, h)
	overlaps := make([]map[int]bool, len(events))
	for _, p := range sendsByPartition(sends) {
		var mine []int // the faults that can affect p, in time order
		for i, sc := range scopes {
			if sc.has(p.id) {
				mine = append(mine, i)
			}
		}
		for _, g := range partitionGaps(run, h, sends, p, events, mine, end) {
			for _, k := range sharers(events, mine, g) {
				g.gap.Overlaps = append(g.gap.Overlaps, k)
				for _, pair := range [][2]int{{g.fault, k}, {k, g.fault}} {
					if overlaps[pair[0]] == nil {
						overlaps[pair[0]] = map[int]bool{}
					}
					overlaps[pair[0]][pair[1]] = true
				}
			}
			out[g.fault].Partitions = append(out[g.fault].Partitions, g.gap)
		}
	}
	for i := range out {
		out[i].UnavailableS, out[i].Recovered = topicGap(out[i].Partitions)
		for k := range overlaps[i] {
			out[i].Overlaps = append(out[i].Overlaps, k)
		}
		slices.Sort(out[i].Overlaps)
		out[i].GapStartS = gapStart(out[i])
	}
	return out
}

// gapStart is when the first partition gap charged to f began (its AtS
// when none is).
func gapStart(f FaultResult) float64 {
	if len(f.Partitions) == 0 {
		return f.AtS
	}
	s := f.Partitions[0].StartS
	for _, g := range f.Partitions {
		s = min(s, g.StartS)
	}
	return s
}

// chargedGap is one partition gap and the fault (index into the sorted
// events) it is charged to.
type chargedGap struct {
	fault       int
	gap         PartitionGap
	start, stop time.Time
}

// sharers returns the other faults of mine that share g's cause: not
// reverts, fired while g was open or less than stallEvidence before it
// began.
func sharers(events []FaultEvent, mine []int, g chargedGap) []int {
	var out []int
	for _, k := range mine {
		if k == g.fault {
			continue
		}
		ev := events[k]
		if _, forward := ev.Action.Revert(); !forward {
			continue // a restart, resume or heal ends outages, it does not share them
		}
		if ev.At.After(g.start.Add(-stallEvidence)) && ev.At.Before(g.stop) {
			out = append(out, k)
		}
	}
	return out
}

// partitionSends are one partition's sends ordered by intended time.
type partitionSends struct {
	id    int32
	sends []sendView
}

func sendsByPartition(sends []sendView) []partitionSends {
	counts := map[int32]int{}
	for _, s := range sends {
		counts[max(s.Partition, -1)]++
	}
	m := make(map[int32][]sendView, len(counts))
	for p, n := range counts {
		m[p] = make([]sendView, 0, n)
	}
	for _, s := range sends {
		p := max(s.Partition, -1)
		m[p] = append(m[p], s)
	}
	out := make([]partitionSends, 0, len(m))
	for id, ss := range m {
		slices.SortStableFunc(ss, func(a, b sendView) int { return cmp.Compare(a.Intended, b.Intended) })
		out = append(out, partitionSends{id, ss})
	}
	slices.SortFunc(out, func(a, b partitionSends) int { return cmp.Compare(a.id, b.id) })
	return out
}

func bad(s sendView) bool {
	if s.Outcome == history.Unknown && s.Done == history.NoTime {
		return false
	}
	return s.Outcome != history.Acked || s.Attempts > 1
}

// partitionGaps finds partition p's gaps in the windows of the faults mine
// (indexes into events, in time order) that can affect it.
func partitionGaps(run Run, h clock, all []sendView, p partitionSends, events []FaultEvent, mine []int, endAt time.Time) []chargedGap {
	var gaps []chargedGap
	end := h.rel(endAt)
	prevEnd := history.NoTime
	for j, i := range mine {
		f := h.rel(events[i].At)
		next := end + int64(time.Hour)
		if j+1 < len(mine) {
			next = h.rel(events[mine[j+1]].At)
		}
		first := -1
		for k, s := range p.sends {
			if s.Intended >= next {
				break
			}
			if bad(s) && s.Intended >= prevEnd && troubleIn(s, f, next, end) {
				first = k
				break
			}
		}
		if first < 0 {
			continue
		}
		from := p.sends[first].Intended
		start := max(f, from)
		recoveries := p.sends
		if p.id < 0 {
			recoveries = all // unrouted sends recover when anything is acked
		}
		stop, ok := firstAckFrom(recoveries, from, start)
		if !ok {
			stop = end
		}
		stop = max(stop, start)
		var failed int64
		for _, s := range p.sends[first:] {
			if s.Intended >= stop {
				break
			}
			if bad(s) {
				failed++
			}
		}
		prevEnd = stop
		startAt, stopAt := h.abs(start), h.abs(stop)
		gaps = append(gaps, chargedGap{fault: i, start: startAt, stop: stopAt, gap: PartitionGap{
			Partition:    p.id,
			StartS:       startAt.Sub(run.Start).Seconds(),
			UnavailableS: stopAt.Sub(startAt).Seconds(),
			Failed:       failed,
			Recovered:    ok,
		}})
	}
	return gaps
}

// troubleIn reports whether bad send s shows its partition in trouble in
// the window [f, next): answered in it, or answered later but already
// stallEvidence overdue when next fired.
func troubleIn(s sendView, f, next, end int64) bool {
	done := s.Done
	if done == history.NoTime {
		done = end
	}
	if done < f {
		return false
	}
	if done < next {
		return true
	}
	due := s.Intended
	if s.Attempts <= 1 && s.Sent != history.NoTime {
		due = max(due, s.Sent) // sent late by the client: overdue from then
	}
	return due == history.NoTime || next-due >= int64(stallEvidence)
}

// firstAckFrom returns the earliest Done of an acked send intended at or
// after from whose (last) request went out at or after notBefore. An ack of
// a request sent before the gap started is no recovery: it was acked
// before the fault, or answered just after it by a broker that had already
// taken it.
func firstAckFrom(sends []sendView, from, notBefore int64) (int64, bool) {
	best := history.NoTime
	found := false
	for _, s := range sends {
		if s.Outcome != history.Acked || s.Intended < from || s.Done == history.NoTime || s.Sent < notBefore {
			continue
		}
		if !found || s.Done < best {
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

// HitPartitions is the number of partitions whose write gap a fault was
// charged with (partition -1, sends that reached no partition, excluded).
func HitPartitions(f FaultResult) int {
	n := 0
	for _, p := range f.Partitions {
		if p.Partition >= 0 {
			n++
		}
	}
	return n
}
