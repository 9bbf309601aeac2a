package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of this package, wrapped with %w.
var (
	// ErrUnknownTopic: the cluster does not know the topic (yet).
	ErrUnknownTopic = errors.New("discovery: unknown topic")
	// ErrNoRoute: no bootstrap broker or name server answered.
	ErrNoRoute = errors.New("discovery: no broker or name server answered")
	// ErrClosed: the discovery was closed.
	ErrClosed = errors.New("discovery: closed")
)

// Discovery tells clients where a topic's partitions live. Bootstrap does it
// as a Kafka client does (Metadata from any broker), NameServers as a
// RocketMQ client does (routes from any name server, with fault avoidance).
// Implementations are safe for concurrent use by every partition goroutine
// of a producer and a consumer.
type Discovery interface {
	// Route returns the topic's route, from the cache while it is fresh.
	Route(ctx context.Context, topic string) (Route, error)
	// Invalidate marks the topic's route stale after a send or fetch
	// failed: the next Route fetches it again (no more often than the
	// refresh backoff).
	Invalidate(topic string)
	// Report feeds back a send to a partition's Group: how long it took
	// and whether it failed. Only fault-avoiding discoveries use it.
	Report(group string, latency time.Duration, err error)
	// Avoid reports whether producers should keep away from group now.
	Avoid(group string) bool
	// Close stops background work. Idempotent.
	Close() error
}

// FirstRoute waits until d gives topic a route with partitions, as a
// client's first send or fetch does: after each miss it invalidates the
// route, calls miss (when set) with the reason, and tries again after
// backoff (at least 50 ms). When ctx ends first it returns the last
// reason, prefixed with the topic.
func FirstRoute(ctx context.Context, d Discovery, topic string, backoff time.Duration, miss func(error)) (Route, error) {
	backoff = max(backoff, 50*time.Millisecond)
	for {
		r, err := d.Route(ctx, topic)
		if err == nil && len(r.Partitions) > 0 {
			return r, nil
		}
		if err == nil {
			err = errors.New("route has no partitions")
		}
		d.Invalidate(topic)
		if miss != nil {
			miss(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return Route{}, fmt.Errorf("%s: %w", topic, err)
		case <-t.C:
		}
	}
}

// Route is a topic's partitions as one client sees them.
type Route struct {
	Topic string
	// Partitions, by ID; every partition of the topic is present, with
	// Leader "" while it has none.
	Partitions []Partition
	// Fetched is when this route was learned.
	Fetched time.Time
}

// Partition is where one partition lives.
type Partition struct {
	ID int32
	// Leader is the address producers write to; "" when the partition has
	// no leader (Kafka) or its group's master is absent (RocketMQ).
	Leader string
	// LeaderID is the leader's Kafka node id, -1 when none.
	LeaderID int32
	// LeaderEpoch is the leader's epoch when the source reports one, else -1.
	LeaderEpoch int32
	// Readers are the addresses consumers may fetch from, preferred first:
	// the leader, then (with name servers) the group's slaves. Empty when
	// nobody can serve reads.
	Readers []string
	// Group is what fault avoidance tracks: the broker group (RocketMQ
	// brokerName) or, for Kafka, "broker-<leader id>".
	Group string
}

// Partition returns partition id of the route.
func (r Route) Partition(id int32) (Partition, bool) {
	if id >= 0 && int(id) < len(r.Partitions) && r.Partitions[id].ID == id {
		return r.Partitions[id], true
	}
	for _, p := range r.Partitions {
		if p.ID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// Writable returns the partitions with a leader whose group avoid does not
// reject; when avoid rejects every such partition it returns all of them
// anyway, as RocketMQ does, rather than nothing. avoid may be nil.
func (r Route) Writable(avoid func(group string) bool) []Partition {
	var all, ok []Partition
	for _, p := range r.Partitions {
		if p.Leader == "" {
			continue
		}
		all = append(all, p)
		if avoid == nil || !avoid(p.Group) {
			ok = append(ok, p)
		}
	}
	if len(ok) == 0 {
		return all
	}
	return ok
}

// Change is a partition's route moving: a discovery learning a new leader
// (Config.OnChange) or a client sending its first request to a new address
// for the partition (producer and consumer OnRoute). A runner measures route
// convergence as the time from a fault to the last such change to the new
// address among all clients.
type Change struct {
	// Client names the observer ("" for a discovery; the producer or
	// consumer name otherwise).
	Client    string
	Topic     string
	Partition int32
	// Addr is the address now used ("" when the partition lost its route);
	// Previous is the one before ("" on first use).
	Addr     string
	Previous string
	// LeaderEpoch is the epoch of Addr's leadership when known, else -1.
	LeaderEpoch int32
	At          time.Time
}

// diff returns the changes from old to new, at time at.
func diff(old, new Route, at time.Time) []Change {
	var out []Change
	for _, p := range new.Partitions {
		prev, had := old.Partition(p.ID)
		if had && prev.Leader == p.Leader && prev.LeaderEpoch == p.LeaderEpoch && firstOr(prev.Readers) == firstOr(p.Readers) {
			continue
		}
		addr := p.Leader
		if addr == "" {
			addr = firstOr(p.Readers)
		}
		pa := prev.Leader
		if pa == "" {
			pa = firstOr(prev.Readers)
		}
		out = append(out, Change{Topic: new.Topic, Partition: p.ID, Addr: addr, Previous: pa, LeaderEpoch: p.LeaderEpoch, At: at})
	}
	return out
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
