package history

import (
	"cmp"
	"iter"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// NoTime marks an absent timestamp in a Message (a send never handed to the
// network, an outcome never known, a message never received).
const NoTime int64 = math.MinInt64

// Key identifies a message across sends and receives.
type Key struct {
	Producer int32
	Seq      int64
}

// Compare orders keys by producer, then sequence.
func (k Key) Compare(o Key) int {
	return cmp.Or(cmp.Compare(k.Producer, o.Producer), cmp.Compare(k.Seq, o.Seq))
}

// Position is where a message was read: partition and offset.
type Position struct {
	Partition int32
	Offset    int64
}

// Message is everything the analysis needs about one message, in a fixed
// 72 bytes: its send, the earliest live delivery and the first position of
// the live and the final (verification) reads. Times are nanoseconds after
// the table's start; NoTime when absent. A message received at a second
// position keeps the extra ones in the table's side map (duplicates are
// rare).
type Message struct {
	Intended  int64
	Sent      int64
	Done      int64
	Offset    int64 // acked offset, else -1
	FirstRecv int64 // earliest live receive, NoTime when none
	LiveOff   int64
	FinalOff  int64
	Partition int32 // partition of the (last) send
	LivePart  int32
	FinalPart int32
	Outcome   Outcome // 0: no send recorded
	Attempts  uint8   // saturates at 255
	flags     uint8
}

const (
	flagLive      uint8 = 1 << iota // received by a live consumer
	flagLiveMore                    // live reads saw it at 2+ positions
	flagFinal                       // read by the verification read
	flagFinalMore                   // the verification read saw it at 2+ positions
)

// HasSend reports whether a send was recorded for the message.
func (m *Message) HasSend() bool { return m.Outcome != 0 }

// Received reports whether the live (final false) or the verification
// (final true) read delivered the message.
func (m *Message) Received(final bool) bool {
	if final {
		return m.flags&flagFinal != 0
	}
	return m.flags&flagLive != 0
}

// Duplicated reports whether that read saw the message at 2+ positions.
func (m *Message) Duplicated(final bool) bool {
	if final {
		return m.flags&flagFinalMore != 0
	}
	return m.flags&flagLiveMore != 0
}

// First returns the first position that read saw the message at.
func (m *Message) First(final bool) Position {
	if final {
		return Position{m.FinalPart, m.FinalOff}
	}
	return Position{m.LivePart, m.LiveOff}
}

// chunkBits sizes the dense chunks: 4096 messages, 288 KiB each, so a
// growing history never copies what it already holds.
const (
	chunkBits  = 12
	chunkSize  = 1 << chunkBits
	chunkBytes = chunkSize * MessageSize
)

// dense reports whether index i (sequence minus the table's base) may be
// stored densely: at most doubling the dense range (plus a chunk), so a
// wild sequence number (a foreign message) goes to the sparse map instead
// of allocating chunks up to it.
func (p *producerLog) dense(i int64) bool {
	return i >= 0 && i <= 2*p.highest+chunkSize
}

// chunks owns a table's dense chunks, mapped outside the Go heap where the
// platform allows (see allocChunk). They are unmapped by Release or, once
// the table is unreachable, by a cleanup.
type chunks struct {
	mu     sync.Mutex
	list   [][]Message
	mapped bool
}

func (c *chunks) alloc() []Message {
	ch := allocChunk()
	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch
}

func (c *chunks) free() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.list {
		freeChunk(ch, c.mapped)
	}
	c.list = nil
}

// producerLog is one producer's messages, indexed by sequence number
// minus base (a shard of a split history starts at its range's first
// sequence; a whole table at 0).
type producerLog struct {
	mem     *chunks
	chunks  [][]Message
	base    int64
	highest int64 // highest dense index in use, -1 when none
	sparse  map[int64]*Message
}

func newMessage() Message {
	return Message{Intended: NoTime, Sent: NoTime, Done: NoTime, Offset: -1, FirstRecv: NoTime}
}

