package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSyncedRecordCut: cutting every file of a killed log's directory to
// its recorded synced length (what the docker runtime does after SIGKILL)
// leaves exactly what PowerLoss leaves in-process, for every policy.
func TestSyncedRecordCut(t *testing.T) {
	for _, c := range powerLossCases {
		t.Run(string(c.policy), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir, Fsync: c.policy, FsyncInterval: time.Hour, SegmentBytes: c.segmentBytes, RecordSynced: true}
			l, first, second := writeRuns(t, cfg, c.syncAfter, -1)
			// The process is killed: the files hold everything written.
			// Cut them as a power loss would, by the record alone, into a
			// copy (the live log is then released).
			raw, err := os.ReadFile(filepath.Join(dir, SyncedFile))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := ParseSyncedLengths(raw)
			if err != nil {
				t.Fatal(err)
			}
			cut := t.TempDir()
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				data = data[:rec.CutLength(e.Name(), int64(len(data)))]
				if err := os.WriteFile(filepath.Join(cut, e.Name()), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.PowerLoss(); err != nil {
				t.Fatal(err)
			}
			l = openFile(t, Config{Dir: cut})
			want := concat(append(first, second[:c.want]...))
			if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, want) {
				t.Fatalf("cut by the record the log holds %d bytes, want %d (%d of 10 batches)", len(got), len(want), c.want)
			}
			appendN(t, l, 2, 1, 3, 5000)
		})
	}
}

func TestParseSyncedLengths(t *testing.T) {
	rec, err := ParseSyncedLengths([]byte(syncedHeader + "\n00000000000000000000.log 12\n00000000000000000042.log 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"00000000000000000000.log": 12, "00000000000000000042.log": 0, "00000000000000000099.log": 0, "00000000000000000000.index": 500} {
		if got := rec.CutLength(name, 500); got != want {
			t.Errorf("CutLength(%s) = %d, want %d", name, got, want)
		}
	}
	for _, bad := range []string{"", "x\n", syncedHeader + "\nfoo 1\n", syncedHeader + "\n00000000000000000000.log -1\n", syncedHeader + "\n00000000000000000000.log\n"} {
		if _, err := ParseSyncedLengths([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseSyncedLengths(f *testing.F) {
	f.Add([]byte(syncedHeader + "\n00000000000000000000.log 12\n"))
	f.Add([]byte(syncedHeader + "\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseSyncedLengths(data)
		if err != nil {
			return
		}
		for name, n := range rec {
			if n < 0 || rec.CutLength(name, n+1) != n {
				t.Fatalf("%s: %d", name, n)
			}
		}
	})
}
