package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
)

// backend is where segments live: files in a directory or memory.
type backend interface {
	// create makes a new, empty segment starting at base.
	create(base int64) (*segment, error)
	// remove closes a segment and deletes what backs it.
	remove(s *segment) error
	// saveEpochs persists the leader epoch cache.
	saveEpochs(c epochCache) error
	// syncDir makes created and removed segments durable.
	syncDir() error
	// durable reports whether Sync means anything.
	durable() bool
	// powerLoss drops what a power failure would of the backend's own
	// files (the leader epoch checkpoint); segments are cut by the log.
	powerLoss() error
}

// segmentedLog implements Log over a backend. Both NewMemory and OpenFile
// return one, so the two implementations share every rule about offsets,
// epochs, rolling, truncation and retention.
//
// Locking: mu guards segs, epochs, closed and failed. Appends, truncation,
// retention and Close take it exclusively; Read and the other queries share
// it. start and end are also published atomically so the hot
// StartOffset/EndOffset calls take no lock.
type segmentedLog struct {
	cfg    Config
	logger *slog.Logger
	be     backend

	mu     sync.RWMutex
	segs   []*segment // by base offset; never empty; the last is active
	epochs epochCache
	closed bool
	failed error // sticky: an I/O error left files and memory out of step

	start, end atomic.Int64
	dirty      atomic.Bool // appended since the last Sync

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{} // closed when the interval syncer exits

	rec syncedRecorder // Config.RecordSynced
}

func newSegmentedLog(cfg Config, be backend, segs []*segment, epochs epochCache) *segmentedLog {
	l := &segmentedLog{cfg: cfg, logger: cfg.Logger, be: be, segs: segs, epochs: epochs,
		stop: make(chan struct{}), done: make(chan struct{})}
	l.start.Store(segs[0].base)
	l.end.Store(segs[len(segs)-1].next)
	if be.durable() {
		for _, s := range segs {
			s.synced.Store(s.size) // what is on disk at open survives a power loss
		}
		l.recordSynced()
	}
	if cfg.Fsync == FsyncInterval && be.durable() {
		go l.syncLoop()
	} else {
		close(l.done)
	}
	return l
}

func (l *segmentedLog) syncLoop() {
	defer close(l.done)
	t := time.NewTicker(l.cfg.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if !l.dirty.Load() {
				continue
			}
			if err := l.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("periodic fsync failed", "error", err)
			}
		}
	}
}

func (l *segmentedLog) active() *segment { return l.segs[len(l.segs)-1] }

// writableLocked reports why the log cannot be changed, if it cannot.
// Lock should be held.
func (l *segmentedLog) writableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// splitBatches checks that buf is whole v2 batches and that their offsets
// cannot overflow.
func splitBatches(buf []byte) ([]kbatch.Batch, error) {
	batches, err := kbatch.Split(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	for i, b := range batches {
		if b.Header.BaseOffset < 0 || b.Header.BaseOffset > math.MaxInt64-int64(b.Header.LastOffsetDelta)-1 {
			return nil, fmt.Errorf("%w: batch %d base offset %d", ErrCorruptBatch, i, b.Header.BaseOffset)
		}
	}
	return batches, nil
}

// AppendLeader implements Log. It rewrites the base offset and leader epoch
// of every batch in buf in place (the CRC does not cover them), so after it
// returns buf holds exactly the stored bytes.
func (l *segmentedLog) AppendLeader(buf []byte, epoch int32) (int64, error) {
	batches, err := kbatch.Split(buf)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCorruptBatch, err)
	}
	if len(batches) == 0 {
		return 0, fmt.Errorf("%w: no batches", ErrCorruptBatch)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return 0, err
	}
	if latest := l.epochs.latest(); epoch < latest {
		return 0, fmt.Errorf("%w: append at epoch %d, log is at %d", ErrEpochRegression, epoch, latest)
	}
	base := l.end.Load()
	next := base
	for i := range batches {
		h := &batches[i].Header
		if next > math.MaxInt64-int64(h.LastOffsetDelta)-1 {
			return 0, fmt.Errorf("%w: offsets overflow at %d", ErrCorruptBatch, next)
		}
		h.BaseOffset, h.PartitionLeaderEpoch = next, epoch
		next = h.NextOffset()
	}
	for _, b := range batches { // cannot fail: every batch is whole
		_ = kbatch.SetBaseOffset(b.Bytes, b.Header.BaseOffset)
		_ = kbatch.SetLeaderEpoch(b.Bytes, epoch)
	}
	return base, l.appendLocked(buf, batches)
}

