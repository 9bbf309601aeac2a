package nameserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// Controller mode (RocketMQ 5, topology nameserver-controller): the
// registrar also heartbeats to the controllers (controller.Client), whose
// group state decides who is master. The broker's controller broker id is
// RegistrarConfig.BrokerID+1 (controller ids start at 1); it registers with
// the name servers as MasterID (0) while the controller names it master and
// under its controller id otherwise, with the master epoch, so a name
// server keeps the newest master when an isolated old one still registers.
//
// The own group's partitions come from the controller state, not from the
// routes: replicas are the group's registered members (master first),
// leader the master, leader epoch the master epoch, ISR the SyncStateSet
// and Version its epoch. AlterISR becomes AlterSyncStateSet: a shrink of
// any partition shrinks the group's set (a compare-and-swap on its epoch);
// a member is added once every partition of the group has asked for it, as
// RocketMQ's set covers the whole commit log.

// expansionWait bounds how long a partition's SyncStateSet growth waits
// for the group's other partitions to ask for the same broker.
const expansionWait = time.Second

// ctrlID is the broker's id at the controllers.
func (r *Registrar) ctrlID() int32 { return r.cfg.BrokerID + 1 }

// registeredIDLocked is the broker id to register with the name servers.
// Lock should be held.
func (r *Registrar) registeredIDLocked() int32 {
	if r.ctrl == nil {
		return r.cfg.BrokerID
	}
	if r.isMasterLocked() {
		return MasterID
	}
	return r.ctrlID()
}

// isMasterLocked reports whether this broker is its group's master now.
// Lock should be held.
func (r *Registrar) isMasterLocked() bool {
	if r.ctrl == nil {
		return r.cfg.BrokerID == MasterID
	}
	return r.ctrlState != nil && r.ctrlState.MasterID == r.ctrlID()
}

// masterEpochLocked is the master epoch registered with the name servers:
// the controller's while this broker is master, else 0. Lock should be
// held.
func (r *Registrar) masterEpochLocked() int32 {
	if r.ctrl == nil || !r.isMasterLocked() {
		return 0
	}
	return r.ctrlState.MasterEpoch
}

// startController starts heartbeating to the controllers and waits for the
// group's first state, so the broker registers with the name servers in
// the role the controllers gave it.
func (r *Registrar) startController(ctx context.Context, self broker.BrokerInfo) error {
	if err := r.ctrl.Start(self.ID, self.Addr, r.onControllerState); err != nil {
		return err
	}
	st, err := r.ctrl.WaitState(ctx)
	if err != nil {
		return fmt.Errorf("nameserver: %w: %w", broker.ErrControlPlaneDown, err)
	}
	r.log.Info("controller state", "master", st.MasterID, "master-epoch", st.MasterEpoch,
		"sync-state-set", st.SyncStateSet)
	return nil
}

// onControllerState adopts a new group state: the broker's view changes at
// once (leader, epoch, ISR), and a role change re-registers with every
// name server now.
func (r *Registrar) onControllerState(st controller.GroupState) {
	r.mu.Lock()
	was := r.isMasterLocked()
	if r.ctrlState == nil || r.ctrlState.MasterEpoch != st.MasterEpoch {
		clear(r.caught)
	}
	r.ctrlState = &st
	now := r.isMasterLocked()
	r.dirty = true
	r.views.Offer(r.viewLocked())
	changed := r.ctrlChanged
	r.ctrlChanged = make(chan struct{})
	r.mu.Unlock()
	close(changed)
	if was != now {
		r.log.Info("role changed by the controller", "master", now, "master-epoch", st.MasterEpoch,
			"sync-state-set", st.SyncStateSet)
		r.topicsChanged()
	}
}

