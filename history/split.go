package history

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Source is a recorded history as the analysis reads it: the figures of
// the whole history, known before any message is read, and the messages
// one shard at a time. A Table is a Source of one shard; a Split (a
// streamed file cut by key range) is one of many, so that checking it
// needs the memory of one shard, not of the whole history.
type Source interface {
	// Start is t=0 of every time in the history.
	Start() time.Time
	// HasFinal reports whether the history holds a verification read.
	HasFinal() bool
	// Receives counts the receive records of the live (final false) or
	// verification read, re-reads included.
	Receives(final bool) int64
	// Last is the latest Done or live receive, ns after Start; NoTime when
	// there is none.
	Last() int64
	// AckedEnds is, by partition, one past the highest offset any acked
	// send reported.
	AckedEnds() map[int32]int64
	// Shards yields tables over disjoint ranges of (producer, sequence)
	// keys, the highest range first, every record of a message in the
	// table of its range. A table is valid until the next one is yielded.
	Shards() iter.Seq2[*Table, error]
	// Bytes is the memory the source holds for messages now.
	Bytes() int64
	// Release frees the source's memory and files at once.
	Release()
}

// Shards yields the table itself: a table is one shard.
func (t *Table) Shards() iter.Seq2[*Table, error] {
	return func(yield func(*Table, error) bool) { yield(t, nil) }
}

// DefaultShardBits sizes a split history's shards: 2^19 sequence numbers
// of one producer, at most 36 MiB of table each.
const DefaultShardBits = 19

// bucket is one shard of a split history: one producer's sequences
// [idx<<bits, (idx+1)<<bits).
type bucket struct {
	producer int32
	idx      int64
}

func (b bucket) compare(o bucket) int {
	return cmp.Or(cmp.Compare(b.producer, o.producer), cmp.Compare(b.idx, o.idx))
}

func (b bucket) file(dir string) string {
	return filepath.Join(dir, fmt.Sprintf("%d_%d", b.producer, b.idx))
}

// Split is a streamed history cut into shard files by key range, each read
// back into a table of its own when the analysis reaches it. The whole
// history's figures (HasFinal, Receives, Last, AckedEnds) come from the
// cutting pass. It implements Source.
type Split struct {
	dir, path string
	bits      uint
	start     time.Time
	buckets   []bucket // ascending
	whole     *Table   // the whole-history figures; no messages
	maxTable  int64
}

// Split's spill buffers: a shard's records are appended to its file once
// its buffer holds splitFlush bytes, every buffer once they hold
// splitBuffers together.
const (
	splitFlush   = 256 << 10
	splitBuffers = 32 << 20
)

