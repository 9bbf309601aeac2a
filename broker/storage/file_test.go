package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func openFile(t testing.TB, cfg Config) Log {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger(t, slog.LevelInfo)
	}
	l, err := OpenFile(cfg)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func closeLog(t testing.TB, l Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, segmentName(base, suffix))
}

// copyDir copies the regular files of src into a new directory.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{Dir: "x", SegmentBytes: -1},
		{Dir: "x", SegmentBytes: 1 << 32},
		{Dir: "x", IndexIntervalBytes: -1},
		{Dir: "x", RetentionAge: -time.Second},
		{Dir: "x", Fsync: "sometimes"},
		{Dir: "x", FsyncInterval: -1},
	}
	for _, cfg := range bad {
		if cfg.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", cfg)
		}
		if _, err := OpenFile(cfg); err == nil {
			t.Errorf("OpenFile(%+v) succeeded", cfg)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(Config{}); !errors.Is(err, errNoDir) {
		t.Fatalf("OpenFile without dir: %v", err)
	}
	// A memory log falls back to defaults rather than failing.
	l := NewMemory(Config{SegmentBytes: -5})
	defer l.Close()
	if _, err := l.AppendLeader(makeBatch(t, 1, 1, 0, "x"), 0); err != nil {
		t.Fatal(err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 1000, IndexIntervalBytes: 200}
	l := openFile(t, cfg)
	var stored [][]byte
	stored = append(stored, appendN(t, l, 10, 2, 1, 0)...)
	stored = append(stored, appendN(t, l, 10, 3, 5, 0)...)
	end := l.EndOffset()
	closeLog(t, l)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Logf("files: %v", names)

	l = openFile(t, cfg)
	if l.EndOffset() != end || l.StartOffset() != 0 || l.LatestEpoch() != 5 {
		t.Fatalf("reopened: start %d end %d epoch %d", l.StartOffset(), l.EndOffset(), l.LatestEpoch())
	}
	if e, o := l.EpochEndOffset(1); e != 1 || o != 20 {
		t.Fatalf("EpochEndOffset(1) = (%d, %d)", e, o)
	}
	if !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored)) {
		t.Fatal("reopened log differs")
	}
	more := appendN(t, l, 3, 1, 6, 0)
	closeLog(t, l)
	l = openFile(t, cfg)
	if !bytes.Equal(readAll(t, l, 0, 1<<20), concat(append(stored, more...))) {
		t.Fatal("log differs after append, close, reopen")
	}
}

// TestTornLastBatch cuts the last segment at every byte of its last batch
// and reopens: every earlier batch must be intact, the torn one gone, and
// the log must take appends again.
func TestTornLastBatch(t *testing.T) {
	src := t.TempDir()
	cfg := Config{Dir: src, SegmentBytes: 1000, IndexIntervalBytes: 100}
	l := openFile(t, cfg)
	stored := appendN(t, l, 11, 2, 3, 0)
	stored = append(stored, appendN(t, l, 1, 4, 4, 0)...) // the last batch starts epoch 4
	last := l.(*segmentedLog).active()
	lastBase := last.base
	closeLog(t, l)

	logFile := segPath(src, lastBase, logSuffix)
	full, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lastLen := len(stored[len(stored)-1])
	if !bytes.HasSuffix(full, stored[len(stored)-1]) {
		t.Fatal("last batch is not at the end of the active segment")
	}
	want := concat(stored[:len(stored)-1])
	root := t.TempDir()
	for cut := len(full) - lastLen; cut < len(full); cut++ {
		dir := filepath.Join(root, fmt.Sprint(cut))
		copyDir(t, src, dir)
		if err := os.WriteFile(segPath(dir, lastBase, logSuffix), full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		rec := &logRecorder{}
		c := cfg
		c.Dir, c.Logger = dir, slog.New(rec)
		l, err := OpenFile(c)
		if err != nil {
			t.Fatalf("cut %d: OpenFile: %v", cut, err)
		}
		if l.EndOffset() != 22 || l.LatestEpoch() != 3 {
			t.Fatalf("cut %d: end %d epoch %d, want 22 and 3", cut, l.EndOffset(), l.LatestEpoch())
		}
		if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
			t.Fatalf("cut %d: earlier batches damaged", cut)
		}
		if cut > len(full)-lastLen {
			attrs, ok := rec.find("truncating corrupt segment tail")
			if !ok || attrs["truncated-bytes"].Int64() != int64(cut-(len(full)-lastLen)) || attrs["segment"].Int64() != lastBase {
				t.Fatalf("cut %d: truncation not logged right: %v", cut, attrs)
			}
		}
		if _, err := l.AppendLeader(makeBatch(t, 1, 5, 0, "after"), 4); err != nil {
			t.Fatalf("cut %d: append after recovery: %v", cut, err)
		}
		if e, o := l.EpochEndOffset(3); e != 3 || o != 22 {
			t.Fatalf("cut %d: EpochEndOffset(3) = (%d, %d)", cut, e, o)
		}
		closeLog(t, l)
	}
}

