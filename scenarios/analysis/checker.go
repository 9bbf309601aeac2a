package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/history"
)

// CheckResult is the checker's verdict over a whole run, warm-up included.
// Messages are identified by (producer, seq).
type CheckResult struct {
	// Sent is the number of distinct messages producers attempted.
	Sent int64 `json:"sent"`
	// Acked, Failed and Unknown split Sent by outcome.
	Acked   int64 `json:"acked"`
	Failed  int64 `json:"failed"`
	Unknown int64 `json:"unknown"`
	// Delivered is the number of distinct messages consumers received.
	Delivered int64 `json:"delivered"`
	// Receives counts every receive record, redeliveries included.
	Receives int64 `json:"receives"`

	// Lost: acked, never received. Non-zero means acknowledged data loss.
	Lost int64 `json:"lost"`
	// Unreadable: acked, not received, in a partition the verification
	// read could not read to its end, at or past the offset it reached:
	// whether the log still holds them is unknown, so they are not Lost.
	// UnreadablePartitions says which partitions and for how long.
	Unreadable           int64                 `json:"unreadable"`
	UnreadablePartitions []UnreadablePartition `json:"unreadable_partitions,omitempty"`
	// Duplicated: received at two or more different (partition, offset)
	// positions, i.e. written more than once. The same offset read twice
	// (two consumers, a re-read) is not a duplicate.
	Duplicated int64 `json:"duplicated"`
	// Reordered: acked messages that sit, in one producer's partition,
	// at a higher offset than a message with a higher sequence number.
	Reordered int64 `json:"reordered"`
	// Indeterminate: not acked (failed or unknown) but received; allowed.
	Indeterminate int64 `json:"indeterminate"`
	// Unexpected: received but never sent by any producer of the run.
	Unexpected int64 `json:"unexpected"`

	// The first samples of each finding, ordered by producer and sequence.
	LostSamples          []MessageSample `json:"lost_samples,omitempty"`
	UnreadableSamples    []MessageSample `json:"unreadable_samples,omitempty"`
	DuplicatedSamples    []MessageSample `json:"duplicated_samples,omitempty"`
	ReorderedSamples     []MessageSample `json:"reordered_samples,omitempty"`
	IndeterminateSamples []MessageSample `json:"indeterminate_samples,omitempty"`
	UnexpectedSamples    []MessageSample `json:"unexpected_samples,omitempty"`
}

