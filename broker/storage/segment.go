package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
)

// segmentFile is what a segment needs from its .log or .index file.
// *os.File satisfies it; memFile is the in-memory stand-in.
type segmentFile interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// indexEntrySize is the size of one sparse index entry: the batch's base
// offset relative to the segment (uint32) and its byte position (uint32).
const indexEntrySize = 8

type indexEntry struct {
	rel uint32 // batch base offset - segment base offset
	pos uint32 // byte position of the batch in the .log file
}

// unknownTS marks a segment whose max timestamp has not been computed yet.
const unknownTS = math.MinInt64

// walkBlock is how much of a segment a header walk reads at once.
const walkBlock = 16 << 10

// segment is one .log file (and its .index) holding the batches with
// offsets [base, next). Fields other than maxTS are written only with the
// log's write lock held and read with at least its read lock.
type segment struct {
	base  int64
	next  int64 // offset after the last batch; base when empty
	size  int64 // bytes in the .log file
	data  segmentFile
	index segmentFile

	entries    []indexEntry
	sinceIndex int // log bytes appended since the last index entry

	// maxTS is the largest batch max timestamp (ms), unknownTS until
	// computed; readers fill it in lazily, hence atomic.
	maxTS atomic.Int64
	// modTime is the last append (or the file's mtime when opened): the age
	// of a segment whose batches carry no timestamps.
	modTime time.Time
	// synced is the .log length covered by the last successful fsync (the
	// whole file when the log was opened): what survives a power loss.
	// Syncs run under the log's read lock, hence atomic.
	synced atomic.Int64
}

func newSegment(base int64, data, index segmentFile) *segment {
	s := &segment{base: base, next: base, data: data, index: index}
	s.maxTS.Store(unknownTS)
	return s
}

// addIndex records an index entry for a batch about to be written at
// position size when enough bytes passed since the previous one.
func (s *segment) addIndex(h kbatch.Header, interval int) (indexEntry, bool) {
	defer func() { s.sinceIndex += h.Size() }()
	if s.sinceIndex < interval {
		return indexEntry{}, false
	}
	s.sinceIndex = 0
	e := indexEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(s.size)}
	s.entries = append(s.entries, e)
	return e, true
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, e.pos)
}

func encodeIndex(entries []indexEntry) []byte {
	b := make([]byte, 0, len(entries)*indexEntrySize)
	for _, e := range entries {
		b = appendIndexEntry(b, e)
	}
	return b
}

// decodeIndex parses an index file and checks its shape against a log file
// of logSize bytes: whole entries, strictly increasing offsets and
// positions, every position inside the log.
func decodeIndex(b []byte, logSize int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("size %d is not a multiple of %d", len(b), indexEntrySize)
	}
	out := make([]indexEntry, 0, len(b)/indexEntrySize)
	for i := 0; i < len(b); i += indexEntrySize {
		e := indexEntry{binary.BigEndian.Uint32(b[i:]), binary.BigEndian.Uint32(b[i+4:])}
		if n := len(out); n > 0 && (e.rel <= out[n-1].rel || e.pos <= out[n-1].pos) {
			return nil, fmt.Errorf("entry %d (%d@%d) out of order", n, e.rel, e.pos)
		}
		if int64(e.pos) >= logSize {
			return nil, fmt.Errorf("entry %d points at byte %d of a %d-byte log", len(out), e.pos, logSize)
		}
		out = append(out, e)
	}
	return out, nil
}

// lookup returns the position and base offset of the last indexed batch
// that starts at or before offset (the segment start when none does).
func (s *segment) lookup(offset int64) (pos, base int64) {
	i := sort.Search(len(s.entries), func(i int) bool {
		return s.base+int64(s.entries[i].rel) > offset
	})
	if i == 0 {
		return 0, s.base
	}
	e := s.entries[i-1]
	return int64(e.pos), s.base + int64(e.rel)
}