func TestCorruptTail(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir}
	l := openFile(t, cfg)
	stored := appendN(t, l, 6, 2, 1, 0)
	closeLog(t, l)
	path := segPath(dir, 0, logSuffix)
	b, _ := os.ReadFile(path)
	// Flip a record byte of batch 4: batches 4 and 5 go, 0-3 stay.
	pos := len(concat(stored[:4])) + kbatch.HeaderSize + 3
	b[pos] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	cfg.Logger = slog.New(rec)
	l = openFile(t, cfg)
	if l.EndOffset() != 8 || !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored[:4])) {
		t.Fatalf("end %d after corrupt tail", l.EndOffset())
	}
	attrs, ok := rec.find("truncating corrupt segment tail")
	if !ok || attrs["position"].Int64() != int64(len(concat(stored[:4]))) {
		t.Fatalf("not logged: %v", attrs)
	}
	if r := attrs["reason"].String(); !bytes.Contains([]byte(r), []byte("crc")) {
		t.Fatalf("reason %q does not name the crc", r)
	}
}

func TestIndexRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(path string) error
	}{
		{"missing", os.Remove},
		{"garbage", func(p string) error { return os.WriteFile(p, []byte("garbage!garbage!garb"), 0o644) }},
		{"out of order", func(p string) error {
			return os.WriteFile(p, encodeIndex([]indexEntry{{5, 400}, {3, 500}}), 0o644)
		}},
		{"points past the log", func(p string) error {
			return os.WriteFile(p, encodeIndex([]indexEntry{{5, 1 << 30}}), 0o644)
		}},
		{"wrong but well formed", func(p string) error {
			return os.WriteFile(p, encodeIndex([]indexEntry{{1, 7}, {2, 9}}), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, SegmentBytes: 2000, IndexIntervalBytes: 150}
			l := openFile(t, cfg)
			stored := appendN(t, l, 40, 2, 1, 0)
			segs := l.(*segmentedLog).segs
			if len(segs) < 3 {
				t.Fatalf("%d segments", len(segs))
			}
			first, lastBase := segs[0].base, segs[len(segs)-1].base
			closeLog(t, l)
			wantFirst, _ := os.ReadFile(segPath(dir, first, indexSuffix))
			wantLast, _ := os.ReadFile(segPath(dir, lastBase, indexSuffix))
			for _, base := range []int64{first, lastBase} {
				if err := tc.damage(segPath(dir, base, indexSuffix)); err != nil {
					t.Fatal(err)
				}
			}
			rec := &logRecorder{}
			cfg.Logger = slog.New(rec)
			l = openFile(t, cfg)
			if !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored)) {
				t.Fatal("log differs")
			}
			for off := int64(0); off < l.EndOffset(); off++ {
				if b, err := l.Read(off, l.EndOffset(), 1); err != nil || !bytes.Equal(b, stored[off/2]) {
					t.Fatalf("Read(%d): %v", off, err)
				}
			}
			if _, ok := rec.find("rebuilt index"); !ok {
				t.Fatal("rebuild not logged")
			}
			closeLog(t, l)
			for base, want := range map[int64][]byte{first: wantFirst, lastBase: wantLast} {
				if got, _ := os.ReadFile(segPath(dir, base, indexSuffix)); !bytes.Equal(got, want) {
					t.Fatalf("index of segment %d not rebuilt: %d bytes, want %d", base, len(got), len(want))
				}
			}
		})
	}
}

