// Package storage is a partition's log: an append-only sequence of Kafka v2
// record batches, split into segments, with a file implementation (OpenFile)
// and a memory one (NewMemory) behind the Log interface. Both share one core
// (segmentedLog), so offsets, leader epochs, rolling, truncation and
// retention behave identically; only where the bytes live differs.
//
// # Use
//
//	cfg := storage.DefaultConfig()
//	cfg.Dir = "/var/lib/brokerlab/orders-0"
//	cfg.Logger = logger
//	log, err := storage.OpenFile(cfg) // recovers whatever a crash left
//	if err != nil {
//		return err
//	}
//	defer log.Close()
//	base, err := log.AppendLeader(produceRecords, leaderEpoch)
//	data, err := log.Read(fetchOffset, highWatermark, 1<<20)
//
// AppendLeader rewrites the base offset and partition leader epoch of the
// batches in the caller's buffer in place. Appends that are not whole, valid
// v2 batches (length, magic 2, CRC-32C) fail with ErrCorruptBatch and write
// nothing. Read returns whole batches only. Both logs also implement
// Resetter, to empty a log and restart it at a given offset.
//
// One goroutine appends, truncates and applies retention; any number read.
// The file log owns one goroutine, the interval syncer, which Close stops.
// A file log that lost track of its files after an I/O error refuses further
// changes (every mutation returns the first such error); reads keep working.
//
// # On-disk format
//
// A partition directory holds:
//
//	00000000000000000000.log     segment starting at offset 0
//	00000000000000000000.index   its sparse offset index
//	00000000000000004711.log     next segment: its first batch has base offset 4711
//	00000000000000004711.index
//	leader-epoch-checkpoint      leader epoch start offsets
//
// Segment files are named by their base offset, the first offset they hold,
// as 20 zero-padded decimal digits, so names sort in offset order. Offsets in
// the log are contiguous: every segment's first batch starts at its base
// offset and at the previous segment's end.
//
// A .log file is the concatenation of record batches exactly as they were
// received, except that each batch's baseOffset (bytes 0-7) and
// partitionLeaderEpoch (bytes 12-15) were rewritten when the leader appended
// it; the CRC-32C (bytes 17-20) covers bytes 21 to the end of the batch, so
// it stays valid. The batch layout is in package internal/kbatch. There is no
// file header, no padding, no per-segment metadata: a .log file can be
// served to a Fetch byte for byte.
//
// A .index file is a sequence of 8-byte entries, big-endian:
//
//	relative offset  uint32  batch baseOffset - segment base offset
//	position         uint32  byte position of that batch in the .log file
//
// Entries are strictly increasing in both fields. An entry is written for
// the first batch appended after at least IndexIntervalBytes of log bytes
// followed the previous entry's batch (the first batch of a segment, at
// position 0, needs none). To find offset o, take the last entry whose
// offset is <= o and walk batch headers from its position to the first batch
// whose last offset (baseOffset + lastOffsetDelta) is >= o. The index is
// derived data: the log never trusts it further than that walk checks.
//
// A segment rolls when the next batch would grow a non-empty segment past
// SegmentBytes (at most 2 GiB, so positions fit in uint32), or when a batch's
// relative offset would not fit in uint32.
//
// leader-epoch-checkpoint is Kafka's text format: a version line "0", a line
// with the number of entries, then one "epoch start-offset" line per leader
// epoch, epochs strictly increasing. It is replaced atomically (write
// leader-epoch-checkpoint.tmp, fsync, rename, fsync the directory; no fsyncs
// under policy "never") before
// the first batch of a new epoch is written and after a truncation removes
// an epoch, so it never lacks an epoch the log holds.
//
// # Recovery
//
// OpenFile repairs what a crash or a bad disk left behind, and logs what it
// did (keys segment, position, truncated-bytes, reason):
//
//   - *.tmp files and .index files without a .log are deleted.
//   - The last segment is read whole: every batch must have magic 2, a sane
//     length inside the file, a valid CRC and the expected base offset. At
//     the first one that does not, the file is truncated (a torn write).
//   - Every other segment is checked from its last index entry to the end of
//     the file; if its index is unsound or its tail is bad it is read whole
//     like the last one. A segment that ends short of the next segment's base
//     offset ends the log: the segments after it are deleted, because the
//     log cannot hold a gap.
//   - An index that is missing, malformed or does not match the rebuilt
//     entries is rewritten.
//   - Leader epochs before the last segment come from the checkpoint (or,
//     without a readable one, from the batch headers of the older segments);
//     epochs from the last segment on come from its batches.
//
// # Durability
//
// Fsync "never" leaves writes to the page cache (a crashed process loses
// nothing, a crashed machine may); "interval" syncs the active segment every
// FsyncInterval from a goroutine the log owns; "always" syncs before Append
// returns. Rolled segments are synced when the log rolls past them and the
// directory when segments are created or deleted (except under "never").
// Close syncs the active segment.
package storage