// walk calls fn with each batch header from position pos on, whose batch
// must start at offset want, until fn returns false or the segment ends.
// Headers are checked (magic, length, contiguous offsets) but CRCs are not.
func (s *segment) walk(pos, want int64, fn func(h kbatch.Header, pos int64) bool) error {
	var buf []byte
	bufPos := int64(0)
	block := int64(walkBlock)
	for pos < s.size {
		if pos+kbatch.HeaderSize > s.size {
			return s.corrupt(pos, "header runs past the end")
		}
		if pos < bufPos || pos+kbatch.HeaderSize > bufPos+int64(len(buf)) {
			n := min(block, s.size-pos)
			if cap(buf) < int(n) {
				buf = make([]byte, walkBlock)
			}
			buf = buf[:n]
			if _, err := s.data.ReadAt(buf, pos); err != nil {
				return fmt.Errorf("storage: read segment %d at %d: %w", s.base, pos, err)
			}
			bufPos = pos
		}
		h, err := kbatch.ParseHeader(buf[pos-bufPos:])
		if err != nil {
			return s.corrupt(pos, err.Error())
		}
		if h.BaseOffset != want || pos+int64(h.Size()) > s.size {
			return s.corrupt(pos, fmt.Sprintf("batch %d+%d (%d bytes), want offset %d", h.BaseOffset, h.LastOffsetDelta, h.Size(), want))
		}
		if !fn(h, pos) {
			return nil
		}
		// Past big batches a block would hold one header: read just that.
		block = walkBlock
		if h.Size() >= walkBlock/2 {
			block = kbatch.HeaderSize
		}
		pos += int64(h.Size())
		want = h.NextOffset()
	}
	return nil
}

func (s *segment) corrupt(pos int64, why string) error {
	return fmt.Errorf("%w: segment %d byte %d: %s", ErrCorruptBatch, s.base, pos, why)
}

// find returns the position and header of the batch that contains offset.
func (s *segment) find(offset int64) (int64, kbatch.Header, error) {
	pos, base := s.lookup(offset)
	found, hdr := int64(-1), kbatch.Header{}
	err := s.walk(pos, base, func(h kbatch.Header, p int64) bool {
		if h.LastOffset() >= offset {
			found, hdr = p, h
			return false
		}
		return true
	})
	if err != nil {
		return 0, hdr, err
	}
	if found < 0 {
		return 0, hdr, s.corrupt(s.size, fmt.Sprintf("offset %d not found below %d", offset, s.next))
	}
	return found, hdr, nil
}

// readBatches appends to out the whole batches from position pos (which
// starts at offset want) until one ends at or past maxOffset or out would
// exceed maxBytes; the first batch of an empty out is always taken.
// full reports that a limit stopped it rather than the segment's end.
func (s *segment) readBatches(out []byte, pos, want, maxOffset int64, maxBytes int) (_ []byte, full bool, err error) {
	if pos >= s.size {
		return out, false, nil
	}
	first := len(out) == 0
	n := min(int64(maxBytes-len(out)), s.size-pos)
	if first {
		n = max(n, min(kbatch.HeaderSize, s.size-pos))
	}
	if n < kbatch.HeaderSize {
		if first {
			return nil, false, s.corrupt(pos, "header runs past the end")
		}
		return out, true, nil
	}
	start := len(out)
	out, err = s.readInto(out, pos, n)
	if err != nil {
		return nil, false, err
	}
	chunk := out[start:]
	used := 0
	for used+kbatch.HeaderSize <= len(chunk) {
		h, err := kbatch.ParseHeader(chunk[used:])
		if err != nil || h.BaseOffset != want || pos+int64(used+h.Size()) > s.size {
			return nil, false, s.corrupt(pos+int64(used), fmt.Sprintf("bad batch header in read (want offset %d): %v", want, err))
		}
		if h.LastOffset() >= maxOffset {
			return out[:start+used], true, nil
		}
		if used+h.Size() > len(chunk) {
			if !first || used > 0 {
				return out[:start+used], true, nil
			}
			// The first batch is larger than maxBytes: take it whole.
			out, err = s.readInto(out, pos+int64(len(chunk)), int64(h.Size()-len(chunk)))
			if err != nil {
				return nil, false, err
			}
			return out, true, nil
		}
		used += h.Size()
		want = h.NextOffset()
	}
	full = pos+int64(used) < s.size
	return out[:start+used], full, nil
}