// AppendFollower implements Log. An empty buf appends nothing.
func (l *segmentedLog) AppendFollower(buf []byte) error {
	batches, err := splitBatches(buf)
	if err != nil || len(batches) == 0 {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	want, latest := l.end.Load(), l.epochs.latest()
	for i, b := range batches {
		h := b.Header
		if h.BaseOffset != want {
			return fmt.Errorf("%w: batch %d starts at %d, want %d", ErrNotContiguous, i, h.BaseOffset, want)
		}
		if h.PartitionLeaderEpoch >= 0 && h.PartitionLeaderEpoch < latest {
			return fmt.Errorf("%w: batch %d at epoch %d after epoch %d", ErrEpochRegression, i, h.PartitionLeaderEpoch, latest)
		}
		latest = max(latest, h.PartitionLeaderEpoch)
		want = h.NextOffset()
	}
	return l.appendLocked(buf, batches)
}

// appendLocked records new epochs, then writes batches (which are buf, in
// order). On a write error it removes whatever part was written.
// Lock should be held.
func (l *segmentedLog) appendLocked(buf []byte, batches []kbatch.Batch) error {
	newest := int32(-1)
	for _, b := range batches {
		newest = max(newest, b.Header.PartitionLeaderEpoch)
	}
	if newest > l.epochs.latest() {
		epochs := slices.Clone(l.epochs)
		for _, b := range batches {
			epochs, _ = epochs.assign(b.Header.PartitionLeaderEpoch, b.Header.BaseOffset)
		}
		// The checkpoint goes first: after a crash an epoch that starts past
		// the log end is dropped, while a missing one could not be recovered.
		if err := l.be.saveEpochs(epochs); err != nil {
			return fmt.Errorf("storage: save leader epochs: %w", err)
		}
		l.epochs = epochs
	}
	prevEnd := l.end.Load()
	if err := l.writeLocked(buf, batches); err != nil {
		if terr := l.truncateLocked(prevEnd); terr != nil {
			l.failed = fmt.Errorf("storage: log unusable after failed append (%w) and rollback: %w", err, terr)
		}
		return fmt.Errorf("storage: append: %w", err)
	}
	l.dirty.Store(true)
	defer l.recordSynced() // a roll may have synced or created a segment
	if l.cfg.Fsync == FsyncAlways {
		if err := l.syncLocked(); err != nil {
			return err
		}
	}
	return nil
}

// writeLocked appends batches to the active segment, rolling as needed, with
// one write per segment. Lock should be held.
func (l *segmentedLog) writeLocked(buf []byte, batches []kbatch.Batch) error {
	now := time.Now()
	seg := l.active()
	snap := seg.state()
	from, at := 0, 0
	flush := func() error {
		if at == from {
			return nil
		}
		if _, err := seg.data.WriteAt(buf[from:at], snap.size); err != nil {
			return errors.Join(err, seg.restore(snap))
		}
		if len(seg.entries) > snap.entries {
			idx := encodeIndex(seg.entries[snap.entries:])
			if _, err := seg.index.WriteAt(idx, int64(snap.entries)*indexEntrySize); err != nil {
				return errors.Join(err, seg.restore(snap))
			}
		}
		l.end.Store(seg.next)
		from = at
		return nil
	}
	for _, b := range batches {
		h := b.Header
		if seg.size > 0 && (seg.size+int64(h.Size()) > l.cfg.SegmentBytes || h.BaseOffset-seg.base > math.MaxUint32) {
			if err := flush(); err != nil {
				return err
			}
			if err := l.rollLocked(); err != nil {
				return err
			}
			seg = l.active()
			snap = seg.state()
		}
		seg.addIndex(h, l.cfg.IndexIntervalBytes)
		seg.size += int64(h.Size())
		seg.next = h.NextOffset()
		seg.noteAppend(h, now)
		at += h.Size()
	}
	return flush()
}

// rollLocked starts a new active segment at the log end. Lock should be held.
func (l *segmentedLog) rollLocked() error {
	if l.cfg.Fsync != FsyncNever {
		seg := l.active()
		if err := seg.data.Sync(); err != nil {
			return fmt.Errorf("storage: sync segment before roll: %w", err)
		}
		seg.synced.Store(seg.size)
	}
	s, err := l.be.create(l.end.Load())
	if err != nil {
		return fmt.Errorf("storage: roll: %w", err)
	}
	l.segs = append(l.segs, s)
	if l.cfg.Fsync != FsyncNever {
		return l.be.syncDir()
	}
	return nil
}

// segmentFor returns the index of the segment that holds offset, which must
// be in [start, end]. Lock (read or write) should be held.
func (l *segmentedLog) segmentFor(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

// Read implements Log.
func (l *segmentedLog) Read(offset, maxOffset int64, maxBytes int) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	start, end := l.start.Load(), l.end.Load()
	if offset < start || offset > end {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset == end || maxOffset <= offset {
		return nil, nil
	}
	i := l.segmentFor(offset)
	seg := l.segs[i]
	pos, first, err := seg.find(offset)
	if err != nil {
		return nil, err
	}
	if first.LastOffset() >= maxOffset {
		return nil, nil
	}
	base := first.BaseOffset
	// Size the result once: what is there up to maxBytes, or the first
	// batch when that alone is larger.
	avail := seg.size - pos
	for _, s := range l.segs[i+1:] {
		avail += s.size
	}
	out := make([]byte, 0, max(int64(first.Size()), min(int64(maxBytes), avail)))
	for {
		var full bool
		out, full, err = seg.readBatches(out, pos, base, maxOffset, maxBytes)
		if err != nil {
			return nil, err
		}
		if full || i+1 == len(l.segs) {
			return out, nil
		}
		i++
		seg, pos, base = l.segs[i], 0, l.segs[i].base
	}
}

// Truncate implements Log. Truncating to or below StartOffset empties the log
// and restarts it at offset (Kafka's truncateFullyAndStartAt).
func (l *segmentedLog) Truncate(offset int64) error {
	return l.removeFrom("truncate", offset, l.truncateLocked)
}

// removeFrom runs remove (truncateLocked or resetLocked) on a writable log
// under the lock, then records the synced lengths; op names it in errors.
func (l *segmentedLog) removeFrom(op string, offset int64, remove func(offset int64) error) error {
	if offset < 0 {
		return fmt.Errorf("%w: %s to %d", ErrOffsetOutOfRange, op, offset)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	defer l.recordSynced()
	return remove(offset)
}

// truncateLocked removes the batches at or after offset. Lock should be held.
func (l *segmentedLog) truncateLocked(offset int64) error {
	if offset >= l.end.Load() {
		return nil
	}
	if offset <= l.start.Load() {
		return l.resetLocked(offset)
	}
	i := l.segmentFor(offset)
	seg := l.segs[i]
	pos, h, err := seg.find(offset)
	if err != nil {
		return err
	}
	base := h.BaseOffset
	if err := l.removeSegmentsLocked(i + 1); err != nil {
		return err
	}
	if pos == 0 && i > 0 {
		if err := l.removeSegmentsLocked(i); err != nil {
			return err
		}
	} else if err := seg.truncate(pos, base); err != nil {
		l.failed = fmt.Errorf("storage: truncate segment %d: %w", seg.base, err)
		return l.failed
	}
	l.end.Store(base)
	l.dirty.Store(true)
	epochs, changed := l.epochs.truncateFrom(base)
	return l.setEpochsLocked(epochs, changed)
}

// removeSegmentsLocked deletes segments [from, len), newest first, so a crash
// part-way leaves a contiguous log. Lock should be held.
func (l *segmentedLog) removeSegmentsLocked(from int) error {
	for len(l.segs) > from {
		s := l.segs[len(l.segs)-1]
		l.segs = l.segs[:len(l.segs)-1]
		if err := l.be.remove(s); err != nil {
			l.failed = fmt.Errorf("storage: remove segment %d: %w", s.base, err)
			return l.failed
		}
	}
	return nil
}

func (l *segmentedLog) setEpochsLocked(epochs epochCache, changed bool) error {
	if !changed {
		return nil
	}
	l.epochs = epochs
	if err := l.be.saveEpochs(epochs); err != nil {
		return fmt.Errorf("storage: save leader epochs: %w", err)
	}
	return nil
}

// Resetter is implemented by both logs: Reset empties the log and restarts
// it at offset (Kafka's truncateFullyAndStartAt), for a follower whose end
// offset is below its leader's start offset after retention. It is not part
// of Log; reach it with a type assertion: log.(storage.Resetter).
type Resetter interface {
	Reset(offset int64) error
}

var _ Resetter = (*segmentedLog)(nil)

// Reset implements Resetter.
func (l *segmentedLog) Reset(offset int64) error {
	return l.removeFrom("reset", offset, l.resetLocked)
}

// resetLocked removes every segment and starts an empty one at offset.
// Lock should be held.
func (l *segmentedLog) resetLocked(offset int64) error {
	if err := l.removeSegmentsLocked(0); err != nil {
		return err
	}
	s, err := l.be.create(offset)
	if err != nil {
		l.failed = fmt.Errorf("storage: reset: %w", err)
		return l.failed
	}
	l.segs = []*segment{s}
	l.start.Store(offset)
	l.end.Store(offset)
	l.dirty.Store(true)
	if l.cfg.Fsync != FsyncNever {
		if err := l.be.syncDir(); err != nil {
			return err
		}
	}
	return l.setEpochsLocked(nil, len(l.epochs) > 0)
}

// StartOffset implements Log.
func (l *segmentedLog) StartOffset() int64 { return l.start.Load() }

// EndOffset implements Log.
func (l *segmentedLog) EndOffset() int64 { return l.end.Load() }

// OffsetForTime implements Log.
func (l *segmentedLog) OffsetForTime(ts int64) (int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, ErrClosed
	}
	for _, s := range l.segs {
		maxTS, err := s.maxTimestamp()
		if err != nil {
			return 0, err
		}
		if maxTS < ts {
			continue
		}
		found := int64(-1)
		err = s.walk(0, s.base, func(h kbatch.Header, _ int64) bool {
			if h.MaxTimestamp >= ts {
				found = h.BaseOffset
				return false
			}
			return true
		})
		if err != nil {
			return 0, err
		}
		if found >= 0 {
			return found, nil
		}
	}
	return l.end.Load(), nil
}

// EpochEndOffset implements Log.
func (l *segmentedLog) EpochEndOffset(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffset(epoch, l.end.Load())
}

// LatestEpoch implements Log.
func (l *segmentedLog) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// Sync implements Log: the active segment and any segment rolled past
// without a sync (policy never).
func (l *segmentedLog) Sync() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	defer l.recordSynced()
	return l.syncLocked()
}

// syncLocked syncs the active segment. Lock (read or write) should be held.
func (l *segmentedLog) syncLocked() error {
	l.dirty.Store(false)
	// The active segment, and any segment rolled past without a sync
	// (policy never), so that after Sync everything appended is durable.
	for _, seg := range l.segs {
		size := seg.size // writers hold the lock exclusively: size is stable here
		if seg != l.active() && seg.synced.Load() >= size {
			continue
		}
		if err := seg.data.Sync(); err != nil {
			l.dirty.Store(true)
			return fmt.Errorf("storage: sync: %w", err)
		}
		seg.synced.Store(size)
	}
	return nil
}

// ApplyRetention implements Log. The active segment is never deleted. By
// size, the oldest segments go while the rest still hold RetentionBytes; by
// age, while a segment's newest batch timestamp (or, for batches without
// timestamps, its last write) is older than RetentionAge.
func (l *segmentedLog) ApplyRetention(now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	defer l.recordSynced()
	drop := 0
	if l.cfg.RetentionBytes > 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		for drop < len(l.segs)-1 && total-l.segs[drop].size >= l.cfg.RetentionBytes {
			total -= l.segs[drop].size
			drop++
		}
	}
	if l.cfg.RetentionAge > 0 {
		for i := drop; i < len(l.segs)-1; i++ {
			newest, err := l.segs[i].newest()
			if err != nil {
				return err
			}
			if now.Sub(newest) <= l.cfg.RetentionAge {
				break
			}
			drop = i + 1
		}
	}
	if drop == 0 {
		return nil
	}
	for _, s := range l.segs[:drop] {
		if err := l.be.remove(s); err != nil {
			l.failed = fmt.Errorf("storage: retention: remove segment %d: %w", s.base, err)
			return l.failed
		}
		l.segs = l.segs[1:]
		l.start.Store(l.segs[0].base)
	}
	l.logger.Info("retention deleted segments", "segments", drop, "start-offset", l.start.Load())
	epochs, changed := l.epochs.truncateBefore(l.start.Load())
	return l.setEpochsLocked(epochs, changed)
}

// PowerLoss implements Log.
func (l *segmentedLog) PowerLoss() error {
	return l.closeWith(func() error {
		var errs []error
		cut := false // an earlier segment lost its tail: later ones cannot follow it
		for _, s := range l.segs {
			switch {
			case !l.be.durable():
				errs = append(errs, s.close())
			case cut:
				errs = append(errs, l.be.remove(s))
			default:
				cut = s.synced.Load() < s.size
				errs = append(errs, s.cutToSynced())
			}
		}
		errs = append(errs, l.be.powerLoss())
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("storage: power loss: %w", err)
		}
		return nil
	})
}

// Close implements Log: it stops the interval syncer, syncs and closes every
// segment. It is idempotent.
func (l *segmentedLog) Close() error {
	return l.closeWith(func() error {
		var errs []error
		if l.be.durable() && l.failed == nil {
			errs = append(errs, l.syncLocked())
		}
		for _, s := range l.segs {
			errs = append(errs, s.close())
		}
		return errors.Join(errs...)
	})
}

// closeWith stops the interval syncer and, unless the log is closed
// already, marks it closed and runs release under the lock.
func (l *segmentedLog) closeWith(release func() error) error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return release()
}