// ctrlPartitionLocked is the state of one of the own group's partitions
// in controller mode. Lock should be held.
func (r *Registrar) ctrlPartitionLocked(cfg broker.TopicConfig, p int32) broker.PartitionState {
	st := broker.PartitionState{Topic: cfg.Name, Partition: p, Leader: -1, MinInsync: cfg.MinInsync,
		Fanout: cfg.Fanout, FollowerReads: true, AsyncAck: r.cfg.mode() == ModeAsync}
	g := r.ctrlState
	if g == nil {
		st.Replicas, st.ISR = []int32{r.self.ID}, []int32{r.self.ID}
		return st
	}
	ids := make([]int32, 0, len(g.Brokers))
	for _, b := range g.Brokers {
		ids = append(ids, b.BrokerID)
	}
	masterFirst := func(ids []int32) []int32 {
		slices.SortFunc(ids, func(a, b int32) int {
			return cmp.Or(cmp.Compare(b2i(b == g.MasterID), b2i(a == g.MasterID)), cmp.Compare(a, b))
		})
		var nodes []int32
		for _, id := range ids {
			if b, ok := g.Broker(id); ok {
				nodes = append(nodes, b.NodeID)
			}
		}
		return nodes
	}
	st.Replicas = masterFirst(ids)
	if !slices.Contains(st.Replicas, r.self.ID) { // not registered yet
		st.Replicas = append(st.Replicas, r.self.ID)
	}
	st.ISR = masterFirst(slices.Clone(g.SyncStateSet))
	if m, ok := g.Broker(g.MasterID); ok {
		st.Leader = m.NodeID
	}
	st.LeaderEpoch = g.MasterEpoch
	st.Version = int64(g.SyncStateSetEpoch)
	return st
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// groupPartitionsLocked lists the partitions of the own group. Lock should
// be held.
func (r *Registrar) groupPartitionsLocked() []partKey {
	var out []partKey
	for _, t := range r.store.list() {
		for i := range t.Queues {
			out = append(out, partKey{t.Name, t.FirstPartition + i})
		}
	}
	return out
}

// alterSyncStateSet serves AlterISR in controller mode.
func (r *Registrar) alterSyncStateSet(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	k := partKey{want.Topic, want.Partition}
	for {
		// Who is inactive now: the heartbeat answers keep the client's
		// state current, while ctrlState changes only with the master,
		// an epoch or the members.
		var inactive []int32
		if cur, ok := r.ctrl.State(); ok {
			inactive = cur.Inactive
		}
		r.mu.Lock()
		g := r.ctrlState
		switch {
		case g == nil || !r.isMasterLocked():
			r.mu.Unlock()
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w", want.Topic, want.Partition, ErrNotMaster)
		case want.LeaderEpoch != g.MasterEpoch:
			r.mu.Unlock()
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: epoch %d, master epoch %d: %w",
				want.Topic, want.Partition, want.LeaderEpoch, g.MasterEpoch, broker.ErrFenced)
		case r.sameSetLocked(g, want.ISR):
			// Already so (another partition's request did it).
			st := r.ctrlPartitionLocked(broker.TopicConfig{Name: want.Topic, MinInsync: want.MinInsync, Fanout: want.Fanout}, want.Partition)
			r.mu.Unlock()
			return st, nil
		case want.Version != int64(g.SyncStateSetEpoch):
			r.mu.Unlock()
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: version %d, sync state set epoch %d: %w",
				want.Topic, want.Partition, want.Version, g.SyncStateSetEpoch, broker.ErrStaleState)
		}
		next, ok, err := r.nextSyncStateSetLocked(g, k, want.ISR, inactive)
		if err != nil {
			r.mu.Unlock()
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w", want.Topic, want.Partition, err)
		}
		if next == nil && !ok {
			// An expansion other partitions have not asked for yet: wait
			// for the group's state to change, or give up (the broker
			// asks again on a later fetch).
			// The wait is short: each partition has one proposal in flight,
			// so partition A waiting to add broker 1 while B waits to add
			// broker 2 (each caught up where the other is not yet asked)
			// would hold both until the broker's 10 s bound. Giving up
			// soon lets the next fetch propose again; what was recorded
			// as caught up stays recorded.
			changed := r.ctrlChanged
			r.mu.Unlock()
			wait := time.NewTimer(expansionWait)
			select {
			case <-changed:
				wait.Stop()
				continue
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
			}
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: other partitions lag: %w",
				want.Topic, want.Partition, broker.ErrStaleState)
		}
		if next == nil { // nothing to change
			st := r.ctrlPartitionLocked(broker.TopicConfig{Name: want.Topic, MinInsync: want.MinInsync, Fanout: want.Fanout}, want.Partition)
			r.mu.Unlock()
			return st, nil
		}
		r.mu.Unlock()
		ng, err := r.ctrl.AlterSyncStateSet(ctx, g.MasterEpoch, g.SyncStateSetEpoch, next)
		if err != nil {
			return broker.PartitionState{}, fmt.Errorf("nameserver: alter sync state set %v: %w", next, ctrlError(err))
		}
		r.log.Info("sync state set changed", "sync-state-set", ng.SyncStateSet, "epoch", ng.SyncStateSetEpoch)
		r.mu.Lock()
		st := r.ctrlPartitionLocked(broker.TopicConfig{Name: want.Topic, MinInsync: want.MinInsync, Fanout: want.Fanout}, want.Partition)
		r.mu.Unlock()
		return st, nil
	}
}

