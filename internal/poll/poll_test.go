package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errNotYet = errors.New("not yet")

func TestUntilSucceeds(t *testing.T) {
	calls := 0
	err := Until(context.Background(), time.Minute, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errNotYet
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilTimesOutWithTheLastError(t *testing.T) {
	last := errors.New("still not")
	calls := 0
	err := Until(context.Background(), 20*time.Millisecond, time.Millisecond, func() error {
		calls++
		if calls == 1 {
			return errNotYet
		}
		return last
	})
	if !errors.Is(err, last) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errNotYet) {
		t.Fatalf("err %v: want the last error and a deadline", err)
	}
	if calls < 2 {
		t.Fatalf("%d calls in 20 ms at 1 ms intervals", calls)
	}
}

func TestUntilEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Until(ctx, 0, time.Millisecond, func() error {
		calls++
		if calls == 2 {
			cancel()
		}
		return errNotYet
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errNotYet) {
		t.Fatalf("err %v: want cancelled with the last error", err)
	}
}

func TestStopEndsAtOnce(t *testing.T) {
	final := errors.New("can never hold")
	calls := 0
	err := Until(context.Background(), time.Minute, time.Hour, func() error {
		calls++
		return Stop(final)
	})
	if err != final || calls != 1 {
		t.Fatalf("err %v after %d calls, want the bare final error after 1", err, calls)
	}
	if Stop(nil) != nil {
		t.Fatal("Stop(nil) is not nil")
	}
}

func TestBackoffGrows(t *testing.T) {
	var at []time.Time
	start := time.Now()
	_ = Backoff(context.Background(), 0, time.Millisecond, 8*time.Millisecond, func() error {
		at = append(at, time.Now())
		if len(at) == 6 {
			return Stop(errNotYet)
		}
		return errNotYet
	})
	// Pauses of at least 1, 2, 4, 8, 8 ms: 23 ms in all.
	if len(at) != 6 || at[5].Sub(start) < 23*time.Millisecond {
		t.Fatalf("%d calls in %v, want 6 in at least 23 ms", len(at), at[len(at)-1].Sub(start))
	}
}

func TestEveryTicksKicksAndEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{})
	calls := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Hour, kick, func(now time.Time) { calls <- now })
	}()
	before := time.Now()
	kick <- struct{}{}
	if now := <-calls; now.Before(before) {
		t.Fatalf("kick called f with %v, before the kick at %v", now, before)
	}
	cancel()
	<-done

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	n := 0
	Every(ctx, time.Millisecond, nil, func(time.Time) {
		if n++; n == 3 {
			cancel() // Every returns (a tick already due may still run)
		}
	})
	if n < 3 {
		t.Fatalf("f called %d times, want the 3 ticks before the context ended", n)
	}
}