// SplitFile cuts the history file at path into shards of 2^bits sequence
// numbers of one producer (DefaultShardBits when bits is 0), written to a
// new directory under dir, and returns them with the file's metadata. It
// reads the file once and holds at most splitBuffers of records meanwhile.
// On ErrTruncated the shards and metadata read so far are returned with
// the error. Release removes the directory.
func SplitFile(path, dir string, bits uint) (*Split, []byte, error) {
	if bits == 0 || bits > 40 {
		bits = DefaultShardBits
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	start, err := readHeader(r)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp(dir, "history-shards-")
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	s := &Split{dir: tmp, path: path, bits: bits, start: start, whole: newTable(start, 0)}
	sp := spiller{dir: tmp, bufs: map[bucket][]byte{}}
	meta, rerr := readRecords(r, func(rec []byte) error {
		if err := s.whole.applyWhole(rec); err != nil {
			return err
		}
		if rec[0] == kindFinalBegin || rec[0] == kindFinalDrop {
			sp.broadcast(rec)
		} else {
			k := recordKey(rec)
			sp.add(bucket{k.Producer, k.Seq >> bits}, rec)
		}
		return sp.err
	})
	if err := sp.flushAll(); err != nil && rerr == nil {
		rerr = err
	}
	s.buckets = slices.SortedFunc(maps.Keys(sp.bufs), bucket.compare)
	if rerr != nil && !errors.Is(rerr, ErrTruncated) {
		s.Release()
		return nil, nil, rerr
	}
	return s, meta, rerr
}

// applyWhole updates the whole-history figures with one record, without
// storing its message.
func (t *Table) applyWhole(rec []byte) error {
	switch rec[0] {
	case kindSend:
		sr, err := sendRecord(rec)
		if err != nil {
			return err
		}
		t.countSend(sr)
	case kindReceive, kindFinal:
		_, at := receiveRecord(rec)
		t.countReceive(at, rec[0] == kindFinal)
	case kindFinalBegin:
		t.hasFinal = true
	case kindFinalDrop:
		t.hasFinal, t.finalReceives = false, 0
	}
	return nil
}

// spiller appends records to shard files through bounded buffers.
type spiller struct {
	dir   string
	bufs  map[bucket][]byte // every shard seen, with its unwritten records
	total int
	err   error
}

func (sp *spiller) add(b bucket, rec []byte) {
	buf := append(sp.bufs[b], rec...)
	sp.bufs[b] = buf
	sp.total += len(rec)
	if len(buf) >= splitFlush {
		sp.flush(b)
	}
	if sp.total >= splitBuffers {
		sp.err = sp.flushAll()
	}
}

// broadcast adds a record to every shard seen so far: dropping the
// verification read concerns the records of it before the drop, which are
// all in those shards.
func (sp *spiller) broadcast(rec []byte) {
	for b := range sp.bufs {
		sp.add(b, rec)
	}
}

func (sp *spiller) flush(b bucket) {
	buf := sp.bufs[b]
	if len(buf) == 0 || sp.err != nil {
		return
	}
	f, err := os.OpenFile(b.file(sp.dir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write(buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		sp.err = fmt.Errorf("history: split: %w", err)
		return
	}
	sp.total -= len(buf)
	sp.bufs[b] = buf[:0:0] // a shard written once rarely fills a buffer again soon
}

func (sp *spiller) flushAll() error {
	for b := range sp.bufs {
		sp.flush(b)
	}
	return sp.err
}

// Start implements Source.
func (s *Split) Start() time.Time { return s.start }

// HasFinal implements Source.
func (s *Split) HasFinal() bool { return s.whole.hasFinal }

// Receives implements Source.
func (s *Split) Receives(final bool) int64 { return s.whole.Receives(final) }

// Last implements Source.
func (s *Split) Last() int64 { return s.whole.last }

// AckedEnds implements Source.
func (s *Split) AckedEnds() map[int32]int64 { return s.whole.AckedEnds() }

// Bytes implements Source: a split holds no message in memory between
// shards.
func (s *Split) Bytes() int64 { return 0 }

// Shards implements Source: it reads each shard file into a table, yields
// it and releases it before the next.
func (s *Split) Shards() iter.Seq2[*Table, error] {
	return func(yield func(*Table, error) bool) {
		for _, b := range slices.Backward(s.buckets) {
			t, err := s.read(b)
			if err != nil {
				yield(nil, err)
				return
			}
			s.maxTable = max(s.maxTable, t.Bytes())
			ok := yield(t, nil)
			t.Release()
			if !ok {
				return
			}
		}
	}
}

func (s *Split) read(b bucket) (*Table, error) {
	f, err := os.Open(b.file(s.dir))
	if err != nil {
		return nil, fmt.Errorf("history: shard: %w", err)
	}
	defer f.Close()
	t := newTable(s.start, b.idx<<s.bits)
	if _, err := readRecords(bufio.NewReaderSize(f, 256<<10), t.apply); err != nil {
		t.Release()
		return nil, fmt.Errorf("history: shard %s: %w", b.file(s.dir), err)
	}
	return t, nil
}

// MaxShardBytes is the largest table Shards has yielded so far: the
// memory a check of the split needs for messages.
func (s *Split) MaxShardBytes() int64 { return s.maxTable }

// ShardCount is the number of shards.
func (s *Split) ShardCount() int { return len(s.buckets) }

// Release implements Source: it removes the shard files.
func (s *Split) Release() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
	s.buckets = nil
}

// Path is the history file the split was cut from.
func (s *Split) Path() string { return s.path }