// sameSetLocked reports whether the node ids isr are the SyncStateSet.
// Lock should be held.
func (r *Registrar) sameSetLocked(g *controller.GroupState, isr []int32) bool {
	if len(isr) != len(g.SyncStateSet) {
		return false
	}
	for _, node := range isr {
		i := slices.IndexFunc(g.Brokers, func(b controller.Broker) bool { return b.NodeID == node })
		if i < 0 || !g.InSync(g.Brokers[i].BrokerID) {
			return false
		}
	}
	return true
}

// nextSyncStateSetLocked turns a partition's proposed ISR (node ids) into
// the group's next SyncStateSet (broker ids): nil and true when nothing
// changes, nil and false when an expansion waits for other partitions.
// Brokers in inactive are never added.
// Lock should be held.
func (r *Registrar) nextSyncStateSetLocked(g *controller.GroupState, k partKey, isr, inactive []int32) ([]int32, bool, error) {
	want := make([]int32, 0, len(isr))
	for _, node := range isr {
		i := slices.IndexFunc(g.Brokers, func(b controller.Broker) bool { return b.NodeID == node })
		if i < 0 {
			return nil, false, fmt.Errorf("node %d is not a member of the group: %w", node, broker.ErrStaleState)
		}
		want = append(want, g.Brokers[i].BrokerID)
	}
	if !slices.Contains(want, g.MasterID) {
		return nil, false, fmt.Errorf("isr %v lacks the master: %w", isr, broker.ErrStaleState)
	}
	cur := g.SyncStateSet
	removed := slices.DeleteFunc(slices.Clone(cur), func(id int32) bool { return slices.Contains(want, id) })
	if len(removed) > 0 {
		for _, id := range removed {
			delete(r.caught, id)
		}
		return slices.DeleteFunc(slices.Clone(cur), func(id int32) bool { return slices.Contains(removed, id) }), true, nil
	}
	// A broker the controller holds inactive cannot join (it rejects the
	// whole set): a broker in a graceful stop still fetches, and caught up,
	// until it exits, and proposing it would keep every other follower out.
	var waiting []int32
	added := slices.DeleteFunc(slices.Clone(want), func(id int32) bool {
		if slices.Contains(cur, id) {
			return true
		}
		if slices.Contains(inactive, id) {
			waiting = append(waiting, id)
			return true
		}
		return false
	})
	if len(added) == 0 && len(waiting) > 0 {
		// Ask again later: a restarted broker is active once its first
		// heartbeat is in.
		return nil, false, fmt.Errorf("brokers %v are inactive at the controller: %w", waiting, broker.ErrStaleState)
	}
	if len(added) == 0 {
		return nil, true, nil
	}
	parts := r.groupPartitionsLocked()
	next := slices.Clone(cur)
	for _, id := range added {
		if r.caught[id] == nil {
			r.caught[id] = make(map[partKey]bool)
		}
		r.caught[id][k] = true
		if !slices.ContainsFunc(parts, func(p partKey) bool { return !r.caught[id][p] }) {
			next = append(next, id)
		}
	}
	if len(next) == len(cur) {
		return nil, false, nil
	}
	slices.Sort(next)
	return next, true, nil
}

// ctrlError maps a controller error onto the broker's control-plane
// sentinels.
func ctrlError(err error) error {
	switch {
	case errors.Is(err, controller.ErrFenced):
		return fmt.Errorf("%w: %w", broker.ErrFenced, err)
	case errors.Is(err, controller.ErrStaleSyncStateSet), errors.Is(err, controller.ErrBadRequest):
		return fmt.Errorf("%w: %w", broker.ErrStaleState, err)
	default:
		return fmt.Errorf("%w: %w", broker.ErrControlPlaneDown, err)
	}
}
