package memlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "400MiB", want: 400 << 20},
		{in: " 1GiB ", want: 1 << 30},
		{in: "500MB", want: 500e6},
		{in: "off", want: 0},
		{in: "0", want: 0},
		{in: "32MiB", want: MinLimit},
		{in: "31MiB", bad: true},
		{in: "100", bad: true}, // 100 bytes
		{in: "", bad: true},
		{in: "-1GiB", bad: true},
		{in: "lots", bad: true},
		{in: "400MiBs", bad: true},
		{in: "99999999PiB", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLimit(tc.in)
			if tc.bad {
				if !errors.Is(err, ErrBadLimit) {
					t.Fatalf("ParseLimit(%q) = %d, %v; want ErrBadLimit", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, c := range map[string]Config{
		"limit below minimum": {Limit: MinLimit - 1},
		"negative headroom":   {Limit: DefaultLimit, Headroom: -0.1},
		"headroom above 1":    {Limit: DefaultLimit, Headroom: 1.5},
		"NaN headroom":        {Limit: DefaultLimit, Headroom: math.NaN()},
		"negative interval":   {Limit: DefaultLimit, Interval: -time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v validated", name, c)
		}
		if _, err := New(c, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
}

// TestLimitFor pins the rule: the budget while the live heap grown by the
// headroom, plus the runtime's other memory, fits under it; what they need
// up to Stretch × the budget; no limit beyond.
func TestLimitFor(t *testing.T) {
	c := Config{Limit: 400 << 20, Headroom: 0.25}
	for _, tc := range []struct {
		live, other int64
		limit       int64 // 0: lifted
	}{
		{0, 0, 400 << 20},
		{100 << 20, 10 << 20, 400 << 20},
		{312 << 20, 10 << 20, 400 << 20}, // 390 + 10 = 400 MiB
		{320 << 20, 0, 400 << 20},        // 400
		{328 << 20, 0, 410 << 20},        // 410: stretched
		{392 << 20, 10 << 20, 500 << 20}, // 490 + 10 = 500 = 1.25 × 400
		{393 << 20, 10 << 20, 0},         // 501.25: lifted
		{2 << 30, 0, 0},
	} {
		limit, ok := c.limitFor(usage{live: tc.live, other: tc.other})
		if !ok {
			limit = 0
		}
		if limit != tc.limit {
			t.Errorf("limitFor(live %d MiB, other %d MiB) = %d MiB, want %d MiB", tc.live>>20, tc.other>>20, limit>>20, tc.limit>>20)
		}
	}
}

// fakeUsage stands in for the runtime's figures in a governor's unit tests.
type fakeUsage struct {
	mu sync.Mutex
	u  usage
}

func (f *fakeUsage) set(live int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.u.live = live
}

func (f *fakeUsage) read() usage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.u
}

// restoreLimit puts the runtime's limit back after a test that changes it.
func restoreLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

// TestGovernorLiftsAndReapplies drives a governor with a fake live heap:
// the runtime's limit is the budget while it fits, follows the heap's need
// up to the stretch, is the previous limit once the live heap outgrows
// that, the budget again when it fits again, and the previous limit after
// Close.
func TestGovernorLiftsAndReapplies(t *testing.T) {
	restoreLimit(t)
	const before = 3 << 30
	debug.SetMemoryLimit(before)
	f := &fakeUsage{}
	g, err := New(Config{Limit: 64 << 20, Interval: time.Millisecond}, testutil.Logger(t, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	g.read = f.read
	g.Start()
	t.Cleanup(func() { _ = g.Close() })
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Fatalf("after Start: runtime limit %d, want the budget %d", got, 64<<20)
	}
	// want checks the runtime's limit and the governor's (0: lifted).
	want := func(runtimeLimit, limit int64, lifts int) func() error {
		return func() error {
			got := debug.SetMemoryLimit(-1)
			l, n := g.Limit()
			if got != runtimeLimit || l != limit || n != lifts {
				return fmt.Errorf("runtime limit %d, governor's %d, lifts %d; want %d, %d, %d", got, l, n, runtimeLimit, limit, lifts)
			}
			return nil
		}
	}
	f.set(56 << 20) // 70 MiB with headroom: stretched
	testutil.Eventually(t, 10*time.Second, want(70<<20, 70<<20, 0))
	f.set(72 << 20) // 90 MiB: beyond 1.25 × 64 = 80, lifted
	testutil.Eventually(t, 10*time.Second, want(before, 0, 1))
	f.set(40 << 20) // 50 MiB: fits
	testutil.Eventually(t, 10*time.Second, want(64<<20, 64<<20, 1))
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := want(before, 0, 1)(); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	g.Start() // after Close: nothing
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("Start after Close set the limit to %d", got)
	}
}

// sink keeps the test's large live heap reachable.
var sink [][]byte

// TestGovernorRealHeap: with the runtime's own figures, a live heap larger
// than the stretched budget lifts it, so the collector is never made to chase a
// limit below what the heap needs; freed, the budget holds again.
func TestGovernorRealHeap(t *testing.T) {
	restoreLimit(t)
	debug.SetMemoryLimit(math.MaxInt64)
	g, err := New(Config{Limit: MinLimit, Interval: 5 * time.Millisecond}, testutil.Logger(t, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	g.Start()
	t.Cleanup(func() { _ = g.Close() })
	testutil.Eventually(t, 10*time.Second, func() error {
		if limit, _ := g.Limit(); limit != MinLimit {
			return fmt.Errorf("limit %d with a small heap (%+v), want the budget", limit, readUsage())
		}
		return nil
	})
	for range 48 {
		sink = append(sink, make([]byte, 1<<20))
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		runtime.GC()
		if limit, lifts := g.Limit(); limit != 0 || lifts == 0 {
			return fmt.Errorf("live heap %d MiB: limit %d, lifts %d", readUsage().live>>20, limit, lifts)
		}
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			return fmt.Errorf("lifted but the runtime limit is %d", got)
		}
		return nil
	})
	sink = nil
	testutil.Eventually(t, 10*time.Second, func() error {
		runtime.GC()
		if limit, _ := g.Limit(); limit != MinLimit {
			return fmt.Errorf("live heap %d MiB: limit %d, want the budget again", readUsage().live>>20, limit)
		}
		if got := debug.SetMemoryLimit(-1); got != MinLimit {
			return fmt.Errorf("applied but the runtime limit is %d", got)
		}
		return nil
	})
}
