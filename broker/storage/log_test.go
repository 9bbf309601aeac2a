package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
)

func TestAppendLeaderAndRead(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{IndexIntervalBytes: 100})
		if l.StartOffset() != 0 || l.EndOffset() != 0 || l.LatestEpoch() != -1 {
			t.Fatalf("new log: start %d end %d epoch %d", l.StartOffset(), l.EndOffset(), l.LatestEpoch())
		}
		stored := appendN(t, l, 10, 3, 2, 1000) // offsets 0..29, 3 per batch
		if l.EndOffset() != 30 || l.LatestEpoch() != 2 {
			t.Fatalf("end %d epoch %d, want 30 and 2", l.EndOffset(), l.LatestEpoch())
		}
		for i, b := range stored {
			h, err := kbatch.ParseHeader(b)
			if err != nil || h.BaseOffset != int64(3*i) || h.PartitionLeaderEpoch != 2 {
				t.Fatalf("batch %d not rewritten in place: %+v %v", i, h, err)
			}
		}
		if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, concat(stored)) {
			t.Fatal("read bytes differ from the stored batches")
		}
		// Every offset finds the batch that contains it.
		for off := int64(0); off < 30; off++ {
			b, err := l.Read(off, 30, 1)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			if !bytes.Equal(b, stored[off/3]) {
				t.Fatalf("Read(%d, maxBytes 1) did not return exactly batch %d", off, off/3)
			}
		}
	})
}

func TestReadLimits(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{})
		stored := appendN(t, l, 5, 2, 0, 0) // offsets 0..9
		size := len(stored[0])

		tests := []struct {
			name              string
			offset, maxOffset int64
			maxBytes          int
			want              []byte
			err               error
		}{
			{"everything", 0, 10, 1 << 20, concat(stored), nil},
			{"from middle of a batch", 3, 10, 1 << 20, concat(stored[1:]), nil},
			{"max offset excludes a batch that reaches it", 0, 5, 1 << 20, concat(stored[:2]), nil},
			{"max offset at a batch end", 0, 6, 1 << 20, concat(stored[:3]), nil},
			{"max offset inside the first batch", 4, 5, 1 << 20, nil, nil},
			{"max bytes cuts at a batch boundary", 0, 10, 2*size + size/2, concat(stored[:2]), nil},
			{"max bytes below one batch still gives one", 2, 10, 10, stored[1], nil},
			{"zero max bytes gives one", 2, 10, 0, stored[1], nil},
			{"at end", 10, 10, 1 << 20, nil, nil},
			{"past end", 11, 20, 1 << 20, nil, ErrOffsetOutOfRange},
			{"negative", -1, 10, 1 << 20, nil, ErrOffsetOutOfRange},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Read(tc.offset, tc.maxOffset, tc.maxBytes)
				if tc.err != nil {
					wantErr(t, err, tc.err)
					return
				}
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("got %d bytes, want %d", len(got), len(tc.want))
				}
			})
		}
	})
}

func TestAppendRejectsBadInput(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{})
		stored := appendN(t, l, 2, 2, 1, 0)
		good := makeBatch(t, 2, 10, 0, "good")
		flipped := bytes.Clone(good)
		flipped[len(flipped)-1] ^= 0xff
		tests := []struct {
			name string
			buf  []byte
		}{
			{"garbage", []byte("not a record batch at all, not even close to one")},
			{"bad crc", flipped},
			{"truncated batch", good[:len(good)-1]},
			{"valid batch then a torn one", append(bytes.Clone(good), good[:70]...)},
			{"empty", nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := l.AppendLeader(bytes.Clone(tc.buf), 1)
				wantErr(t, err, ErrCorruptBatch)
				if tc.buf != nil {
					wantErr(t, l.AppendFollower(bytes.Clone(tc.buf)), ErrCorruptBatch)
				}
				if l.EndOffset() != 4 {
					t.Fatalf("end offset moved to %d", l.EndOffset())
				}
				if !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored)) {
					t.Fatal("log content changed")
				}
			})
		}
		_, err := l.AppendLeader(makeBatch(t, 1, 1, 0, "old"), 0)
		wantErr(t, err, ErrEpochRegression)
	})
}

