// Package poll waits for a condition by calling it until it holds: the one
// implementation behind the runtimes' start-up and fault waits and the tests'
// Eventually.
//
//	err := poll.Until(ctx, 30*time.Second, 50*time.Millisecond, func() error {
//		if !ready() {
//			return errors.New("not ready yet")
//		}
//		return nil
//	})
//
// f's error says why the condition does not hold yet; it ends up in the
// error returned when the wait ends without success. An error wrapped with
// Stop ends the wait at once: the condition can never hold. Every runs
// periodic work until its context ends.
package poll

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Until calls f until it returns nil, then returns nil. It calls f at once,
// then every interval. When ctx ends or timeout passes first (timeout <= 0:
// no timeout, only ctx), it returns an error wrapping the context's error
// and f's last error. An error wrapped with Stop is returned at once,
// unwrapped.
func Until(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	return Backoff(ctx, timeout, interval, interval, f)
}

// Backoff is Until with a growing pause: first after the first call,
// doubling up to limit, so quick conditions cost little and slow ones do not
// burn the CPU.
func Backoff(ctx context.Context, timeout, first, limit time.Duration, f func() error) error {
	parent := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	limit = max(limit, time.Microsecond)
	wait := min(max(first, time.Microsecond), limit)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var s *stopError
		if errors.As(err, &s) {
			return s.err
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return fmt.Errorf("poll: timed out after %v: %w: %w", timeout, context.DeadlineExceeded, err)
			}
			return fmt.Errorf("poll: %w (last: %w)", parent.Err(), err)
		case <-timer.C:
		}
		wait = min(2*wait, limit)
	}
}

// Stop marks err as final: Until and Backoff return it at once, without
// the mark. Stop(nil) is nil.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return &stopError{err}
}

type stopError struct{ err error }

func (s *stopError) Error() string { return s.err.Error() }
func (s *stopError) Unwrap() error { return s.err }

// Every calls f every interval, and at once whenever kick delivers (nil:
// never), until ctx ends: the loop of a node's periodic work (route polls,
// scans, gossip rounds). f gets the tick's time, or the time of the kick.
func Every(ctx context.Context, interval time.Duration, kick <-chan struct{}, f func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		case <-kick:
			now = time.Now()
		}
		f(now)
	}
}
