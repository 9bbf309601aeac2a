package storage

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// Benchmarks of the file log with fsync "never" (the page cache absorbs the
// writes, as with Kafka's defaults), batches of 1 KiB records:
//
//	go test -run '^$' -bench . -benchtime 2s ./broker/storage/
var benchBatchSizes = []int{16 << 10, 1 << 20}

func benchLog(b *testing.B) Log {
	b.Helper()
	l, err := OpenFile(Config{
		Dir:            b.TempDir(),
		SegmentBytes:   128 << 20,
		RetentionBytes: 256 << 20, // bounds the disk a long run uses
		Fsync:          FsyncNever,
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// benchBatch is a batch of size/1024 records with 1 KiB values.
func benchBatch(b *testing.B, size int) []byte {
	return makeBatch(b, size>>10, 1<<10, time.Now().UnixMilli(), "bench")
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range benchBatchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			l := benchLog(b)
			batch := benchBatch(b, size)
			b.SetBytes(int64(len(batch)))
			i := 0
			for b.Loop() {
				if _, err := l.AppendLeader(batch, 0); err != nil {
					b.Fatal(err)
				}
				if i++; i%64 == 0 {
					if err := l.ApplyRetention(time.Now()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkSequentialRead reads a 128 MiB log from start to end again and
// again with 1 MiB fetches, as a consumer does; each op is one Read.
func BenchmarkSequentialRead(b *testing.B) {
	const logBytes, fetchBytes = 128 << 20, 1 << 20
	for _, size := range benchBatchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			l := benchLog(b)
			batch := benchBatch(b, size)
			for range logBytes / len(batch) {
				if _, err := l.AppendLeader(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
			first, err := l.Read(0, l.EndOffset(), fetchBytes)
			if err != nil {
				b.Fatal(err)
			}
			perRead := int64(len(first))
			batchesPerRead := perRead / int64(len(batch))
			recsPerBatch := int64(size >> 10)
			b.SetBytes(perRead)
			off := int64(0)
			for b.Loop() {
				if off+batchesPerRead*recsPerBatch > l.EndOffset() {
					off = 0
				}
				out, err := l.Read(off, l.EndOffset(), fetchBytes)
				if err != nil || int64(len(out)) != perRead {
					b.Fatalf("Read(%d): %d bytes, %v", off, len(out), err)
				}
				off += batchesPerRead * recsPerBatch
			}
		})
	}
}