func TestAppendFollower(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		leader := open(t, Config{})
		var stored [][]byte
		stored = append(stored, appendN(t, leader, 3, 2, 1, 0)...)
		stored = append(stored, appendN(t, leader, 2, 3, 4, 0)...)
		f := open(t, Config{})
		// Followers take the leader's bytes as they are, several per call.
		if err := f.AppendFollower(concat(stored[:2])); err != nil {
			t.Fatalf("AppendFollower: %v", err)
		}
		wantErr(t, f.AppendFollower(stored[3]), ErrNotContiguous)
		wantErr(t, f.AppendFollower(concat([][]byte{stored[2], stored[4]})), ErrNotContiguous)
		if err := f.AppendFollower(concat(stored[2:])); err != nil {
			t.Fatalf("AppendFollower: %v", err)
		}
		if f.EndOffset() != leader.EndOffset() || f.LatestEpoch() != 4 {
			t.Fatalf("follower end %d epoch %d, leader end %d", f.EndOffset(), f.LatestEpoch(), leader.EndOffset())
		}
		if !bytes.Equal(readAll(t, f, 0, 100), concat(stored)) {
			t.Fatal("follower bytes differ from the leader's")
		}
		if err := f.AppendFollower(nil); err != nil {
			t.Fatalf("empty AppendFollower: %v", err)
		}
		old := makeBatch(t, 1, 1, 0, "old")
		_ = kbatch.SetBaseOffset(old, f.EndOffset())
		_ = kbatch.SetLeaderEpoch(old, 2)
		wantErr(t, f.AppendFollower(old), ErrEpochRegression)
	})
}

func TestEpochEndOffset(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{})
		if e, o := l.EpochEndOffset(5); e != -1 || o != -1 {
			t.Fatalf("empty log: (%d, %d)", e, o)
		}
		appendN(t, l, 5, 2, 1, 0) // epoch 1: [0, 10)
		appendN(t, l, 5, 2, 3, 0) // epoch 3: [10, 20)
		appendN(t, l, 1, 2, 3, 0) // epoch 3 continues: [20, 22)
		appendN(t, l, 4, 2, 4, 0) // epoch 4: [22, 30)
		check := func(epoch, wantEpoch int32, wantEnd int64) {
			t.Helper()
			if e, o := l.EpochEndOffset(epoch); e != wantEpoch || o != wantEnd {
				t.Fatalf("EpochEndOffset(%d) = (%d, %d), want (%d, %d)", epoch, e, o, wantEpoch, wantEnd)
			}
		}
		check(0, -1, -1)
		check(1, 1, 10)
		check(2, 1, 10)
		check(3, 3, 22)
		check(4, 4, 30)
		check(9, 4, 30)

		// Truncation drops the epochs it removes entirely.
		if err := l.Truncate(21); err != nil { // inside [20, 22): cut at 20
			t.Fatal(err)
		}
		if l.EndOffset() != 20 || l.LatestEpoch() != 3 {
			t.Fatalf("after truncate: end %d epoch %d", l.EndOffset(), l.LatestEpoch())
		}
		check(4, 3, 20)
		appendN(t, l, 1, 1, 6, 0)
		check(5, 3, 20)
		check(6, 6, 21)
	})
}

func TestTruncate(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{SegmentBytes: 300, IndexIntervalBytes: 100})
		stored := appendN(t, l, 20, 2, 1, 0) // ~2 batches per segment
		size := len(stored[0])
		if size*2 > 300 || size*3 <= 300 {
			t.Fatalf("batch size %d does not give 2 batches per segment", size)
		}
		if err := l.Truncate(40); err != nil { // at end: nothing
			t.Fatal(err)
		}
		if err := l.Truncate(31); err != nil { // inside batch 15 (30,31)
			t.Fatal(err)
		}
		if l.EndOffset() != 30 {
			t.Fatalf("end %d after Truncate(31), want 30", l.EndOffset())
		}
		if err := l.Truncate(24); err != nil { // segment boundary: batch 12 starts a segment
			t.Fatal(err)
		}
		if l.EndOffset() != 24 || !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored[:12])) {
			t.Fatalf("end %d after Truncate(24)", l.EndOffset())
		}
		more := appendN(t, l, 3, 2, 2, 0)
		want := concat(append(append([][]byte{}, stored[:12]...), more...))
		if !bytes.Equal(readAll(t, l, 0, 1<<20), want) {
			t.Fatal("appends after truncation are wrong")
		}
		if l.EndOffset() != 30 || l.LatestEpoch() != 2 {
			t.Fatalf("end %d epoch %d", l.EndOffset(), l.LatestEpoch())
		}
		wantErr(t, l.Truncate(-1), ErrOffsetOutOfRange)
		// To the start: empty, same start.
		if err := l.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != 0 || l.EndOffset() != 0 || l.LatestEpoch() != -1 {
			t.Fatalf("after Truncate(0): start %d end %d epoch %d", l.StartOffset(), l.EndOffset(), l.LatestEpoch())
		}
		if b, err := l.Read(0, 100, 100); err != nil || b != nil {
			t.Fatalf("Read on empty log: %d bytes, %v", len(b), err)
		}
	})
}

