package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/internal/kbatch"
)

// File names inside a partition directory; see doc.go.
const (
	logSuffix        = ".log"
	indexSuffix      = ".index"
	tmpSuffix        = ".tmp"
	epochsFile       = "leader-epoch-checkpoint"
	segmentNameWidth = 20
)

func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%0*d%s", segmentNameWidth, base, suffix)
}

// parseSegmentName returns the base offset of a "%020d.log" or "%020d.index"
// name.
func parseSegmentName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != segmentNameWidth {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// OpenFile opens (creating if needed) the partition log in cfg.Dir and
// recovers it: the last segment's batches are checked (CRC, offsets) and a
// torn or corrupt tail is cut off, every other segment's tail is checked
// from its last index entry, a missing or wrong index is rebuilt, and the
// leader epoch cache is reconciled with the batches. What was cut or rebuilt
// is logged at warn level through cfg.Logger.
func OpenFile(cfg Config) (Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errNoDir
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create dir: %w", err)
	}
	began := time.Now()
	be := &fileBackend{dir: cfg.Dir, fsync: cfg.Fsync}
	r := &recovery{cfg: cfg, be: be, logger: cfg.Logger}
	segs, err := r.openSegments()
	if err != nil {
		return nil, err
	}
	epochs, err := r.recoverEpochs(segs)
	if err != nil {
		for _, s := range segs {
			_ = s.close()
		}
		return nil, err
	}
	l := newSegmentedLog(cfg, be, segs, epochs)
	cfg.Logger.Debug("opened log", "dir", cfg.Dir, "segments", len(segs),
		"start-offset", l.StartOffset(), "end-offset", l.EndOffset(), "took", time.Since(began))
	return l, nil
}

// fileBackend keeps segments as files in one directory.
type fileBackend struct {
	dir   string
	fsync FsyncPolicy
	// epochsUnsynced: the checkpoint was replaced since the log opened
	// without an fsync covering it, so a power loss may take it back.
	epochsUnsynced bool
}

func (b *fileBackend) path(base int64, suffix string) string {
	return filepath.Join(b.dir, segmentName(base, suffix))
}

