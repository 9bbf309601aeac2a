package memplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/mailbox"
)

// Handle is one broker's connection to a Plane; it implements
// broker.ControlPlane. Views are delivered by a goroutine of the handle, one
// at a time, and only the newest is kept while the broker is busy, so a slow
// broker never holds up the plane.
type Handle struct {
	p     *Plane
	views *mailbox.Latest[broker.ClusterView]
	done  chan struct{} // closed by Close
	wg    sync.WaitGroup

	// Guarded by p.mu.
	info         broker.BrokerInfo
	registered   bool
	deregistered bool
	closed       bool
}

var _ broker.ControlPlane = (*Handle)(nil)

// Register adds the broker to the live set and starts delivering views. A
// leaderless partition the broker may lead (it is in the ISR, or any replica
// with unclean election) gets it as leader, as a Kafka controller does when a
// replica returns.
func (h *Handle) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	switch {
	case onView == nil:
		return errors.New("memplane: register: onView is nil")
	case self.ID < 0:
		return fmt.Errorf("memplane: register: broker id %d is negative", self.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memplane: register: %w", err)
	}
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed || h.closed:
		return errClosed
	case h.registered:
		return fmt.Errorf("memplane: register: handle already registered broker %d", h.info.ID)
	case p.live[self.ID] != nil:
		return fmt.Errorf("memplane: register: broker %d is already registered by another handle", self.ID)
	}
	h.info, h.registered = self, true
	p.live[self.ID] = h
	p.handles[h] = struct{}{}
	h.wg.Go(func() { h.views.Run(h.done, onView) })
	p.log.Info("memplane: broker registered", "node-id", self.ID, "addr", self.Addr)
	p.onlineLocked(self.ID)
	p.publishLocked()
	return nil
}

// Deregister is a controlled shutdown: the broker hands its leaderships to
// other live ISR members and leaves the ISRs and the live set at once, as a
// Kafka broker does before a clean stop. The broker calls it from Close.
func (h *Handle) Deregister(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memplane: deregister: %w", err)
	}
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !h.registered || h.closed || h.deregistered {
		return nil
	}
	h.deregistered = true
	p.failoverLocked(h.info.ID)
	h.leaveLocked()
	return nil
}

// Close stops the view deliveries and removes the broker from the live set
// (a crash unless Deregister came first: leaderships stay unless the plane
// has AutoFailover). It must not be called from onView. It is idempotent.
func (h *Handle) Close() error {
	p := h.p
	p.mu.Lock()
	if h.closed {
		p.mu.Unlock()
		return nil
	}
	h.closed = true
	delete(p.handles, h)
	if h.registered && !h.deregistered {
		if p.autoFailover {
			p.failoverLocked(h.info.ID)
		}
		h.leaveLocked()
	}
	p.mu.Unlock()
	close(h.done)
	h.wg.Wait()
	return nil
}

// leaveLocked removes the broker from the live set and tells the others.
// p.mu should be held.
func (h *Handle) leaveLocked() {
	p := h.p
	if p.live[h.info.ID] != h {
		return
	}
	delete(p.live, h.info.ID)
	p.log.Info("memplane: broker left", "node-id", h.info.ID)
	p.publishLocked()
}

// AlterISR stores a new ISR proposed by the partition's leader.
func (h *Handle) AlterISR(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	if err := ctx.Err(); err != nil {
		return broker.PartitionState{}, fmt.Errorf("memplane: alter isr: %w", err)
	}
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || h.closed || !h.registered || h.deregistered {
		return broker.PartitionState{}, errClosed
	}
	st, err := p.partLocked(want.Topic, want.Partition)
	if err != nil {
		return broker.PartitionState{}, err
	}
	switch {
	case want.LeaderEpoch != st.LeaderEpoch:
		return broker.PartitionState{}, fmt.Errorf("memplane: alter isr %s/%d: leader epoch %d, current %d: %w",
			want.Topic, want.Partition, want.LeaderEpoch, st.LeaderEpoch, broker.ErrFenced)
	case st.Leader != h.info.ID:
		return broker.PartitionState{}, fmt.Errorf("memplane: alter isr %s/%d: broker %d is not the leader %d: %w",
			want.Topic, want.Partition, h.info.ID, st.Leader, broker.ErrFenced)
	case want.Version != st.Version:
		return broker.PartitionState{}, fmt.Errorf("memplane: alter isr %s/%d: version %d, current %d: %w",
			want.Topic, want.Partition, want.Version, st.Version, broker.ErrStaleState)
	}
	if err := checkISR(*st, want.ISR); err != nil {
		return broker.PartitionState{}, err
	}
	st.ISR = slices.Clone(want.ISR)
	st.Version = p.nextVersionLocked()
	p.log.Debug("memplane: isr changed", "topic", st.Topic, "partition", st.Partition, "isr", st.ISR, "node-id", h.info.ID)
	p.publishLocked()
	return clone(*st), nil
}

// CreateTopics creates topics, placing replicas round-robin over the live
// brokers.
func (h *Handle) CreateTopics(ctx context.Context, topics []broker.TopicConfig) []error {
	if err := ctx.Err(); err != nil {
		return fill(len(topics), fmt.Errorf("memplane: create topics: %w", err))
	}
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || h.closed {
		return fill(len(topics), errClosed)
	}
	errs := make([]error, len(topics))
	created := false
	for i, cfg := range topics {
		errs[i] = p.createLocked(cfg)
		created = created || errs[i] == nil
	}
	if created {
		p.publishLocked()
	}
	return errs
}

// DeleteTopics deletes topics; every later view lists them in
// DeletedTopics until they are created again.
func (h *Handle) DeleteTopics(ctx context.Context, names []string) []error {
	if err := ctx.Err(); err != nil {
		return fill(len(names), fmt.Errorf("memplane: delete topics: %w", err))
	}
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || h.closed {
		return fill(len(names), errClosed)
	}
	errs := make([]error, len(names))
	deleted := false
	for i, name := range names {
		if _, ok := p.topics[name]; !ok {
			errs[i] = fmt.Errorf("memplane: delete topic %q: %w", name, broker.ErrUnknownTopic)
			continue
		}
		delete(p.topics, name)
		p.deleted[name] = struct{}{}
		deleted = true
		p.log.Info("memplane: topic deleted", "topic", name)
	}
	if deleted {
		p.publishLocked()
	}
	return errs
}

// offer replaces the pending view without blocking. It runs under p.mu.
func (h *Handle) offer(v broker.ClusterView) { h.views.Offer(v) }
