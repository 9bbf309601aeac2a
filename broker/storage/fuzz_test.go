package storage

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/brokerlab/brokerlab/internal/kbatch"
)

// fuzzSeeds returns a valid segment (three batches) and its index.
func fuzzSeeds(f *testing.F) (seg, idx []byte) {
	var stored [][]byte
	l := NewMemory(Config{IndexIntervalBytes: 64})
	defer l.Close()
	for i := range 3 {
		b := makeBatch(f, 1+i, 8, int64(i), "seed")
		if _, err := l.AppendLeader(b, int32(i)); err != nil {
			f.Fatal(err)
		}
		stored = append(stored, b)
	}
	s := l.(*segmentedLog).active()
	return concat(stored), encodeIndex(s.entries)
}

// FuzzRecovery writes arbitrary bytes as the log (and index) of a segment,
// optionally followed by a valid segment, and opens the directory. Opening
// must not fail or panic, and the log must then hold only whole, valid,
// contiguous batches that were a prefix of the file, and take appends.
func FuzzRecovery(f *testing.F) {
	seg, idx := fuzzSeeds(f)
	f.Add(seg, idx, false)
	f.Add(seg, idx, true)
	f.Add(seg[:len(seg)-9], []byte{}, false)
	f.Add(seg[:70], idx, true)
	f.Add([]byte{}, []byte("garbage"), false)
	f.Fuzz(func(t *testing.T, data, index []byte, second bool) {
		dir := t.TempDir()
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(segmentName(0, logSuffix), data)
		if len(index) > 0 {
			write(segmentName(0, indexSuffix), index)
		}
		if second {
			// A valid segment at the offset the fuzzed data claims to
			// reach, so the older-segment checks run too.
			next := int64(1)
			if h, err := kbatch.ParseHeader(data); err == nil && h.LastOffsetDelta < 1<<20 {
				next = h.NextOffset()
			}
			if next <= 0 {
				next = 1
			}
			b := makeBatch(t, 2, 4, 0, "second")
			_ = kbatch.SetBaseOffset(b, next)
			write(segmentName(next, logSuffix), b)
		}
		l, err := OpenFile(Config{Dir: dir, IndexIntervalBytes: 32, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("OpenFile: %v", err)
		}
		defer l.Close()
		got := readAll(t, l, l.StartOffset(), 1<<20)
		if _, err := kbatch.Split(got); err != nil {
			t.Fatalf("recovered log holds invalid batches: %v", err)
		}
		sl := l.(*segmentedLog)
		if first := sl.segs[0]; first.base == 0 && first.size > 0 {
			if got := got[:first.size]; !bytes.HasPrefix(data, got) {
				t.Fatal("recovered segment is not a prefix of the file")
			}
		}
		if _, err := l.AppendLeader(makeBatch(t, 1, 1, 0, "after"), l.LatestEpoch()); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzReadSegment reads an unrecovered segment of arbitrary bytes through an
// arbitrary index: lookups and reads must fail cleanly, never panic, and
// whatever they return must be whole batches by their headers.
func FuzzReadSegment(f *testing.F) {
	seg, idx := fuzzSeeds(f)
	f.Add(seg, idx, int64(2), int64(100), 1000)
	f.Add(seg, idx, int64(0), int64(1), 0)
	f.Add(seg[:100], []byte{0, 0, 0, 1, 0, 0, 0, 200}, int64(1), int64(100), -5)
	f.Fuzz(func(t *testing.T, data, index []byte, offset, maxOffset int64, maxBytes int) {
		s := newSegment(0, &memFile{b: data}, &memFile{})
		s.size, s.next = int64(len(data)), 1<<40
		for i := 0; i+indexEntrySize <= len(index); i += indexEntrySize {
			s.entries = append(s.entries, indexEntry{binary.BigEndian.Uint32(index[i:]), binary.BigEndian.Uint32(index[i+4:])})
		}
		_, _ = s.maxTimestamp()
		pos, h, err := s.find(offset)
		if err != nil {
			return
		}
		maxBytes %= 1 << 20
		out, _, err := s.readBatches(nil, pos, h.BaseOffset, maxOffset, maxBytes)
		if err != nil {
			return
		}
		for rest := out; len(rest) > 0; {
			h, err := kbatch.ParseHeader(rest)
			if err != nil || h.Size() > len(rest) {
				t.Fatalf("read returned a partial or invalid batch: %v", err)
			}
			if h.LastOffset() >= maxOffset {
				t.Fatalf("read returned batch %d..%d at or past max offset %d", h.BaseOffset, h.LastOffset(), maxOffset)
			}
			rest = rest[h.Size():]
		}
	})
}
