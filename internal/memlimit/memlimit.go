// Package memlimit keeps a process's Go memory under a soft budget while its
// live heap leaves room for one, and steps aside when it does not.
//
// Go's collector lets the heap grow to about twice the live heap between
// cycles (GOGC=100). A process whose live heap is a few hundred MB then
// peaks near twice that resident. A soft memory limit
// (runtime/debug.SetMemoryLimit) makes the collector run earlier instead,
// trading CPU for memory, but a fixed limit below what the live heap needs
// makes it collect nearly without pause. A Governor keeps the limit at
// the budget while the live heap, grown by Headroom, and the runtime's other
// memory fit under it; when they need more it raises the limit to what they
// need, up to Stretch times the budget, and beyond that lifts the limit:
// Go's usual pacing applies. So a small run pays nothing (its heap never
// nears the budget), a medium run collects more often to stay near it, and
// a large run is paced as without a governor: at most 1/Headroom times as
// many collections as GOGC=100 at any size, and only while the live heap is
// within reach of the budget.
//
//	g, err := memlimit.New(memlimit.Config{Limit: 400 << 20}, logger)
//	if err != nil { ... }
//	g.Start()
//	defer g.Close() // restores the limit found at Start
package memlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// Defaults of Config.
const (
	// DefaultLimit is the budget of `brokerlab run`: the Go memory of a
	// typical in-process scenario (brokers, clients and runner in one
	// process) stays under it with a quarter of the live heap to spare.
	DefaultLimit = 400 << 20
	// DefaultHeadroom: the budget holds while it leaves the collector a
	// quarter of the live heap to allocate between cycles.
	DefaultHeadroom = 0.25
	// DefaultInterval is how often the live heap is read.
	DefaultInterval = 250 * time.Millisecond
	// Stretch is how far above the budget the limit follows a live heap
	// that outgrows it (with its headroom) before it is lifted: a few MB
	// more live heap then costs a few MB more memory, not a doubling.
	Stretch = 1.25
	// MinLimit is the smallest budget accepted: below it the runtime's own
	// memory is a large share and the budget rarely holds.
	MinLimit = 32 << 20
)

// Config is a Governor's settings.
type Config struct {
	// Limit is the soft budget for the Go runtime's memory (heap, stacks,
	// runtime metadata; not memory mapped outside it), in bytes, passed to
	// debug.SetMemoryLimit while it holds. At least MinLimit.
	Limit int64
	// Headroom is the least share of the live heap the collector must be
	// able to allocate between cycles under the budget: the budget applies
	// while live heap × (1+Headroom) + the runtime's other memory ≤ Limit.
	// 0 means DefaultHeadroom; at most 1 (GOGC=100's own headroom).
	Headroom float64
	// Interval is how often the live heap is read. 0 means DefaultInterval.
	Interval time.Duration
}

// DefaultConfig is the budget of `brokerlab run`.
func DefaultConfig() Config {
	return Config{Limit: DefaultLimit, Headroom: DefaultHeadroom, Interval: DefaultInterval}
}

// Validate rejects settings a Governor cannot honour.
func (c Config) Validate() error {
	switch {
	case c.Limit < MinLimit:
		return fmt.Errorf("memlimit: limit %d bytes is below the minimum %s", c.Limit, humanize.IBytes(MinLimit))
	case c.Headroom < 0 || c.Headroom > 1 || math.IsNaN(c.Headroom):
		return fmt.Errorf("memlimit: headroom %v not in [0, 1]", c.Headroom)
	case c.Interval < 0:
		return fmt.Errorf("memlimit: interval %v < 0", c.Interval)
	}
	return nil
}

// ErrBadLimit is returned by ParseLimit for a value that is neither a size
// nor "off".
var ErrBadLimit = errors.New("memlimit: bad limit")

// ParseLimit reads a budget: a size ("400MiB", "1GB", at least MinLimit),
// or "off" or "0" for none (returned as 0).
func ParseLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a size (e.g. 400MiB, 1GiB) or off", ErrBadLimit, s)
	}
	if n > math.MaxInt64/2 {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadLimit, s)
	}
	if n < MinLimit {
		return 0, fmt.Errorf("%w: %q is below the minimum %s (off for none)", ErrBadLimit, s, humanize.IBytes(MinLimit))
	}
	return int64(n), nil
}