func (p *producerLog) slot(seq int64) *Message {
	if m := p.sparse[seq]; m != nil {
		return m // stored before the dense range reached it
	}
	if i := seq - p.base; p.dense(i) {
		c := int(i >> chunkBits)
		for len(p.chunks) <= c {
			ch := p.mem.alloc()
			for i := range ch {
				ch[i] = newMessage()
			}
			p.chunks = append(p.chunks, ch)
		}
		p.highest = max(p.highest, i)
		return &p.chunks[c][i&(chunkSize-1)]
	}
	m := p.sparse[seq]
	if m == nil {
		if p.sparse == nil {
			p.sparse = map[int64]*Message{}
		}
		m = new(Message)
		*m = newMessage()
		p.sparse[seq] = m
	}
	return m
}

func (p *producerLog) find(seq int64) *Message {
	if m := p.sparse[seq]; m != nil {
		return m
	}
	if i := seq - p.base; i >= 0 && i <= p.highest {
		return &p.chunks[i>>chunkBits][i&(chunkSize-1)]
	}
	return p.sparse[seq]
}

// Table is a run's history in compact form: one Message per (producer,
// sequence), dense per producer because producers number their messages
// from 0. It costs 72 bytes per message whatever the payload size, and
// nothing per receive beyond the message's slot. It is not safe for
// concurrent use; Recorder serialises writers. A *Message it yields is
// valid while the table is reachable and not released.
type Table struct {
	mem       *chunks
	start     time.Time
	base      int64 // first dense sequence of every producer
	producers map[int32]*producerLog
	// more holds the second and further distinct positions of a message.
	more map[moreKey][]Position
	// receives counts receive records, re-reads included.
	liveReceives, finalReceives int64
	hasFinal                    bool
	// last is the latest Done or live receive, ns after start.
	last int64
	// ends is one past the highest offset any acked send reported, by
	// partition.
	ends map[int32]int64
}

type moreKey struct {
	Key
	final bool
}

// NewTable returns an empty table whose times count from start.
func NewTable(start time.Time) *Table { return newTable(start, 0) }

// newTable returns an empty table whose producers store sequences from
// base on densely (a shard of a split history).
func newTable(start time.Time, base int64) *Table {
	t := &Table{mem: &chunks{mapped: offHeap}, start: start, base: base, producers: map[int32]*producerLog{},
		more: map[moreKey][]Position{}, last: NoTime, ends: map[int32]int64{}}
	runtime.AddCleanup(t, (*chunks).free, t.mem)
	return t
}

// Release frees the table's memory at once; the table is empty after it.
func (t *Table) Release() {
	t.producers, t.more, t.ends = map[int32]*producerLog{}, map[moreKey][]Position{}, map[int32]int64{}
	t.liveReceives, t.finalReceives, t.hasFinal, t.last = 0, 0, false, NoTime
	t.mem.free()
}

// Start is t=0 of the table's times.
func (t *Table) Start() time.Time { return t.start }

// Rel converts a time to nanoseconds after the start; NoTime for the zero time.
func (t *Table) Rel(at time.Time) int64 {
	if at.IsZero() {
		return NoTime
	}
	return int64(at.Sub(t.start))
}

// Abs converts nanoseconds after the start back to a time; the zero time
// for NoTime.
func (t *Table) Abs(ns int64) time.Time {
	if ns == NoTime {
		return time.Time{}
	}
	return t.start.Add(time.Duration(ns))
}

func (t *Table) slot(k Key) *Message {
	p := t.producers[k.Producer]
	if p == nil {
		p = &producerLog{mem: t.mem, base: t.base, highest: -1}
		t.producers[k.Producer] = p
	}
	return p.slot(k.Seq)
}

// Find returns the message with key k, or nil.
func (t *Table) Find(k Key) *Message {
	if p := t.producers[k.Producer]; p != nil {
		return p.find(k.Seq)
	}
	return nil
}

