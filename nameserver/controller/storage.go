package controller

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// A controller with a data directory keeps its Raft log and hard state in
// etcd's write-ahead log (DataDir/wal: CRC-checked records, fsync before a
// vote or an appended entry is acted on, a torn tail repaired on open),
// and serves Raft from a raft.MemoryStorage loaded from it at start. The
// log is never compacted: it holds one small entry per broker
// registration, election and SyncStateSet change, so no snapshot is ever
// taken or sent, and a restart replays it from the first entry.

// walMeta is recorded at the head of the WAL: a data directory belongs to
// one controller of one peer set.
type walMeta struct {
	ID    uint64   `json:"id"`
	Peers []string `json:"peers"`
}

// diskLog is the durable side of a controller's Raft log.
type diskLog struct {
	w *wal.WAL
}

// openDiskLog opens (or creates) the WAL in dir and loads what it holds
// into mem.
func openDiskLog(dir string, meta walMeta, mem *raft.MemoryStorage) (*diskLog, error) {
	walDir := filepath.Join(dir, "wal")
	lg := zap.NewNop()
	want, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if !wal.Exist(walDir) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("controller: data dir: %w", err)
		}
		w, err := wal.Create(lg, walDir, want)
		if err != nil {
			return nil, fmt.Errorf("controller: create wal: %w", err)
		}
		return &diskLog{w: w}, nil
	}
	w, err := wal.Open(lg, walDir, &walpb.Snapshot{})
	if err != nil {
		return nil, fmt.Errorf("controller: open wal: %w", err)
	}
	got, hs, ents, err := readAll(w)
	if err == nil {
		err = checkMeta(got, meta)
	}
	if err == nil && !raft.IsEmptyHardState(hs) {
		err = mem.SetHardState(hs)
	}
	if err == nil {
		err = mem.Append(ents)
	}
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("controller: read wal in %s: %w", walDir, err)
	}
	return &diskLog{w: w}, nil
}

// readAll reads the WAL. The library panics on a record that passes its
// CRC but does not decode; a damaged data directory is an error here, not
// a crash.
func readAll(w *wal.WAL) (meta []byte, hs *raftpb.HardState, ents []*raftpb.Entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("damaged wal: %v", r)
		}
	}()
	return w.ReadAll()
}

// checkMeta refuses a data directory written by another controller id or
// for another peer set: its log is not this member's.
func checkMeta(raw []byte, want walMeta) error {
	var got walMeta
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("wal metadata: %w", err)
	}
	if got.ID != want.ID || len(got.Peers) != len(want.Peers) {
		return fmt.Errorf("the log is controller %d's of %d peers, not controller %d's of %d",
			got.ID, len(got.Peers), want.ID, len(want.Peers))
	}
	return nil
}

// save makes a Ready's hard state and entries durable; Raft may act on
// them (send votes and appends) only after it returns.
func (d *diskLog) save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	return d.w.Save(hs, ents)
}

func (d *diskLog) close() error { return d.w.Close() }
