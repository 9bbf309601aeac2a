package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/brokerlab/brokerlab/internal/kbatch"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// impl opens a log of one implementation for the behavioural tests.
type impl struct {
	name string
	open func(t testing.TB, cfg Config) Log
}

var impls = []impl{
	{"memory", func(t testing.TB, cfg Config) Log {
		if cfg.Logger == nil {
			cfg.Logger = testutil.Logger(t, slog.LevelInfo)
		}
		l := NewMemory(cfg)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}},
	{"file", func(t testing.TB, cfg Config) Log {
		if cfg.Dir == "" {
			cfg.Dir = t.TempDir()
		}
		return openFile(t, cfg)
	}},
}

// forEach runs f as a subtest against every implementation.
func forEach(t *testing.T, f func(t *testing.T, open func(testing.TB, Config) Log)) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { f(t, im.open) })
	}
}

// makeBatch builds an uncompressed batch of n records of size bytes each,
// timestamped ts, ts+1, ...; the values encode tag and the record index.
func makeBatch(t testing.TB, n, size int, ts int64, tag string) []byte {
	t.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{'x'}, size)
		copy(v, fmt.Sprintf("%s/%d/", tag, i))
		recs[i] = kbatch.Record{Key: []byte(tag), Value: v, Timestamp: ts + int64(i)}
	}
	b, err := kbatch.Build(recs, kbatch.BuildOptions{BaseOffset: 0, LeaderEpoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appendN appends count batches of recs records each as leader at epoch and
// returns the stored bytes (the rewritten buffers).
func appendN(t testing.TB, l Log, count, recs int, epoch int32, ts int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range count {
		b := makeBatch(t, recs, 20, ts+int64(i)*100, fmt.Sprintf("e%d-b%d", epoch, i))
		want := l.EndOffset()
		base, err := l.AppendLeader(b, epoch)
		if err != nil {
			t.Fatalf("AppendLeader: %v", err)
		}
		if base != want {
			t.Fatalf("AppendLeader base %d, want %d", base, want)
		}
		out = append(out, b)
	}
	return out
}

// readAll reads [from, EndOffset) in chunks of maxBytes and checks that the
// result is whole, contiguous batches.
func readAll(t testing.TB, l Log, from int64, maxBytes int) []byte {
	t.Helper()
	var all []byte
	for off := from; off < l.EndOffset(); {
		b, err := l.Read(off, l.EndOffset(), maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		batches := mustSplit(t, b)
		if len(batches) == 0 {
			t.Fatalf("Read(%d) returned nothing below end %d", off, l.EndOffset())
		}
		if first := batches[0].Header; first.BaseOffset > off || first.LastOffset() < off {
			t.Fatalf("Read(%d) starts with batch %d..%d", off, first.BaseOffset, first.LastOffset())
		}
		if off > from && batches[0].Header.BaseOffset != off {
			t.Fatalf("sequential Read(%d) starts at %d", off, batches[0].Header.BaseOffset)
		}
		all = append(all, b...)
		off = batches[len(batches)-1].Header.NextOffset()
	}
	return all
}

func mustSplit(t testing.TB, b []byte) []kbatch.Batch {
	t.Helper()
	batches, err := kbatch.Split(b)
	if err != nil {
		t.Fatalf("read bytes are not whole batches: %v", err)
	}
	for i := 1; i < len(batches); i++ {
		if batches[i].Header.BaseOffset != batches[i-1].Header.NextOffset() {
			t.Fatalf("batch %d at %d after %d", i, batches[i].Header.BaseOffset, batches[i-1].Header.NextOffset())
		}
	}
	return batches
}

func concat(bs [][]byte) []byte { return bytes.Join(bs, nil) }

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

// logRecorder is a slog handler that keeps records for assertions.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of the first record with message msg.
func (r *logRecorder) find(msg string) (map[string]slog.Value, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Message == msg {
			attrs := map[string]slog.Value{}
			rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
			return attrs, true
		}
	}
	return nil, false
}

var errBadRead = errors.New("read did not start with the batch holding the offset")

func errorsIsRange(err error) bool { return errors.Is(err, ErrOffsetOutOfRange) }