// TestCorruptOlderSegment: damage in a segment that is not the last cuts the
// log there, because offsets after a hole cannot be served.
func TestCorruptOlderSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 1000}
	l := openFile(t, cfg)
	stored := appendN(t, l, 30, 2, 1, 0)
	segs := l.(*segmentedLog).segs
	second := segs[1]
	nBefore := int(second.base / 2) // batches before segment 1
	closeLog(t, l)
	path := segPath(dir, second.base, logSuffix)
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &logRecorder{}
	cfg.Logger = slog.New(rec)
	l = openFile(t, cfg)
	sl := l.(*segmentedLog)
	if len(sl.segs) != 2 {
		t.Fatalf("%d segments left, want 2", len(sl.segs))
	}
	nSecond := len(b) / len(stored[0])
	want := concat(stored[:nBefore+nSecond-1])
	if !bytes.Equal(readAll(t, l, 0, 1<<20), want) {
		t.Fatalf("log after older-segment damage: end %d", l.EndOffset())
	}
	if _, ok := rec.find("dropping segments after a gap or corruption"); !ok {
		t.Fatal("drop not logged")
	}
	for _, s := range segs[2:] {
		if _, err := os.Stat(segPath(dir, s.base, logSuffix)); !os.IsNotExist(err) {
			t.Fatalf("segment %d still on disk", s.base)
		}
	}
	appendN(t, l, 1, 1, 1, 0)
}

func TestLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	l := openFile(t, Config{Dir: dir})
	appendN(t, l, 2, 1, 1, 0)
	closeLog(t, l)
	orphan := segPath(dir, 999, indexSuffix)
	tmp := filepath.Join(dir, epochsFile+tmpSuffix)
	other := filepath.Join(dir, "README")
	for _, p := range []string{orphan, tmp, other} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l = openFile(t, Config{Dir: dir})
	if l.EndOffset() != 2 {
		t.Fatalf("end %d", l.EndOffset())
	}
	for _, p := range []string{orphan, tmp} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s not removed", p)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("unrelated file touched: %v", err)
	}
}