// AddSend records a send. When a producer logged several sends for one
// message, an acked one wins, then the last.
func (t *Table) AddSend(s Send) {
	t.addSend(Key{s.Producer, s.Seq}, SendRecord{
		Partition: s.Partition, Offset: s.Offset,
		Intended: t.Rel(s.Intended), Sent: t.Rel(s.Sent), Done: t.Rel(s.Done),
		Outcome: s.Outcome, Attempts: uint8(min(max(s.Attempts, 0), math.MaxUint8)),
	})
}

// SendRecord is a send in the table's time base.
type SendRecord struct {
	Partition            int32
	Offset               int64
	Intended, Sent, Done int64
	Outcome              Outcome
	Attempts             uint8
}

// countSend updates the whole-history figures with a send. They count
// every send, also one an earlier ack overrides: they must not depend on
// which sends share a table (a split history knows them before it reads
// any shard).
func (t *Table) countSend(r SendRecord) {
	t.advanceLast(r.Done)
	if r.Outcome == Acked && r.Offset+1 > t.ends[r.Partition] {
		t.ends[r.Partition] = r.Offset + 1
	}
}

// countReceive updates the whole-history figures with a delivery, live at
// at or of the verification read.
func (t *Table) countReceive(at int64, final bool) {
	if final {
		t.hasFinal = true
		t.finalReceives++
		return
	}
	t.liveReceives++
	t.advanceLast(at)
}

// advanceLast moves Last to at when at is later.
func (t *Table) advanceLast(at int64) {
	if at != NoTime && (t.last == NoTime || at > t.last) {
		t.last = at
	}
}

func (t *Table) addSend(k Key, r SendRecord) {
	if r.Outcome == 0 {
		r.Outcome = Unknown // every recorded send has an outcome
	}
	t.countSend(r)
	m := t.slot(k)
	if m.Outcome == Acked && r.Outcome != Acked {
		return
	}
	m.Partition, m.Offset, m.Outcome, m.Attempts = r.Partition, r.Offset, r.Outcome, r.Attempts
	m.Intended, m.Sent, m.Done = r.Intended, r.Sent, r.Done
	if r.Outcome != Acked {
		m.Offset = -1
	}
}

// AckedEnds returns, by partition, one past the highest offset any acked
// send reported (a message acked twice counts at both offsets).
func (t *Table) AckedEnds() map[int32]int64 { return maps.Clone(t.ends) }

// AddReceive records a live consumer's delivery.
func (t *Table) AddReceive(r Receive) {
	t.addReceive(Key{r.Producer, r.Seq}, Position{r.Partition, r.Offset}, t.Rel(r.Received), false)
}

// AddFinal records a delivery of the verification read after the drain:
// the log as it finally stands. Once any is added (or BeginFinal called),
// HasFinal is true.
func (t *Table) AddFinal(r Receive) {
	t.addReceive(Key{r.Producer, r.Seq}, Position{r.Partition, r.Offset}, NoTime, true)
}

// BeginFinal marks that a verification read took place, even an empty one.
func (t *Table) BeginFinal() { t.hasFinal = true }

// HasFinal reports whether the table holds a verification read.
func (t *Table) HasFinal() bool { return t.hasFinal }

// DropFinal forgets the verification read (it did not finish): the
// checker then judges on the live deliveries.
func (t *Table) DropFinal() {
	t.hasFinal, t.finalReceives = false, 0
	for _, m := range t.all() {
		m.flags &^= flagFinal | flagFinalMore
		m.FinalOff, m.FinalPart = 0, 0
	}
	for k := range t.more {
		if k.final {
			delete(t.more, k)
		}
	}
}

func (t *Table) addReceive(k Key, p Position, at int64, final bool) {
	m := t.slot(k)
	has, dup := flagLive, flagLiveMore
	first := &m.LivePart
	firstOff := &m.LiveOff
	t.countReceive(at, final)
	if final {
		has, dup, first, firstOff = flagFinal, flagFinalMore, &m.FinalPart, &m.FinalOff
	} else if at != NoTime && (m.FirstRecv == NoTime || at < m.FirstRecv) {
		m.FirstRecv = at
	}
	switch {
	case m.flags&has == 0:
		m.flags |= has
		*first, *firstOff = p.Partition, p.Offset
	case p != (Position{*first, *firstOff}):
		mk := moreKey{k, final}
		if !slices.Contains(t.more[mk], p) {
			t.more[mk] = append(t.more[mk], p)
			m.flags |= dup
		}
	}
}