func TestResetAndTruncateBelowStart(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{})
		appendN(t, l, 3, 2, 1, 0)
		r, ok := l.(Resetter)
		if !ok {
			t.Fatal("log has no Reset")
		}
		if err := r.Reset(100); err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != 100 || l.EndOffset() != 100 || l.LatestEpoch() != -1 {
			t.Fatalf("after Reset(100): start %d end %d epoch %d", l.StartOffset(), l.EndOffset(), l.LatestEpoch())
		}
		_, err := l.Read(50, 200, 100)
		wantErr(t, err, ErrOffsetOutOfRange)
		stored := appendN(t, l, 2, 2, 2, 0)
		if b, err := l.Read(100, 200, 1<<20); err != nil || !bytes.Equal(b, concat(stored)) {
			t.Fatalf("read after reset: %v", err)
		}
		// A follower of a leader whose log starts lower truncates below start.
		if err := l.Truncate(40); err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != 40 || l.EndOffset() != 40 {
			t.Fatalf("after Truncate(40): start %d end %d", l.StartOffset(), l.EndOffset())
		}
	})
}

func TestRollAndIndex(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{SegmentBytes: 4096, IndexIntervalBytes: 300})
		stored := appendN(t, l, 200, 3, 1, 0)
		if n := len(l.(*segmentedLog).segs); n < 5 {
			t.Fatalf("%d segments, expected rolling", n)
		}
		for _, max := range []int{1, 500, 4000, 1 << 20} {
			if !bytes.Equal(readAll(t, l, 0, max), concat(stored)) {
				t.Fatalf("readAll(maxBytes %d) differs", max)
			}
		}
		for off := int64(0); off < l.EndOffset(); off += 7 {
			b, err := l.Read(off, l.EndOffset(), 1)
			if err != nil || !bytes.Equal(b, stored[off/3]) {
				t.Fatalf("Read(%d): %v", off, err)
			}
		}
	})
}

func TestOffsetForTime(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{SegmentBytes: 400})
		// Batch i holds offsets 2i, 2i+1 with timestamps 1000+100i and +1.
		appendN(t, l, 10, 2, 1, 1000)
		// A late batch with an old timestamp does not hide later ones.
		old := makeBatch(t, 1, 10, 500, "old")
		if _, err := l.AppendLeader(old, 1); err != nil {
			t.Fatal(err)
		}
		tests := []struct{ ts, want int64 }{
			{0, 0}, {1000, 0}, {1001, 0}, {1002, 2}, {1101, 2}, {1150, 4}, {1901, 18}, {1902, 21}, {5000, 21},
		}
		for _, tc := range tests {
			got, err := l.OffsetForTime(tc.ts)
			if err != nil || got != tc.want {
				t.Fatalf("OffsetForTime(%d) = %d, %v; want %d", tc.ts, got, err, tc.want)
			}
		}
	})
}