func TestEpochCheckpointRecovery(t *testing.T) {
	build := func(t *testing.T) (string, Config) {
		dir := t.TempDir()
		cfg := Config{Dir: dir, SegmentBytes: 700}
		l := openFile(t, cfg)
		appendN(t, l, 8, 2, 1, 0) // [0,16) epoch 1
		appendN(t, l, 8, 2, 2, 0) // [16,32) epoch 2
		appendN(t, l, 2, 2, 7, 0) // [32,36) epoch 7
		closeLog(t, l)
		return dir, cfg
	}
	check := func(t *testing.T, l Log) {
		t.Helper()
		for _, c := range []struct {
			epoch, wantEpoch int32
			wantEnd          int64
		}{{0, -1, -1}, {1, 1, 16}, {2, 2, 32}, {5, 2, 32}, {7, 7, 36}} {
			if e, o := l.EpochEndOffset(c.epoch); e != c.wantEpoch || o != c.wantEnd {
				t.Fatalf("EpochEndOffset(%d) = (%d, %d), want (%d, %d)", c.epoch, e, o, c.wantEpoch, c.wantEnd)
			}
		}
	}
	t.Run("intact", func(t *testing.T) {
		dir, cfg := build(t)
		check(t, openFile(t, Config{Dir: dir, SegmentBytes: cfg.SegmentBytes}))
	})
	for name, damage := range map[string]func(string) error{
		"missing":   os.Remove,
		"garbage":   func(p string) error { return os.WriteFile(p, []byte("0\n3\n1 0\nxx"), 0o644) },
		"truncated": func(p string) error { return os.WriteFile(p, []byte("0\n3\n1 0\n"), 0o644) },
		"stale":     func(p string) error { return os.WriteFile(p, []byte("0\n1\n1 0\n"), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir, cfg := build(t)
			if err := damage(filepath.Join(dir, epochsFile)); err != nil {
				t.Fatal(err)
			}
			l := openFile(t, cfg)
			if name != "stale" {
				check(t, l)
			} else if l.LatestEpoch() != 7 {
				// A well-formed but stale checkpoint is trusted before the
				// last segment; the last segment's epochs still come back.
				t.Fatalf("latest epoch %d", l.LatestEpoch())
			}
			closeLog(t, l)
			raw, err := os.ReadFile(filepath.Join(dir, epochsFile))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeEpochs(raw); err != nil {
				t.Fatalf("checkpoint not rewritten: %v", err)
			}
		})
	}
	t.Run("truncated tail drops its epoch", func(t *testing.T) {
		dir, cfg := build(t)
		l := openFile(t, cfg)
		last := l.(*segmentedLog).active()
		closeLog(t, l)
		// Cut the active segment at the start of epoch 7 (offset 32).
		b, _ := os.ReadFile(segPath(dir, last.base, logSuffix))
		pos := 0
		for pos < len(b) {
			h, _ := kbatch.ParseHeader(b[pos:])
			if h.PartitionLeaderEpoch == 7 {
				break
			}
			pos += h.Size()
		}
		if err := os.WriteFile(segPath(dir, last.base, logSuffix), b[:pos+30], 0o644); err != nil {
			t.Fatal(err)
		}
		l = openFile(t, cfg)
		if l.EndOffset() != 32 || l.LatestEpoch() != 2 {
			t.Fatalf("end %d epoch %d", l.EndOffset(), l.LatestEpoch())
		}
		if e, o := l.EpochEndOffset(7); e != 2 || o != 32 {
			t.Fatalf("EpochEndOffset(7) = (%d, %d)", e, o)
		}
	})
}

func TestFsyncPolicies(t *testing.T) {
	for _, p := range []FsyncPolicy{FsyncNever, FsyncInterval, FsyncAlways} {
		t.Run(string(p), func(t *testing.T) {
			dir := t.TempDir()
			l := openFile(t, Config{Dir: dir, Fsync: p, FsyncInterval: 5 * time.Millisecond, SegmentBytes: 500})
			stored := appendN(t, l, 10, 2, 1, 0)
			sl := l.(*segmentedLog)
			switch p {
			case FsyncAlways:
				if sl.dirty.Load() {
					t.Fatal("always: dirty after append")
				}
			case FsyncInterval:
				testutil.Eventually(t, 5*time.Second, func() error {
					if sl.dirty.Load() {
						return errors.New("interval syncer has not synced")
					}
					return nil
				})
			case FsyncNever:
				if !sl.dirty.Load() {
					t.Fatal("never: synced without being asked")
				}
				if err := l.Sync(); err != nil || sl.dirty.Load() {
					t.Fatalf("Sync: %v", err)
				}
			}
			closeLog(t, l)
			select {
			case <-sl.done:
			default:
				t.Fatal("syncer still running after Close")
			}
			l = openFile(t, Config{Dir: dir})
			if !bytes.Equal(readAll(t, l, 0, 1<<20), concat(stored)) {
				t.Fatal("reopened log differs")
			}
		})
	}
}

func TestEmptyDirAndNewStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "p-0")
	l := openFile(t, Config{Dir: dir})
	if l.EndOffset() != 0 {
		t.Fatalf("end %d", l.EndOffset())
	}
	if err := l.(Resetter).Reset(500); err != nil {
		t.Fatal(err)
	}
	stored := appendN(t, l, 2, 2, 1, 0)
	closeLog(t, l)
	l = openFile(t, Config{Dir: dir})
	if l.StartOffset() != 500 || l.EndOffset() != 504 {
		t.Fatalf("start %d end %d", l.StartOffset(), l.EndOffset())
	}
	if !bytes.Equal(readAll(t, l, 500, 1<<20), concat(stored)) {
		t.Fatal("differs")
	}
}