// Positions returns every distinct position a read saw the message at,
// the first one first; nil when that read never delivered it.
func (t *Table) Positions(k Key, m *Message, final bool) []Position {
	if !m.Received(final) {
		return nil
	}
	return append([]Position{m.First(final)}, t.more[moreKey{k, final}]...)
}

// Receives counts the receive records of a read, re-reads included.
func (t *Table) Receives(final bool) int64 {
	if final {
		return t.finalReceives
	}
	return t.liveReceives
}

// Last is the latest Done or live receive time, ns after start; NoTime for
// an empty table.
func (t *Table) Last() int64 { return t.last }

// Producers returns the producer ids in the table, ascending.
func (t *Table) Producers() []int32 {
	return slices.Sorted(maps.Keys(t.producers))
}

// Messages yields every message of the table in (producer, sequence)
// order. Dense slots no send or receive touched are skipped.
func (t *Table) Messages() iter.Seq2[Key, *Message] {
	return func(yield func(Key, *Message) bool) {
		for _, pid := range t.Producers() {
			if !t.producerMessages(pid, false, yield) {
				return
			}
		}
	}
}

// Producer yields one producer's messages by sequence, ascending or
// (descending true) descending.
func (t *Table) Producer(pid int32, descending bool) iter.Seq2[Key, *Message] {
	return func(yield func(Key, *Message) bool) { t.producerMessages(pid, descending, yield) }
}

func (t *Table) producerMessages(pid int32, descending bool, yield func(Key, *Message) bool) bool {
	p := t.producers[pid]
	if p == nil {
		return true
	}
	sparse := slices.Sorted(maps.Keys(p.sparse))
	dense := p.base + p.highest + 1
	if descending {
		slices.Reverse(sparse)
	}
	// Merge the dense range [base, dense) with the sparse keys, which lie
	// outside it or were stored before the dense range reached them.
	i, j := p.base, 0
	if descending {
		i = dense - 1
	}
	for {
		haveDense := (!descending && i < dense) || (descending && i >= p.base)
		haveSparse := j < len(sparse)
		if !haveDense && !haveSparse {
			return true
		}
		var k Key
		var m *Message
		if haveSparse && (!haveDense || (!descending && sparse[j] < i) || (descending && sparse[j] > i)) {
			k, m = Key{pid, sparse[j]}, p.sparse[sparse[j]]
			j++
		} else {
			x := i - p.base
			k, m = Key{pid, i}, &p.chunks[x>>chunkBits][x&(chunkSize-1)]
			if descending {
				i--
			} else {
				i++
			}
		}
		if m.Outcome == 0 && m.flags == 0 {
			continue // untouched, or only read by a dropped verification read
		}
		if !yield(k, m) {
			return false
		}
	}
}

// all yields every slot without ordering (for whole-table updates).
func (t *Table) all() iter.Seq2[Key, *Message] {
	return func(yield func(Key, *Message) bool) {
		for pid, p := range t.producers {
			for c, ch := range p.chunks {
				for i := range ch {
					if !yield(Key{pid, p.base + int64(c<<chunkBits+i)}, &ch[i]) {
						return
					}
				}
			}
			for seq, m := range p.sparse {
				if !yield(Key{pid, seq}, m) {
					return
				}
			}
		}
	}
}

// Bytes is the table's memory for messages (slots, sparse entries and
// extra positions), excluding map overhead of the few side entries.
func (t *Table) Bytes() int64 {
	var n int64
	for _, p := range t.producers {
		n += int64(len(p.chunks)) * chunkSize * MessageSize
		n += int64(len(p.sparse)) * (MessageSize + 16)
	}
	for _, ps := range t.more {
		n += int64(len(ps)) * 16
	}
	return n
}

// MessageSize is the bytes a Message takes in a table.
const MessageSize = 72
