package discovery

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// fetchFunc fetches a topic's route from the source; force asks for a fresh
// answer rather than one the source cached.
type fetchFunc func(ctx context.Context, topic string, force bool) (Route, error)

// cache holds the routes one client knows, refreshes them through fetch,
// and reports changes. One fetch runs at a time (a Kafka client has one
// metadata request in flight); callers that find a fetch running use the
// route they have instead of waiting, so a slow refresh never stalls
// partitions whose route is fine.
type cache struct {
	// maxAge is how long a route is used without asking the source again;
	// 0 asks the source (without force) on every Route, for sources that
	// keep their own cache fresh.
	maxAge   time.Duration
	backoff  time.Duration // minimum time between forced fetches of a topic
	fetch    fetchFunc
	onChange func(Change)
	log      *slog.Logger

	sem chan struct{} // capacity 1: held while fetching

	mu     sync.Mutex // guards topics and closed
	topics map[string]*cached
	closed bool
}

type cached struct {
	route     Route
	have      bool
	stale     bool      // invalidated since the last successful fetch
	fetched   time.Time // last successful fetch
	attempted time.Time // last forced fetch attempt
}

func newCache(maxAge, backoff time.Duration, fetch fetchFunc, onChange func(Change), log *slog.Logger) *cache {
	return &cache{
		maxAge: maxAge, backoff: backoff, fetch: fetch, onChange: onChange, log: log,
		sem:    make(chan struct{}, 1),
		topics: make(map[string]*cached),
	}
}

// route returns the topic's route, fetching it when stale or old.
func (c *cache) route(ctx context.Context, topic string) (Route, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Route{}, ErrClosed
	}
	e := c.entryLocked(topic)
	if c.freshLocked(e, time.Now()) {
		r := e.route
		c.mu.Unlock()
		return r, nil
	}
	have, r := e.have, e.route
	c.mu.Unlock()

	if have {
		select {
		case c.sem <- struct{}{}:
		default:
			return r, nil // another goroutine is fetching
		}
	} else {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return Route{}, ctx.Err()
		}
	}
	defer func() { <-c.sem }()

	c.mu.Lock()
	now := time.Now()
	if c.freshLocked(e, now) || (e.have && e.stale && now.Sub(e.attempted) < c.backoff) {
		r := e.route
		c.mu.Unlock()
		return r, nil
	}
	force := !e.have || e.stale || c.maxAge > 0
	if force {
		e.attempted = now
	}
	old := e.route
	c.mu.Unlock()

	nr, err := c.fetch(ctx, topic, force)
	if err != nil {
		if have {
			c.log.Debug("route refresh failed, keeping the cached route", "topic", topic, "error", err)
			return r, nil
		}
		return Route{}, err
	}
	now = time.Now()
	nr.Fetched = now
	c.mu.Lock()
	e.route, e.have, e.stale, e.fetched = nr, true, false, now
	c.mu.Unlock()
	if c.onChange != nil {
		for _, ch := range diff(old, nr, now) {
			c.onChange(ch)
		}
	}
	return nr, nil
}

// entryLocked returns the topic's entry, creating it. Lock should be held.
func (c *cache) entryLocked(topic string) *cached {
	e := c.topics[topic]
	if e == nil {
		e = &cached{}
		c.topics[topic] = e
	}
	return e
}

// freshLocked reports whether e may be used as is. Lock should be held.
func (c *cache) freshLocked(e *cached, now time.Time) bool {
	return e.have && !e.stale && c.maxAge > 0 && now.Sub(e.fetched) < c.maxAge
}

// invalidate marks the topic's route stale.
func (c *cache) invalidate(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.topics[topic]; e != nil && e.have {
		e.stale = true
	}
}

func (c *cache) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}
