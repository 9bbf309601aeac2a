package testutil

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/internal/poll"
)

// Poll intervals of Eventually: it starts fast so quick conditions cost little
// and backs off so slow ones do not burn the CPU other tests share.
const (
	firstPoll = time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// Eventually calls f until it returns nil, and fails the test with f's last
// error when timeout passes first. Like t.Fatal it must be called from the
// goroutine running the test.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Poll(context.Background(), timeout, f); err != nil {
		t.Fatalf("eventually: not true after %v: %v", timeout, err)
	}
}

// Poll calls f until it returns nil and returns nil, or returns f's last error
// (wrapped) once timeout passes or ctx ends. It is the non-fatal form of
// Eventually for goroutines other than the test's own.
func Poll(ctx context.Context, timeout time.Duration, f func() error) error {
	return poll.Backoff(ctx, timeout, firstPoll, maxPoll, f)
}

// Service is a node as tests run it: started once, closed at the end.
type Service interface {
	Start(ctx context.Context) error
	Close() error
}

// Started fails the test on err (the error of the constructor that built
// s), starts s and closes it when the test ends:
//
//	s, err := nameserver.New(cfg)
//	s = testutil.Started(t, s, err)
func Started[S Service](t testing.TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Logger returns a logger that writes records at level and above to t.Log.
// Lines logged after the test finished (by goroutines that outlive it) are
// dropped instead of panicking: the logger goes quiet when the cleanup it
// registers runs, so create it before anything whose cleanup logs.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	})
	return slog.New(h)
}

// testWriter forwards each record (slog's handlers write one record per
// Write call) to t.Logf until stop.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex // held across t.Logf so stop waits for a line in flight
	done bool
}

var _ io.Writer = (*testWriter)(nil)

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