// usage is what the runtime reports of its memory.
type usage struct {
	live  int64 // live heap as of the last collection
	other int64 // memory the limit counts besides heap spans: stacks, metadata, ...
}

// limitFor is the limit for u: the budget while it leaves the collector its
// headroom, else what the heap needs up to Stretch × the budget; ok is
// false beyond (no limit).
func (c Config) limitFor(u usage) (limit int64, ok bool) {
	need := float64(u.live)*(1+c.Headroom) + float64(u.other)
	switch {
	case need <= float64(c.Limit):
		return c.Limit, true
	case need <= float64(c.Limit)*Stretch:
		return int64(need), true
	}
	return 0, false
}

// Governor applies Config.Limit as the runtime's soft memory limit while it
// fits (see the package documentation). Its methods are safe for concurrent
// use.
type Governor struct {
	cfg  Config
	log  *slog.Logger
	read func() usage // the runtime's figures; replaced in unit tests

	mu      sync.Mutex // guards the fields below
	started bool
	closed  bool
	prev    int64 // limit found at Start, restored by Close
	limit   int64 // the runtime's limit set by the governor; 0: lifted
	lifts   int   // times the limit was lifted
	stop    chan struct{}
	done    chan struct{}
}

// New returns a governor for cfg (zero Headroom and Interval take the
// defaults); logger gets a line whenever the budget is lifted or applied
// again (nil: none).
func New(cfg Config, logger *slog.Logger) (*Governor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Headroom == 0 {
		cfg.Headroom = DefaultHeadroom
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Governor{cfg: cfg, log: logger, read: readUsage, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start applies the budget if it fits and watches the live heap until
// Close. A second Start, or a Start after Close, does nothing.
func (g *Governor) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return
	}
	g.started = true
	g.prev = debug.SetMemoryLimit(-1)
	g.updateLocked()
	go g.watch()
}

// Close stops watching and restores the limit found at Start. It is
// idempotent.
func (g *Governor) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	started := g.started
	g.mu.Unlock()
	if !started {
		return nil
	}
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	debug.SetMemoryLimit(g.prev)
	g.limit = 0
	return nil
}

// Limit reports the limit the governor holds the runtime to now (0: none,
// lifted or closed), and how many times it was lifted since Start.
func (g *Governor) Limit() (limit int64, lifts int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.lifts
}

func (g *Governor) watch() {
	defer close(g.done)
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		g.updateLocked()
		g.mu.Unlock()
	}
}

// updateLocked sets, moves or lifts the limit after the runtime's figures.
// Lock should be held.
func (g *Governor) updateLocked() {
	u := g.read()
	limit, ok := g.cfg.limitFor(u)
	switch {
	case ok && g.limit == 0:
		g.limit = limit
		debug.SetMemoryLimit(limit)
		if g.lifts > 0 {
			g.log.Info("memory limit applied again", "limit-bytes", limit, "live-heap-bytes", u.live)
		}
	case ok && limit != g.limit:
		// Move in steps of at least 1 MiB, or to the budget.
		if d := limit - g.limit; d >= 1<<20 || d <= -(1<<20) || limit == g.cfg.Limit {
			g.limit = limit
			debug.SetMemoryLimit(limit)
		}
	case !ok && g.limit != 0:
		g.limit = 0
		g.lifts++
		debug.SetMemoryLimit(g.prev)
		g.log.Info("memory limit lifted: the live heap needs more than the budget stretched; Go's default pacing until it fits again",
			"limit-bytes", g.cfg.Limit, "live-heap-bytes", u.live, "other-bytes", u.other)
	}
}

// The runtime/metrics samples readUsage reads.
var usageSamples = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// readUsage reads the live heap and the runtime's memory besides heap spans.
func readUsage() usage {
	s := make([]metrics.Sample, len(usageSamples))
	for i, name := range usageSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	v := make([]int64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = int64(s[i].Value.Uint64())
		}
	}
	return usage{live: v[0], other: max(0, v[1]-v[2]-v[3]-v[4]-v[5])}
}
