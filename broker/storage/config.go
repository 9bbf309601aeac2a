package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults used for zero Config fields.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultIndexIntervalBytes = 4096
	DefaultFsyncInterval      = time.Second
)

// DefaultConfig returns Kafka's defaults: 1 GiB segments, an index entry
// every 4 KiB, no retention limit, fsync left to the page cache.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       DefaultSegmentBytes,
		IndexIntervalBytes: DefaultIndexIntervalBytes,
		Fsync:              FsyncNever,
		FsyncInterval:      DefaultFsyncInterval,
	}
}

// Validate reports the first invalid setting. Zero SegmentBytes,
// IndexIntervalBytes, Fsync and FsyncInterval mean their defaults.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("storage: segment bytes %d outside [1, %d]", c.SegmentBytes, math.MaxInt32)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("storage: index interval bytes %d is negative", c.IndexIntervalBytes)
	case c.RetentionAge < 0:
		return fmt.Errorf("storage: retention age %v is negative", c.RetentionAge)
	case c.FsyncInterval < 0:
		return fmt.Errorf("storage: fsync interval %v is negative", c.FsyncInterval)
	}
	switch c.Fsync {
	case "", FsyncNever, FsyncInterval, FsyncAlways:
	default:
		return fmt.Errorf("storage: unknown fsync policy %q (never, interval, always)", c.Fsync)
	}
	return nil
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.Fsync == "" {
		c.Fsync = FsyncNever
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = DefaultFsyncInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

var errNoDir = errors.New("storage: dir is required for a file log")