func (b *fileBackend) create(base int64) (*segment, error) {
	data, err := os.OpenFile(b.path(base, logSuffix), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment: %w", err)
	}
	index, err := os.OpenFile(b.path(base, indexSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		_ = data.Close()
		_ = os.Remove(data.Name())
		return nil, fmt.Errorf("storage: create index: %w", err)
	}
	s := newSegment(base, data, index)
	s.maxTS.Store(-1)
	s.modTime = time.Now()
	return s, nil
}

// remove deletes the .log before the .index: an index without its log is
// an orphan that open removes, the reverse would be an unindexed segment.
func (b *fileBackend) remove(s *segment) error {
	err := errors.Join(s.close(),
		os.Remove(b.path(s.base, logSuffix)),
		ignoreNotExist(os.Remove(b.path(s.base, indexSuffix))))
	if err == nil && b.fsync != FsyncNever {
		err = b.syncDir()
	}
	return err
}

// saveEpochs replaces the checkpoint atomically: write a temporary file,
// sync it, rename it over the old one, sync the directory. Under fsync
// "never" it skips both syncs, like every other write: the rename still
// orders it before the data written after it as far as a crashed process is
// concerned.
func (b *fileBackend) saveEpochs(c epochCache) error {
	path := filepath.Join(b.dir, epochsFile)
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeEpochs(c))
	if err == nil && b.fsync != FsyncNever {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if b.fsync == FsyncNever {
		b.epochsUnsynced = true
		return nil
	}
	if err := b.syncDir(); err != nil {
		b.epochsUnsynced = true
		return err
	}
	b.epochsUnsynced = false
	return nil
}

// powerLoss removes a checkpoint no fsync covered: recovery then rebuilds
// the epochs from the batches that survived, which is what a checkpoint
// from before the loss would reconcile to as well.
func (b *fileBackend) powerLoss() error {
	if !b.epochsUnsynced {
		return nil
	}
	return ignoreNotExist(os.Remove(filepath.Join(b.dir, epochsFile)))
}

func (b *fileBackend) syncDir() error {
	d, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func (b *fileBackend) durable() bool { return true }

func ignoreNotExist(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// recovery turns a directory back into segments.
type recovery struct {
	cfg    Config
	be     *fileBackend
	logger *slog.Logger
	// lastEpochs are the epoch starts seen in the last segment's batches.
	lastEpochs epochCache
}

// openedSegment is a segment and what its .index file held when opened.
type openedSegment struct {
	*segment
	index      []byte
	indexFound bool
}

// openSegments opens every segment, validates them oldest first and returns
// the contiguous, valid prefix of the log (at least one segment).
func (r *recovery) openSegments() ([]*segment, error) {
	bases, err := r.listSegments()
	if err != nil {
		return nil, err
	}
	var opened []openedSegment
	closeAll := func() {
		for _, s := range opened {
			_ = s.close()
		}
	}
	for _, base := range bases {
		s, err := r.openSegment(base)
		if err != nil {
			closeAll()
			return nil, err
		}
		opened = append(opened, s)
	}
	for i := 0; i < len(opened); i++ {
		last := i == len(opened)-1
		if err := r.check(opened[i], last); err != nil {
			closeAll()
			return nil, err
		}
		if last {
			break
		}
		s, nextBase := opened[i], opened[i+1].base
		if s.next == nextBase {
			continue
		}
		r.logger.Error("dropping segments after a gap or corruption", "segment", s.base,
			"end-offset", s.next, "next-segment", nextBase, "dropped", len(opened)-i-1)
		for _, d := range opened[i+1:] {
			if err := r.be.remove(d.segment); err != nil {
				closeAll()
				return nil, err
			}
		}
		opened = opened[:i+1]
		// It is the last segment now: recover it like one.
		if err := r.check(opened[i], true); err != nil {
			closeAll()
			return nil, err
		}
	}
	segs := make([]*segment, 0, max(len(opened), 1))
	for _, s := range opened {
		segs = append(segs, s.segment)
	}
	if len(segs) == 0 {
		s, err := r.be.create(0)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// listSegments returns the base offsets of the .log files in order, removing
// leftovers: temporary files and indexes without a log.
func (r *recovery) listSegments() ([]int64, error) {
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage: read dir: %w", err)
	}
	logs := map[int64]bool{}
	var bases, indexes []int64
	for _, e := range entries {
		name := e.Name()
		if base, ok := parseSegmentName(name, logSuffix); ok && e.Type().IsRegular() {
			logs[base] = true
			bases = append(bases, base)
		} else if base, ok := parseSegmentName(name, indexSuffix); ok {
			indexes = append(indexes, base)
		} else if strings.HasSuffix(name, tmpSuffix) {
			r.logger.Warn("removing leftover temporary file", "file", name)
			if err := os.Remove(filepath.Join(r.cfg.Dir, name)); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
	}
	for _, base := range indexes {
		if !logs[base] {
			r.logger.Warn("removing index without a log", "segment", base)
			if err := os.Remove(r.be.path(base, indexSuffix)); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

func (r *recovery) openSegment(base int64) (openedSegment, error) {
	data, err := os.OpenFile(r.be.path(base, logSuffix), os.O_RDWR, 0)
	if err != nil {
		return openedSegment{}, fmt.Errorf("storage: open segment: %w", err)
	}
	st, err := data.Stat()
	if err != nil {
		_ = data.Close()
		return openedSegment{}, fmt.Errorf("storage: stat segment: %w", err)
	}
	indexPath := r.be.path(base, indexSuffix)
	raw, err := os.ReadFile(indexPath)
	found := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = data.Close()
		return openedSegment{}, fmt.Errorf("storage: read index: %w", err)
	}
	index, err := os.OpenFile(indexPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		_ = data.Close()
		return openedSegment{}, fmt.Errorf("storage: open index: %w", err)
	}
	s := newSegment(base, data, index)
	s.size = st.Size()
	s.modTime = st.ModTime()
	return openedSegment{segment: s, index: raw, indexFound: found}, nil
}

// check validates a segment. The last one is scanned whole; any other only
// from its last index entry when the index looks sound, which is enough to
// learn its end offset and notice a torn tail.
func (r *recovery) check(s openedSegment, last bool) error {
	if !last && s.indexFound {
		if entries, err := decodeIndex(s.index, s.size); err == nil {
			res, err := r.scan(s.segment, entries)
			if err != nil {
				return err
			}
			if res.clean(s.size) && len(res.entries) == len(entries) {
				s.entries, s.next, s.sinceIndex = entries, res.next, res.since
				return nil
			}
		}
	}
	res, err := r.scan(s.segment, nil)
	if err != nil {
		return err
	}
	if !res.clean(s.size) {
		r.logger.Warn("truncating corrupt segment tail", "segment", s.base, "position", res.pos,
			"truncated-bytes", s.size-res.pos, "end-offset", res.next, "reason", res.reason)
		if err := s.data.Truncate(res.pos); err != nil {
			return fmt.Errorf("storage: truncate segment %d: %w", s.base, err)
		}
		s.size = res.pos
	}
	s.entries, s.next, s.sinceIndex = res.entries, res.next, res.since
	s.maxTS.Store(res.maxTS)
	if last {
		r.lastEpochs = res.epochs
	}
	return r.fixIndex(s)
}

// fixIndex rewrites the .index file when it differs from the entries the
// scan rebuilt.
func (r *recovery) fixIndex(s openedSegment) error {
	want := encodeIndex(s.entries)
	if s.indexFound && bytes.Equal(want, s.index) {
		return nil
	}
	reason := "missing"
	if s.indexFound {
		reason = "does not match the log"
		if _, err := decodeIndex(s.index, s.size); err != nil {
			reason = err.Error()
		}
	}
	r.logger.Warn("rebuilt index", "segment", s.base, "entries", len(s.entries), "reason", reason)
	if err := s.segment.index.Truncate(0); err != nil {
		return fmt.Errorf("storage: rewrite index %d: %w", s.base, err)
	}
	if _, err := s.segment.index.WriteAt(want, 0); err != nil {
		return fmt.Errorf("storage: rewrite index %d: %w", s.base, err)
	}
	return nil
}

// scanResult is what a CRC-checking scan of a segment found.
type scanResult struct {
	pos     int64 // end of the last valid batch
	next    int64 // offset after it
	entries []indexEntry
	since   int
	maxTS   int64
	epochs  epochCache // epoch starts, as the batches say
	reason  string     // why the scan stopped before the end of the file
}

func (r scanResult) clean(size int64) bool { return r.pos == size }

// scan reads and checks whole batches (magic, length, CRC, contiguous
// offsets) starting at the last of entries (at the segment start when there
// are none), rebuilding index entries on the way, and stops at the first bad
// one. Only I/O failures are errors.
func (r *recovery) scan(s *segment, entries []indexEntry) (scanResult, error) {
	res := scanResult{next: s.base, maxTS: -1, entries: slices.Clone(entries)}
	indexed := false // whether the batch at res.pos already has its entry
	if n := len(entries); n > 0 {
		res.pos, res.next, indexed = int64(entries[n-1].pos), s.base+int64(entries[n-1].rel), true
	}
	hdr := make([]byte, kbatch.HeaderSize)
	var buf []byte
	for res.pos < s.size {
		if s.size-res.pos < kbatch.HeaderSize {
			res.reason = "partial batch header"
			break
		}
		if _, err := s.data.ReadAt(hdr, res.pos); err != nil {
			return res, fmt.Errorf("storage: read segment %d: %w", s.base, err)
		}
		h, err := kbatch.ParseHeader(hdr)
		if err != nil {
			res.reason = err.Error()
			break
		}
		if int64(h.Size()) > s.size-res.pos {
			res.reason = fmt.Sprintf("batch of %d bytes runs past the end (torn write)", h.Size())
			break
		}
		if h.BaseOffset != res.next {
			res.reason = fmt.Sprintf("batch at offset %d, want %d", h.BaseOffset, res.next)
			break
		}
		buf = slices.Grow(buf[:0], h.Size())[:h.Size()]
		if _, err := s.data.ReadAt(buf, res.pos); err != nil {
			return res, fmt.Errorf("storage: read segment %d: %w", s.base, err)
		}
		if _, _, err := kbatch.Next(buf); err != nil {
			res.reason = err.Error()
			break
		}
		switch {
		case indexed:
			indexed, res.since = false, 0
		case res.since >= r.cfg.IndexIntervalBytes:
			res.entries = append(res.entries, indexEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(res.pos)})
			res.since = 0
		}
		res.since += h.Size()
		res.maxTS = max(res.maxTS, h.MaxTimestamp)
		res.epochs, _ = res.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
		res.pos += int64(h.Size())
		res.next = h.NextOffset()
	}
	return res, nil
}

// recoverEpochs rebuilds the leader epoch cache: entries before the last
// segment come from the checkpoint (or, without a usable one, from the
// batch headers of the older segments), those from the last segment on from
// its batches, which the scan just read. A changed cache is saved.
func (r *recovery) recoverEpochs(segs []*segment) (epochCache, error) {
	lastBase := segs[len(segs)-1].base
	raw, err := os.ReadFile(filepath.Join(r.cfg.Dir, epochsFile))
	var saved epochCache
	if err == nil {
		saved, err = decodeEpochs(raw)
	}
	var epochs epochCache
	switch {
	case err == nil:
		for _, e := range saved {
			if e.Start < lastBase {
				epochs = append(epochs, e)
			}
		}
	default:
		if !errors.Is(err, fs.ErrNotExist) {
			r.logger.Warn("rebuilding leader epoch checkpoint", "reason", err.Error())
		}
		for _, s := range segs[:len(segs)-1] {
			err := s.walk(0, s.base, func(h kbatch.Header, _ int64) bool {
				epochs, _ = epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
				return true
			})
			if err != nil {
				return nil, fmt.Errorf("storage: rebuild leader epochs: %w", err)
			}
		}
	}
	for _, e := range r.lastEpochs {
		epochs, _ = epochs.assign(e.Epoch, e.Start)
	}
	epochs, _ = epochs.truncateBefore(segs[0].base)
	if raw == nil || !slices.Equal(saved, epochs) {
		if err := r.be.saveEpochs(epochs); err != nil {
			return nil, fmt.Errorf("storage: save leader epochs: %w", err)
		}
	}
	return epochs, nil
}