// readInto appends n bytes of the segment from pos to out.
func (s *segment) readInto(out []byte, pos, n int64) ([]byte, error) {
	start := len(out)
	out = append(out, make([]byte, n)...)
	if _, err := s.data.ReadAt(out[start:], pos); err != nil {
		return nil, fmt.Errorf("storage: read segment %d at %d: %w", s.base, pos, err)
	}
	return out, nil
}

// maxTimestamp returns the segment's largest batch max timestamp, walking its
// headers the first time.
func (s *segment) maxTimestamp() (int64, error) {
	if ts := s.maxTS.Load(); ts != unknownTS {
		return ts, nil
	}
	ts := int64(-1)
	err := s.walk(0, s.base, func(h kbatch.Header, _ int64) bool {
		ts = max(ts, h.MaxTimestamp)
		return true
	})
	if err != nil {
		return 0, err
	}
	s.maxTS.Store(ts)
	return ts, nil
}

// noteAppend updates the max timestamp of the active segment.
func (s *segment) noteAppend(h kbatch.Header, now time.Time) {
	if ts := s.maxTS.Load(); ts != unknownTS {
		s.maxTS.Store(max(ts, h.MaxTimestamp))
	}
	s.modTime = now
}

// segState is what writeLocked restores when a write fails.
type segState struct {
	size, next     int64
	entries, since int
	maxTS          int64
}

func (s *segment) state() segState {
	return segState{s.size, s.next, len(s.entries), s.sinceIndex, s.maxTS.Load()}
}

// restore puts the segment back as it was at st, cutting the files too.
func (s *segment) restore(st segState) error {
	s.size, s.next, s.entries, s.sinceIndex = st.size, st.next, s.entries[:st.entries], st.since
	s.maxTS.Store(st.maxTS)
	return errors.Join(s.data.Truncate(st.size), s.index.Truncate(int64(st.entries)*indexEntrySize))
}

// truncate cuts the segment at byte pos, where the batch starting at offset
// next begins.
func (s *segment) truncate(pos, next int64) error {
	n := sort.Search(len(s.entries), func(i int) bool { return int64(s.entries[i].pos) >= pos })
	s.entries = s.entries[:n]
	s.size, s.next = pos, next
	s.sinceIndex = int(pos)
	if n > 0 {
		s.sinceIndex = int(pos - int64(s.entries[n-1].pos))
	}
	s.maxTS.Store(unknownTS)
	s.synced.Store(min(s.synced.Load(), pos))
	return errors.Join(s.data.Truncate(pos), s.index.Truncate(int64(n)*indexEntrySize))
}

// cutToSynced closes the segment's files without syncing them and cuts the
// .log to its synced length, the index to the entries inside it: what the
// disk holds after a power loss.
func (s *segment) cutToSynced() error {
	keep := s.synced.Load()
	n := sort.Search(len(s.entries), func(i int) bool { return int64(s.entries[i].pos) >= keep })
	var errs []error
	if keep < s.size {
		errs = append(errs, s.data.Truncate(keep), s.index.Truncate(int64(n)*indexEntrySize))
	}
	return errors.Join(append(errs, s.close())...)
}

// newest is the time of the segment's newest batch: its max timestamp, or
// the last write when batches carry none.
func (s *segment) newest() (time.Time, error) {
	ts, err := s.maxTimestamp()
	if err != nil {
		return time.Time{}, err
	}
	if ts < 0 {
		return s.modTime, nil
	}
	return time.UnixMilli(ts), nil
}

func (s *segment) close() error {
	err1 := s.data.Close()
	err2 := s.index.Close()
	if err1 != nil {
		return err1
	}
	return err2
}
