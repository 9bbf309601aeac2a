package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/history"
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
// did not read to its end (see UnreadablePartition), by partition. took is
// how long it read.
func unreadablePartitions(reads []PartitionRead, sends []history.Send, took time.Duration) map[int32]UnreadablePartition {
	if len(reads) == 0 {
		return nil
	}
	ackedEnd := map[int32]int64{}
	for _, s := range sends {
		if s.Outcome == history.Acked && s.Offset+1 > ackedEnd[s.Partition] {
			ackedEnd[s.Partition] = s.Offset + 1
		}
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

// msgKey identifies a message across sends and receives.
type msgKey struct {
	producer int32
	seq      int64
}

func cmpKey(a, b msgKey) int {
	if c := cmp.Compare(a.producer, b.producer); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// position is where a message was read.
type position struct {
	partition int32
	offset    int64
}

// delivery is what the consumers saw of one message.
type delivery struct {
	first    time.Time  // earliest receive
	intended time.Time  // from the message's headers
	pos      position   // first position seen
	more     []position // further distinct positions: duplicates (rare)
}

func (d delivery) positions() []position { return append([]position{d.pos}, d.more...) }

// index is a run's history keyed by message, built once per analysis.
type index struct {
	sends    map[msgKey]history.Send
	recvs    map[msgKey]delivery
	receives int
}

// newIndex merges the sends by message (when a producer logged several
// records for one message an acked one wins, then the last) and the
// receives by message.
func newIndex(sends []history.Send, receives []history.Receive) index {
	idx := index{
		sends:    make(map[msgKey]history.Send, len(sends)),
		recvs:    make(map[msgKey]delivery, len(receives)),
		receives: len(receives),
	}
	for _, s := range sends {
		k := msgKey{s.Producer, s.Seq}
		if old, ok := idx.sends[k]; ok && old.Outcome == history.Acked && s.Outcome != history.Acked {
			continue
		}
		idx.sends[k] = s
	}
	for _, r := range receives {
		k := msgKey{r.Producer, r.Seq}
		p := position{r.Partition, r.Offset}
		d, ok := idx.recvs[k]
		switch {
		case !ok:
			d = delivery{first: r.Received, intended: r.Intended, pos: p}
		case r.Received.Before(d.first):
			d.first = r.Received
		}
		if ok && p != d.pos && !slices.Contains(d.more, p) {
			d.more = append(d.more, p)
		}
		idx.recvs[k] = d
	}
	return idx
}

// Check runs the checker over a run's sends and receives (after drain) and
// keeps up to samples examples of each finding.
func Check(sends []history.Send, receives []history.Receive, samples int) CheckResult {
	return check(newIndex(sends, receives), nil, samples)
}

// check judges idx. An acked message that was not received is Unreadable
// when unread names its partition and its acked offset is at or past where
// the read stopped there; otherwise it is Lost.
func check(idx index, unread map[int32]UnreadablePartition, samples int) CheckResult {
	res := CheckResult{Sent: int64(len(idx.sends)), Receives: int64(idx.receives), Delivered: int64(len(idx.recvs))}
	for _, u := range unread {
		res.UnreadablePartitions = append(res.UnreadablePartitions, u)
	}
	slices.SortFunc(res.UnreadablePartitions, func(a, b UnreadablePartition) int { return cmp.Compare(a.Partition, b.Partition) })
	var lost, unreadable, indeterminate, duplicated, unexpected []msgKey
	for k, s := range idx.sends {
		switch s.Outcome {
		case history.Acked:
			res.Acked++
		case history.Failed:
			res.Failed++
		default:
			res.Unknown++
		}
		_, got := idx.recvs[k]
		u, partUnread := unread[s.Partition]
		switch {
		case s.Outcome == history.Acked && !got && partUnread && s.Offset >= u.ReadTo:
			unreadable = append(unreadable, k)
		case s.Outcome == history.Acked && !got:
			lost = append(lost, k)
		case s.Outcome != history.Acked && got:
			indeterminate = append(indeterminate, k)
		}
	}
	for k, d := range idx.recvs {
		if _, ok := idx.sends[k]; !ok {
			unexpected = append(unexpected, k)
		}
		if len(d.more) > 0 {
			duplicated = append(duplicated, k)
		}
	}
	res.Lost, res.Unreadable, res.Indeterminate = int64(len(lost)), int64(len(unreadable)), int64(len(indeterminate))
	res.Duplicated, res.Unexpected = int64(len(duplicated)), int64(len(unexpected))
	c := checker{idx: idx, res: &res, limit: samples}
	res.LostSamples = c.samples(lost, func(d delivery) string { return "acked, never received" })
	res.UnreadableSamples = c.samples(unreadable, func(d delivery) string { return "acked, in a partition not read to its end" })
	res.IndeterminateSamples = c.samples(indeterminate, func(d delivery) string { return "not acked, delivered" })
	res.DuplicatedSamples = c.samples(duplicated, func(d delivery) string {
		return fmt.Sprintf("received at %d positions", 1+len(d.more))
	})
	res.UnexpectedSamples = c.samples(unexpected, func(d delivery) string { return "received, never sent" })
	c.reorders()
	return res
}

type checker struct {
	idx   index
	res   *CheckResult
	limit int
}

// samples describes the first keys (by producer and sequence) of a finding.
func (c *checker) samples(keys []msgKey, note func(delivery) string) []MessageSample {
	slices.SortFunc(keys, cmpKey)
	var out []MessageSample
	for _, k := range keys[:min(len(keys), c.limit)] {
		d, got := c.idx.recvs[k]
		var pos []position
		if got {
			pos = d.positions()
		}
		out = append(out, c.sample(k, pos, note(d)))
	}
	return out
}

func (c *checker) sample(k msgKey, pos []position, note string) MessageSample {
	m := MessageSample{Producer: k.producer, Seq: k.seq, Partition: -1, AckedOffset: -1, Note: note}
	if s, ok := c.idx.sends[k]; ok {
		m.Outcome, m.Partition = s.Outcome.String(), s.Partition
		if s.Outcome == history.Acked {
			m.AckedOffset = s.Offset
		}
	}
	for _, p := range pos {
		m.Offsets = append(m.Offsets, p.offset)
	}
	if len(pos) > 0 {
		m.Partition = pos[0].partition
	}
	return m
}

// reorders counts acked messages that, in the log of one partition, come
// after a message of the same producer with a higher sequence number. Each
// message counts at its lowest offset in a partition; later copies are
// duplicates.
func (c *checker) reorders() {
	type entry struct {
		seq    int64
		offset int64
	}
	type stream struct {
		producer  int32
		partition int32
	}
	logs := map[stream][]entry{}
	for k, d := range c.idx.recvs {
		if s, ok := c.idx.sends[k]; !ok || s.Outcome != history.Acked {
			continue
		}
		if len(d.more) == 0 { // the common case, without allocating
			st := stream{k.producer, d.pos.partition}
			logs[st] = append(logs[st], entry{k.seq, d.pos.offset})
			continue
		}
		for _, p := range lowestPerPartition(d) {
			st := stream{k.producer, p.partition}
			logs[st] = append(logs[st], entry{k.seq, p.offset})
		}
	}
	streams := make([]stream, 0, len(logs))
	for st := range logs {
		streams = append(streams, st)
	}
	slices.SortFunc(streams, func(a, b stream) int {
		return cmp.Or(cmp.Compare(a.producer, b.producer), cmp.Compare(a.partition, b.partition))
	})
	for _, st := range streams {
		es := logs[st]
		slices.SortFunc(es, func(a, b entry) int { return cmp.Or(cmp.Compare(a.offset, b.offset), cmp.Compare(a.seq, b.seq)) })
		maxSeq, maxOff := int64(-1), int64(-1)
		for _, e := range es {
			if e.seq >= maxSeq {
				maxSeq, maxOff = e.seq, e.offset
				continue
			}
			c.res.Reordered++
			if len(c.res.ReorderedSamples) < c.limit {
				c.res.ReorderedSamples = append(c.res.ReorderedSamples, c.sample(msgKey{st.producer, e.seq},
					[]position{{st.partition, e.offset}},
					fmt.Sprintf("seq %d at offset %d follows seq %d at offset %d", e.seq, e.offset, maxSeq, maxOff)))
			}
		}
	}
}

// lowestPerPartition returns a delivery's lowest offset in each partition.
func lowestPerPartition(d delivery) []position {
	var out []position
	for _, p := range d.positions() {
		i := slices.IndexFunc(out, func(q position) bool { return q.partition == p.partition })
		switch {
		case i < 0:
			out = append(out, p)
		case p.offset < out[i].offset:
			out[i] = p
		}
	}
	return out
}
