package storage

import (
	"fmt"
	"io"
	"time"
)

// NewMemory returns a Log kept in memory: the same segments, index, rolling,
// truncation and retention rules as the file log, without files. It is for
// brokers run without a data dir and for tests. Invalid Config values fall
// back to their defaults (it cannot fail); Dir and the fsync settings are
// ignored.
func NewMemory(cfg Config) Log {
	if cfg.Validate() != nil {
		logger := cfg.Logger
		cfg = DefaultConfig()
		cfg.Logger = logger
	}
	cfg = cfg.withDefaults()
	be := memBackend{}
	s, _ := be.create(0) // cannot fail
	return newSegmentedLog(cfg, be, []*segment{s}, nil)
}

type memBackend struct{}

func (memBackend) create(base int64) (*segment, error) {
	s := newSegment(base, &memFile{}, &memFile{})
	s.maxTS.Store(-1)
	s.modTime = time.Now()
	return s, nil
}

func (memBackend) remove(s *segment) error     { return s.close() }
func (memBackend) saveEpochs(epochCache) error { return nil }
func (memBackend) syncDir() error              { return nil }
func (memBackend) durable() bool               { return false }
func (memBackend) powerLoss() error            { return nil }

// memFile is a growable byte slice with the file operations a segment uses.
// Segments only ever write at the end. The log's lock serialises writers
// against readers, so it has no lock of its own.
type memFile struct{ b []byte }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(f.b)) {
		return 0, fmt.Errorf("storage: memory read at %d of %d bytes", off, len(f.b))
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(f.b)) {
		return 0, fmt.Errorf("storage: memory write at %d of %d bytes", off, len(f.b))
	}
	f.b = append(f.b[:off], p...)
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	if size < 0 || size > int64(len(f.b)) {
		return fmt.Errorf("storage: memory truncate to %d of %d bytes", size, len(f.b))
	}
	clear(f.b[size:])
	f.b = f.b[:size]
	return nil
}

func (f *memFile) Sync() error  { return nil }
func (f *memFile) Close() error { f.b = nil; return nil }