func TestRetention(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
			l := open(t, Config{SegmentBytes: 1000, RetentionBytes: 2500})
			stored := appendN(t, l, 30, 2, 1, 0)
			sl := l.(*segmentedLog)
			before := len(sl.segs)
			if err := l.ApplyRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, s := range sl.segs {
				total += s.size
			}
			if total < 2500 || total-sl.segs[0].size >= 2500 || len(sl.segs) >= before {
				t.Fatalf("kept %d bytes in %d segments (of %d)", total, len(sl.segs), before)
			}
			start := l.StartOffset()
			if start == 0 || start != sl.segs[0].base {
				t.Fatalf("start offset %d", start)
			}
			_, err := l.Read(start-1, l.EndOffset(), 100)
			wantErr(t, err, ErrOffsetOutOfRange)
			if !bytes.Equal(readAll(t, l, start, 1<<20), concat(stored[start/2:])) {
				t.Fatal("retained data differs")
			}
			if e, o := l.EpochEndOffset(1); e != 1 || o != l.EndOffset() {
				t.Fatalf("EpochEndOffset after retention: (%d, %d)", e, o)
			}
		})
	})
	t.Run("age", func(t *testing.T) {
		forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
			l := open(t, Config{SegmentBytes: 1000, RetentionAge: time.Hour})
			now := time.UnixMilli(10_000_000)
			old := now.Add(-2 * time.Hour).UnixMilli()
			appendN(t, l, 10, 2, 1, old)             // old segments
			appendN(t, l, 10, 2, 1, now.UnixMilli()) // fresh ones
			if err := l.ApplyRetention(now); err != nil {
				t.Fatal(err)
			}
			// Everything up to the first segment holding a fresh batch goes.
			b, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			batches := mustSplit(t, b)
			if l.StartOffset() == 0 || batches[len(batches)-1].Header.MaxTimestamp < now.UnixMilli() {
				t.Fatalf("start %d", l.StartOffset())
			}
			sl := l.(*segmentedLog)
			if ts, _ := sl.segs[0].maxTimestamp(); ts < now.UnixMilli() {
				t.Fatalf("oldest kept segment has max timestamp %d, older than the limit", ts)
			}
			// Nothing is older than an hour at now-30m... but the active
			// segment is never deleted, even when everything is old.
			if err := l.ApplyRetention(now.Add(10 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			if len(sl.segs) != 1 || l.EndOffset() != 40 {
				t.Fatalf("%d segments, end %d", len(sl.segs), l.EndOffset())
			}
		})
	})
}

func TestClosed(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{})
		appendN(t, l, 2, 1, 0, 0)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		_, err := l.AppendLeader(makeBatch(t, 1, 1, 0, "x"), 0)
		wantErr(t, err, ErrClosed)
		_, err = l.Read(0, 2, 100)
		wantErr(t, err, ErrClosed)
		wantErr(t, l.Truncate(0), ErrClosed)
		wantErr(t, l.Sync(), ErrClosed)
		wantErr(t, l.ApplyRetention(time.Now()), ErrClosed)
		_, err = l.OffsetForTime(0)
		wantErr(t, err, ErrClosed)
		if l.EndOffset() != 2 {
			t.Fatalf("end offset after close %d", l.EndOffset())
		}
	})
}

// TestConcurrentReaders runs one appender (which also truncates and applies
// retention now and then) against readers that check every read is whole,
// contiguous batches starting at the offset asked for. Run with -race.
func TestConcurrentReaders(t *testing.T) {
	forEach(t, func(t *testing.T, open func(testing.TB, Config) Log) {
		l := open(t, Config{SegmentBytes: 2048, IndexIntervalBytes: 256, RetentionBytes: 16 << 10})
		var stop atomic.Bool
		var truncations atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for r := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 1))
				for !stop.Load() {
					seen := truncations.Load()
					start, end := l.StartOffset(), l.EndOffset()
					if end == start {
						continue
					}
					off := start + rng.Int64N(end-start)
					b, err := l.Read(off, end, 1+rng.IntN(4096))
					if err != nil {
						// Retention or truncation may have moved past off.
						if errorsIsRange(err) {
							continue
						}
						errs <- err
						return
					}
					batches, err := kbatch.Split(b)
					if err != nil {
						errs <- err
						return
					}
					if len(batches) == 0 {
						// A truncation since end was read may have made off
						// the log end: nothing to read there is right.
						if truncations.Load() != seen {
							continue
						}
						errs <- fmt.Errorf("read at %d of [%d, %d) returned no batch", off, l.StartOffset(), l.EndOffset())
						return
					}
					if h := batches[0].Header; h.BaseOffset > off || h.LastOffset() < off {
						// Truncated and re-appended in between: the batch that
						// now holds off must still contain it.
						errs <- errBadRead
						return
					}
				}
			}()
		}
		for i := range 400 {
			appendN(t, l, 1, 1+i%4, 1, int64(i))
			if i%50 == 49 {
				truncations.Add(1)
				if err := l.Truncate(l.EndOffset() - 3); err != nil {
					t.Error(err)
				}
				if err := l.ApplyRetention(time.Now()); err != nil {
					t.Error(err)
				}
			}
		}
		stop.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("reader: %v", err)
		}
	})
}
