package testutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallySucceedsOnceTrue(t *testing.T) {
	var calls atomic.Int32
	Eventually(t, 5*time.Second, func() error {
		if calls.Add(1) < 5 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := calls.Load(); got != 5 {
		t.Fatalf("f called %d times, want 5", got)
	}
}

func TestPollReturnsLastErrorAfterTimeout(t *testing.T) {
	errLast := errors.New("still false")
	start := time.Now()
	err := Poll(context.Background(), 50*time.Millisecond, func() error { return errLast })
	if !errors.Is(err, errLast) {
		t.Fatalf("err = %v, want it to wrap %v", err, errLast)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Fatalf("returned after %v, want about 50ms", el)
	}
}

func TestPollStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Poll(ctx, time.Hour, func() error { return errors.New("never") })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// recorder is a testing.TB that captures Logf and Fatalf.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	lines    []string
	fatal    string
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }

func TestEventuallyFailsWithLastError(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 20*time.Millisecond, func() error { return errors.New("broker 2 not in ISR") })
	if !strings.Contains(r.fatal, "broker 2 not in ISR") {
		t.Fatalf("fatal message %q does not carry the last error", r.fatal)
	}
}

func TestLoggerRoutesToTestAndDropsAfterEnd(t *testing.T) {
	r := &recorder{TB: t}
	log := Logger(r, slog.LevelInfo)
	log.Debug("hidden")
	log.Info("shown", "node-id", 3)
	for _, f := range r.cleanups {
		f()
	}
	log.Error("after the end")
	if len(r.lines) != 1 || !strings.Contains(r.lines[0], "msg=shown") || !strings.Contains(r.lines[0], "node-id=3") {
		t.Fatalf("lines = %q, want exactly the info line", r.lines)
	}
}
