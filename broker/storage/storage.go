package storage

import (
	"errors"
	"log/slog"
	"time"
)

// Errors returned by a Log. Callers check them with errors.Is.
var (
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	ErrCorruptBatch     = errors.New("storage: corrupt record batch")
	ErrNotContiguous    = errors.New("storage: batch does not start at the log end offset")
	ErrClosed           = errors.New("storage: log closed")
	// ErrEpochRegression: a batch carries a leader epoch older than the
	// log's latest (a leader append at a stale epoch, or a follower fed
	// batches out of epoch order).
	ErrEpochRegression = errors.New("storage: leader epoch older than the log's latest")
)

// FsyncPolicy says when appended data is forced to disk.
type FsyncPolicy string

const (
	FsyncNever    FsyncPolicy = "never"    // page cache only
	FsyncInterval FsyncPolicy = "interval" // every Config.FsyncInterval
	FsyncAlways   FsyncPolicy = "always"   // before Append returns
)

// Config configures one partition's log.
type Config struct {
	// Dir is the partition directory (file implementation only).
	Dir string `yaml:"dir" json:"dir"`
	// SegmentBytes rolls a new segment once the active one reaches it.
	SegmentBytes int64 `yaml:"segment_bytes" json:"segment_bytes"`
	// IndexIntervalBytes is how many log bytes lie between index entries.
	IndexIntervalBytes int `yaml:"index_interval_bytes" json:"index_interval_bytes"`
	// RetentionBytes deletes oldest closed segments while the log is larger;
	// <= 0 keeps everything.
	RetentionBytes int64 `yaml:"retention_bytes" json:"retention_bytes"`
	// RetentionAge deletes closed segments whose newest record is older;
	// 0 keeps everything.
	RetentionAge  time.Duration `yaml:"retention_age" json:"retention_age"`
	Fsync         FsyncPolicy   `yaml:"fsync" json:"fsync"`
	FsyncInterval time.Duration `yaml:"fsync_interval" json:"fsync_interval"`
	// RecordSynced keeps a record of every segment's synced length in the
	// directory (SyncedFile), for runtimes that simulate a power loss
	// outside the process.
	RecordSynced bool `yaml:"record_synced" json:"record_synced"`
	// Logger receives recovery reports (what was truncated, rebuilt).
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Log is one partition's append-only sequence of Kafka v2 record batches.
// One goroutine appends and truncates; any number may read concurrently.
// Appends copy what they keep: the caller may reuse its buffer afterwards,
// and Read returns bytes the caller owns.
//
// Offsets: the log holds [StartOffset, EndOffset). A batch covers
// [BaseOffset, BaseOffset+LastOffsetDelta].
type Log interface {
	// AppendLeader appends one or more batches as a leader: each batch's base
	// offset is rewritten to the next offset and its partition leader epoch
	// to epoch. It returns the base offset assigned to the first batch.
	AppendLeader(batches []byte, epoch int32) (base int64, err error)
	// AppendFollower appends batches that already carry the leader's offsets
	// and epochs; the first must start at EndOffset (ErrNotContiguous).
	AppendFollower(batches []byte) error
	// Read returns whole batches starting with the one that contains offset,
	// stopping before any batch whose last offset is >= maxOffset and once
	// maxBytes is reached, but always at least one batch if one qualifies.
	// offset == EndOffset returns no bytes; outside [StartOffset, EndOffset]
	// is ErrOffsetOutOfRange.
	Read(offset, maxOffset int64, maxBytes int) ([]byte, error)
	// Truncate removes every batch at or after offset (rounded to a batch
	// boundary: a batch that contains offset is removed whole).
	Truncate(offset int64) error
	// StartOffset is the first offset retained; EndOffset the next to assign.
	StartOffset() int64
	EndOffset() int64
	// OffsetForTime returns the first offset whose batch max timestamp is
	// >= ts (ms), or EndOffset when there is none.
	OffsetForTime(ts int64) (int64, error)
	// EpochEndOffset returns, for the largest epoch <= epoch the log holds,
	// that epoch and the offset where the next epoch starts (EndOffset for
	// the latest). With no such epoch: (-1, -1).
	EpochEndOffset(epoch int32) (int32, int64)
	// LatestEpoch is the epoch of the last batch, -1 when empty.
	LatestEpoch() int32
	// Sync forces appended data to stable storage.
	Sync() error
	// ApplyRetention deletes segments past the retention limits.
	ApplyRetention(now time.Time) error
	Close() error
	// PowerLoss closes the log as a power failure would: nothing is synced
	// and every write that no fsync covered is lost. The file log cuts each
	// segment back to its length at its last successful fsync (or when the
	// log was opened) and drops a leader epoch checkpoint written since
	// without a sync; reopening the directory then recovers what a machine
	// that lost power would find. The memory log loses everything. Like
	// Close, it ends the log; it is a no-op on a closed log.
	PowerLoss() error
}