// MessageSample describes one message a finding is about.
type MessageSample struct {
	Producer  int32 `json:"producer"`
	Seq       int64 `json:"seq"`
	Partition int32 `json:"partition"`
	// Outcome of the send ("acked", "failed", "unknown"; empty if never sent).
	Outcome string `json:"outcome,omitempty"`
	// AckedOffset is the offset the ack reported, -1 when not acked.
	AckedOffset int64 `json:"acked_offset"`
	// Offsets are the distinct offsets it was received at.
	Offsets []int64 `json:"offsets,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// PartitionRead is how far a consumer got in one partition.
type PartitionRead struct {
	Partition int32 `json:"partition"`
	// Position is the next offset it would read.
	Position int64 `json:"position"`
	// HighWatermark is the end its last successful fetch reported; -1 when
	// no fetch succeeded.
	HighWatermark int64 `json:"high_watermark"`
	// LastErr is the last fetch error since the last success, if any.
	LastErr string `json:"last_err,omitempty"`
	// LogEnded is set when the high watermark stayed below the
	// acknowledged end because the log itself ends there (a fetch at the
	// acknowledged end was out of range): the partition was read to its
	// end, and the acknowledged messages it lacks are lost.
	LogEnded bool `json:"log_ended,omitempty"`
}

// UnreadablePartition is a partition the verification read could not read
// to its end: no fetch succeeded, it had not caught up when it gave up, or
// the high watermark it was served stayed below offsets producers were
// acknowledged for while the log holds them (a restarted leader whose high
// watermark has not caught up with its log).
type UnreadablePartition struct {
	Partition int32 `json:"partition"`
	// ReadTo is the offset the read reached; HighWatermark the last end a
	// fetch reported (-1: none); AckedEnd one past the highest offset an
	// ack reported.
	ReadTo        int64 `json:"read_to"`
	HighWatermark int64 `json:"high_watermark"`
	AckedEnd      int64 `json:"acked_end"`
	// ForS is how long the verification read tried.
	ForS   float64 `json:"for_s"`
	Reason string  `json:"reason"`
}

// unreadablePartitions judges the verification read: every partition it
// did not read to its end (see UnreadablePartition), by partition.
// ackedEnd is one past the highest acked offset by partition
// (history.Source.AckedEnds); took is how long it read.
func unreadablePartitions(reads []PartitionRead, ackedEnd map[int32]int64, took time.Duration) map[int32]UnreadablePartition {
	if len(reads) == 0 {
		return nil
	}
	out := map[int32]UnreadablePartition{}
	for _, r := range reads {
		u := UnreadablePartition{Partition: r.Partition, ReadTo: r.Position, HighWatermark: r.HighWatermark,
			AckedEnd: ackedEnd[r.Partition], ForS: took.Seconds()}
		switch {
		case r.HighWatermark < 0:
			u.Reason = "no fetch succeeded"
		case r.Position < r.HighWatermark:
			u.Reason = fmt.Sprintf("read to %d of %d when the read gave up", r.Position, r.HighWatermark)
		case r.HighWatermark < u.AckedEnd && !r.LogEnded:
			u.Reason = fmt.Sprintf("high watermark %d below the acknowledged end %d", r.HighWatermark, u.AckedEnd)
		default:
			continue
		}
		if r.LastErr != "" {
			u.Reason += "; last error: " + r.LastErr
		}
		out[r.Partition] = u
	}
	return out
}

// Check runs the checker over a run's sends and receives (after drain) and
// keeps up to samples examples of each finding. It builds a history.Table
// from the events; CheckTable checks one directly.
func Check(sends []history.Send, receives []history.Receive, samples int) CheckResult {
	return CheckTable(tableOf(time.Time{}, sends, receives, nil), samples)
}

// CheckTable runs the checker over a table in memory (see CheckHistory).
func CheckTable(t *history.Table, samples int) CheckResult {
	res, _ := CheckHistory(t, samples) // a table yields no error
	return res
}

// CheckHistory runs the checker over a recorded history, shard by shard:
// a streamed history (history.Split) is checked in the memory of one
// shard, and gets the verdicts the same history would get in one table.
// An error is a shard that could not be read; the result then covers the
// shards read before it.
func CheckHistory(src history.Source, samples int) (CheckResult, error) {
	c := newChecker(src, nil, samples)
	for t, err := range src.Shards() {
		if err != nil {
			return c.result(), err
		}
		c.add(t)
	}
	return c.result(), nil
}

// checker judges a history shard by shard. When the history holds a
// verification read, loss, duplication and order are judged on it (the
// log as it finally stands), else on the live deliveries. An acked message
// that was not received is Unreadable when unread names its partition and
// its acked offset is at or past where the read stopped there; otherwise
// it is Lost.
//
// Shards come highest keys first (history.Source), so that the reorder
// walk, which goes down each producer's sequences, carries its state from
// one shard to the next; the samples of each finding are the lowest keys,
// so each shard's samples go in front of those already kept.
type checker struct {
	res    CheckResult
	limit  int
	final  bool
	unread map[int32]UnreadablePartition
	t      *history.Table // the shard being checked
	// The reorder walk: the producer it is in, its lowest offset per
	// partition so far, and the samples found, highest keys first (the
	// last limit of them are kept).
	producer int32
	walking  bool
	lowest   map[int32]witness
	found    []MessageSample
}

type witness struct {
	seq, offset int64
}

func newChecker(src history.Source, unread map[int32]UnreadablePartition, samples int) *checker {
	final := src.HasFinal()
	c := &checker{res: CheckResult{Receives: src.Receives(final)}, limit: max(samples, 0), final: final, unread: unread}
	for _, u := range unread {
		c.res.UnreadablePartitions = append(c.res.UnreadablePartitions, u)
	}
	slices.SortFunc(c.res.UnreadablePartitions, func(a, b UnreadablePartition) int { return cmp.Compare(a.Partition, b.Partition) })
	return c
}

// add checks one shard.
func (c *checker) add(t *history.Table) {
	c.t = t
	res := &c.res
	var local CheckResult // this shard's samples
	for k, m := range t.Messages() {
		got := m.Received(c.final)
		if got {
			res.Delivered++
		}
		if !m.HasSend() {
			if got {
				res.Unexpected++
				c.sampleTo(&local.UnexpectedSamples, k, m, "received, never sent")
			}
		} else {
			res.Sent++
			switch m.Outcome {
			case history.Acked:
				res.Acked++
				u, partUnread := c.unread[m.Partition]
				switch {
				case !got && partUnread && m.Offset >= u.ReadTo:
					res.Unreadable++
					c.sampleTo(&local.UnreadableSamples, k, m, "acked, in a partition not read to its end")
				case !got:
					res.Lost++
					c.sampleTo(&local.LostSamples, k, m, "acked, never received")
				}
			case history.Failed:
				res.Failed++
			default:
				res.Unknown++
			}
			if m.Outcome != history.Acked && got {
				res.Indeterminate++
				c.sampleTo(&local.IndeterminateSamples, k, m, "not acked, delivered")
			}
		}
		if m.Duplicated(c.final) {
			res.Duplicated++
			if len(local.DuplicatedSamples) < c.limit {
				c.sampleTo(&local.DuplicatedSamples, k, m, fmt.Sprintf("received at %d positions", len(t.Positions(k, m, c.final))))
			}
		}
	}
	for _, f := range []struct{ to, from *[]MessageSample }{
		{&res.LostSamples, &local.LostSamples}, {&res.UnreadableSamples, &local.UnreadableSamples},
		{&res.DuplicatedSamples, &local.DuplicatedSamples}, {&res.IndeterminateSamples, &local.IndeterminateSamples},
		{&res.UnexpectedSamples, &local.UnexpectedSamples},
	} {
		all := append(*f.from, *f.to...)
		*f.to = all[:min(len(all), c.limit)]
	}
	c.reorders()
}

// result is the verdict over every shard added.
func (c *checker) result() CheckResult {
	res := c.res
	res.ReorderedSamples = slices.Clone(c.found)
	slices.Reverse(res.ReorderedSamples)
	if len(res.ReorderedSamples) == 0 {
		res.ReorderedSamples = nil
	}
	return res
}

// tableOf builds a table from events; start zero means the earliest time
// among them (the table counts time from its start).
func tableOf(start time.Time, sends []history.Send, receives, final []history.Receive) *history.Table {
	if start.IsZero() {
		for _, s := range sends {
			for _, at := range []time.Time{s.Intended, s.Sent, s.Done} {
				if !at.IsZero() && (start.IsZero() || at.Before(start)) {
					start = at
				}
			}
		}
		for _, r := range receives {
			if !r.Received.IsZero() && (start.IsZero() || r.Received.Before(start)) {
				start = r.Received
			}
		}
	}
	t := history.NewTable(start)
	for _, s := range sends {
		t.AddSend(s)
	}
	for _, r := range receives {
		t.AddReceive(r)
	}
	if final != nil {
		t.BeginFinal()
		for _, r := range final {
			t.AddFinal(r)
		}
	}
	return t
}

// sampleTo keeps a sample while fewer than the limit are kept. A shard's
// messages come in (producer, sequence) order, so the first ones kept are
// its lowest.
func (c *checker) sampleTo(to *[]MessageSample, k history.Key, m *history.Message, note string) {
	if len(*to) < c.limit {
		*to = append(*to, c.sample(k, m, c.t.Positions(k, m, c.final), note))
	}
}

func (c *checker) sample(k history.Key, m *history.Message, pos []history.Position, note string) MessageSample {
	s := MessageSample{Producer: k.Producer, Seq: k.Seq, Partition: -1, AckedOffset: -1, Note: note}
	if m.HasSend() {
		s.Outcome, s.Partition = m.Outcome.String(), m.Partition
		if m.Outcome == history.Acked {
			s.AckedOffset = m.Offset
		}
	}
	for _, p := range pos {
		s.Offsets = append(s.Offsets, p.Offset)
	}
	if len(pos) > 0 {
		s.Partition = pos[0].Partition
	}
	return s
}

// reorders counts acked messages that, in the log of one partition, come
// after a message of the same producer with a higher sequence number: a
// message is reordered when some higher sequence sits at a lower offset of
// the same partition. Each message counts at its lowest offset in a
// partition; later copies are duplicates. Walking each producer's messages
// from the highest sequence down (shards come highest first, so the walk
// goes on from one shard to the next), it keeps per partition the lowest
// offset seen so far, so it needs no sort and memory per partition, not
// per message.
func (c *checker) reorders() {
	pids := c.t.Producers()
	slices.Reverse(pids)
	for _, pid := range pids {
		if !c.walking || pid != c.producer {
			c.walking, c.producer, c.lowest = true, pid, map[int32]witness{}
		}
		for k, m := range c.t.Producer(pid, true) {
			if !m.HasSend() || m.Outcome != history.Acked || !m.Received(c.final) {
				continue
			}
			pos := []history.Position{m.First(c.final)}
			if m.Duplicated(c.final) {
				pos = lowestPerPartition(c.t.Positions(k, m, c.final))
			}
			for _, p := range pos {
				w, ok := c.lowest[p.Partition]
				if ok && w.offset < p.Offset {
					c.res.Reordered++
					if c.limit > 0 {
						c.found = append(c.found, c.sample(k, m, []history.Position{p},
							fmt.Sprintf("seq %d at offset %d follows seq %d at offset %d", k.Seq, p.Offset, w.seq, w.offset)))
						if len(c.found) > c.limit {
							c.found = slices.Delete(c.found, 0, 1)
						}
					}
				}
			}
			for _, p := range pos {
				if w, ok := c.lowest[p.Partition]; !ok || p.Offset < w.offset {
					c.lowest[p.Partition] = witness{k.Seq, p.Offset}
				}
			}
		}
	}
}

// lowestPerPartition returns a delivery's lowest offset in each partition.
func lowestPerPartition(ps []history.Position) []history.Position {
	var out []history.Position
	for _, p := range ps {
		i := slices.IndexFunc(out, func(q history.Position) bool { return q.Partition == p.Partition })
		switch {
		case i < 0:
			out = append(out, p)
		case p.Offset < out[i].Offset:
			out[i] = p
		}
	}
	return out
}
