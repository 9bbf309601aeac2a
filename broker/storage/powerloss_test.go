package storage

import (
	"bytes"
	"testing"
	"time"
)

// powerLossCases are the fsync policies the power-loss tests run.
var powerLossCases = []struct {
	policy FsyncPolicy
	// syncAfter: an explicit Sync after that many of the second run's
	// batches (-1: none).
	syncAfter int
	// want: how many of the second run's 10 batches survive.
	want int
	// segmentBytes: small to roll segments (which policies other than
	// never sync), large to keep one.
	segmentBytes int64
}{
	{FsyncNever, -1, 0, 400},
	{FsyncNever, 4, 4, 400},
	{FsyncAlways, -1, 10, 400},
	{FsyncInterval, 6, 6, 1 << 20}, // an hour's interval: only the explicit Sync counts
	{FsyncInterval, -1, 0, 1 << 20},
}

// writeRuns writes with cfg a first incarnation of five batches that
// closes cleanly (that is on disk), then a second one of ten batches
// (returned open) with a Sync after syncAfter of them (-1: none) and leader
// epoch 2 from batch newEpochAt on (-1: never).
func writeRuns(t *testing.T, cfg Config, syncAfter, newEpochAt int) (l Log, first, second [][]byte) {
	t.Helper()
	l = openFile(t, cfg)
	first = appendN(t, l, 5, 2, 1, 0)
	closeLog(t, l)
	l = openFile(t, cfg)
	for i := range 10 {
		epoch := int32(1)
		if newEpochAt >= 0 && i >= newEpochAt {
			epoch = 2
		}
		second = append(second, appendN(t, l, 1, 2, epoch, int64(1000+i))...)
		if i+1 == syncAfter {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l, first, second
}

// TestPowerLoss reopens a directory after PowerLoss and checks that exactly
// the synced writes survived, for each fsync policy, across segment rolls
// and a leader epoch change written after the last sync.
func TestPowerLoss(t *testing.T) {
	for _, c := range powerLossCases {
		t.Run(string(c.policy), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, Fsync: c.policy, FsyncInterval: time.Hour, SegmentBytes: c.segmentBytes}
			// From the fourth batch of the second run on, a new leader
			// epoch: a checkpoint written without a sync.
			l, first, second := writeRuns(t, cfg, c.syncAfter, 3)
			if n := len(l.(*segmentedLog).segs); c.segmentBytes < 1000 && n < 3 {
				t.Fatalf("%d segments: the test wants rolls", n)
			}
			if err := l.PowerLoss(); err != nil {
				t.Fatalf("PowerLoss: %v", err)
			}
			if err := l.PowerLoss(); err != nil {
				t.Fatalf("second PowerLoss: %v", err)
			}

			l = openFile(t, Config{Dir: dir})
			want := concat(append(first, second[:c.want]...))
			if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatalf("after power loss the log holds %d bytes, want %d (%d of 10 unsynced-run batches)", len(got), len(want), c.want)
			}
			wantEpoch := int32(1)
			if c.want > 3 {
				wantEpoch = 2
			}
			if got := l.LatestEpoch(); got != wantEpoch {
				t.Errorf("latest epoch %d, want %d", got, wantEpoch)
			}
			// The recovered log takes appends where it ends.
			appendN(t, l, 2, 1, 3, 5000)
		})
	}
}

func TestPowerLossMemoryLosesAll(t *testing.T) {
	l := NewMemory(Config{})
	appendN(t, l, 3, 1, 1, 0)
	if err := l.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendLeader(makeBatch(t, 1, 10, 0, "x"), 1); err == nil {
		t.Fatal("append after PowerLoss succeeded: the log must be closed")
	}
}
