package nameserver

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/validate"
)

// maxPartitions bounds a topic's partition count taken from a route, so a
// corrupt answer cannot make a view allocate without limit.
const maxPartitions = 1 << 20

// snapshot is one name server's answer to a poll.
type snapshot struct {
	routes []TopicRoute
	info   ClusterInfo
}

// partKey identifies a partition.
type partKey struct {
	topic     string
	partition int32
}

// isrEntry is the ISR the master's registrar keeps for one of its
// partitions. No store is shared by the group, so the master's word is the
// ISR; Version is the compare-and-swap token of AlterISR.
type isrEntry struct {
	replicas []int32
	isr      []int32
	version  int64
}

// viewLocked builds the broker's view from the last snapshot, the broker's
// own topic configuration and the master's ISRs. Lock should be held.
//
// Brokers are the cluster's registered members plus the broker itself;
// ControllerID is the lowest of their node ids (Kafka clients need a listed
// broker there; nothing else depends on it). A partition's replicas are
// its group's registered members, master first; its leader is the master
// while the master is in the route, else -1; LeaderEpoch is always 0 since
// no master ever changes.
//
// DeletedTopics are the topics a name server's deletion push removed from
// the group (topicStore.deleted). A topic that is merely absent from the
// answer, as after a name server restart, is left out of Topics and not
// announced as deleted, so the broker keeps its data.
func (r *Registrar) viewLocked() broker.ClusterView {
	var snap snapshot
	if r.snap != nil {
		snap = *r.snap
	}
	me := Member{BrokerID: r.registeredIDLocked(), NodeID: r.self.ID, Addr: r.self.Addr, Rack: r.self.Rack, Mode: r.cfg.mode()}

	brokers := map[int32]broker.BrokerInfo{r.self.ID: r.self}
	own := []Member{me}
	for _, g := range snap.info.Groups {
		if g.Cluster != r.cfg.Cluster {
			continue
		}
		for _, m := range g.Members {
			if m.NodeID != r.self.ID {
				brokers[m.NodeID] = broker.BrokerInfo{ID: m.NodeID, Addr: m.Addr, Rack: m.Rack}
			}
			if g.Group == r.cfg.Group && m.BrokerID != me.BrokerID {
				own = append(own, m)
			}
		}
	}
	sortMembers(own)
	if r.ctrlState != nil { // controller mode: the group's live members
		for _, b := range r.ctrlState.Brokers {
			if b.NodeID != r.self.ID && !slices.Contains(r.ctrlState.Inactive, b.BrokerID) {
				if _, ok := brokers[b.NodeID]; !ok {
					brokers[b.NodeID] = broker.BrokerInfo{ID: b.NodeID, Addr: b.Addr}
				}
			}
		}
	}

	v := broker.ClusterView{ClusterID: r.cfg.Cluster, ControllerID: -1}
	for _, b := range brokers {
		v.Brokers = append(v.Brokers, b)
	}
	slices.SortFunc(v.Brokers, func(a, b broker.BrokerInfo) int { return cmp.Compare(a.ID, b.ID) })
	v.ControllerID = v.Brokers[0].ID

	used := make(map[partKey]bool)
	addTopic := func(cfg broker.TopicConfig, groups []GroupRoute) {
		if cfg.Partitions <= 0 || cfg.Partitions > maxPartitions {
			r.log.Warn("ignoring topic with a bad partition count", "topic", cfg.Name, "partitions", cfg.Partitions)
			return
		}
		tv := broker.TopicView{Config: cfg, Partitions: make([]broker.PartitionState, cfg.Partitions)}
		for p := range cfg.Partitions {
			tv.Partitions[p] = broker.PartitionState{Topic: cfg.Name, Partition: p, Leader: -1,
				MinInsync: cfg.MinInsync, Fanout: cfg.Fanout, FollowerReads: true}
		}
		for _, g := range groups {
			members := g.Members
			if g.Group == r.cfg.Group {
				members = own
			}
			for i := range g.Queues {
				p := g.FirstPartition + i
				if p < 0 || p >= cfg.Partitions {
					break
				}
				tv.Partitions[p] = r.partitionLocked(cfg, p, members, g.Group == r.cfg.Group)
				if g.Group == r.cfg.Group {
					used[partKey{cfg.Name, p}] = true
				}
			}
		}
		v.Topics = append(v.Topics, tv)
	}

	routed := make(map[string]bool)
	for _, rt := range snap.routes {
		routed[rt.Topic] = true
		cfg := broker.TopicConfig{Name: rt.Topic, Partitions: rt.Partitions, ReplicationFactor: rt.ReplicationFactor,
			MinInsync: rt.MinInsync, Fanout: rt.Fanout}
		var groups []GroupRoute
		hasOwn := false
		for _, g := range rt.Groups {
			if g.Cluster == r.cfg.Cluster {
				groups = append(groups, g)
				hasOwn = hasOwn || g.Group == r.cfg.Group
			}
		}
		if !hasOwn { // the route lags behind the broker's own config
			if t, ok := r.store.get(rt.Topic); ok && t.Partitions == rt.Partitions {
				groups = append(groups, GroupRoute{GroupInfo: GroupInfo{Cluster: r.cfg.Cluster, Group: r.cfg.Group},
					Queues: t.Queues, FirstPartition: t.FirstPartition})
			}
		}
		if len(groups) > 0 {
			addTopic(cfg, groups)
		}
	}
	for _, t := range r.store.list() {
		// A topic the route lacks yet (just created) enters the view
		// once routed, unless this group holds all of it: a view with
		// the other groups' partitions leaderless would send clients
		// away for nothing.
		if !routed[t.Name] && t.Queues == t.Partitions {
			addTopic(t.config(), []GroupRoute{{GroupInfo: GroupInfo{Cluster: r.cfg.Cluster, Group: r.cfg.Group},
				Queues: t.Queues, FirstPartition: t.FirstPartition}})
		}
	}
	slices.SortFunc(v.Topics, func(a, b broker.TopicView) int { return cmp.Compare(a.Config.Name, b.Config.Name) })
	for _, name := range r.store.deletedNames() {
		if _, ok := v.Topic(name); !ok {
			v.DeletedTopics = append(v.DeletedTopics, name)
		}
	}
	for k := range r.isr {
		if !used[k] {
			delete(r.isr, k)
		}
	}
	return v
}

// partitionLocked is the state of partition p of a group with members
// (by broker id). Lock should be held.
func (r *Registrar) partitionLocked(cfg broker.TopicConfig, p int32, members []Member, own bool) broker.PartitionState {
	if own && r.ctrl != nil {
		return r.ctrlPartitionLocked(cfg, p)
	}
	st := broker.PartitionState{Topic: cfg.Name, Partition: p, Leader: -1, MinInsync: cfg.MinInsync,
		Fanout: cfg.Fanout, FollowerReads: true}
	mode := r.cfg.mode()
	for _, m := range members {
		st.Replicas = append(st.Replicas, m.NodeID)
	}
	if len(members) > 0 && members[0].BrokerID == MasterID {
		st.Leader = members[0].NodeID
		st.LeaderEpoch = members[0].MasterEpoch // 0 but in controller mode
		if members[0].Mode != "" {
			mode = members[0].Mode
		}
	}
	st.AsyncAck = mode == ModeAsync
	st.ISR = slices.Clone(st.Replicas)
	if own && r.cfg.BrokerID == MasterID {
		e := r.isrEntryLocked(partKey{cfg.Name, p}, st.Replicas)
		st.ISR = slices.Clone(e.isr)
		st.Version = e.version
	}
	return st
}

// isrEntryLocked returns the master's ISR record of a partition, created
// with every replica in sync; replicas that left the route leave the ISR,
// new ones join it through AlterISR once caught up. Lock should be held.
func (r *Registrar) isrEntryLocked(k partKey, replicas []int32) *isrEntry {
	e, ok := r.isr[k]
	if !ok {
		e = &isrEntry{replicas: slices.Clone(replicas), isr: slices.Clone(replicas), version: 1}
		r.isr[k] = e
		return e
	}
	if slices.Equal(e.replicas, replicas) {
		return e
	}
	isr := slices.DeleteFunc(slices.Clone(e.isr), func(id int32) bool { return !slices.Contains(replicas, id) })
	if !slices.Contains(isr, r.self.ID) {
		isr = append([]int32{r.self.ID}, isr...)
	}
	if !slices.Equal(isr, e.isr) {
		e.isr = isr
		e.version++
	}
	e.replicas = slices.Clone(replicas)
	return e
}

// AlterISR changes the ISR of a partition this broker leads, as its group's
// master. There is no shared store: the master's registrar is the record,
// and want.Version must match it (broker.ErrStaleState otherwise).
func (r *Registrar) AlterISR(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	if r.ctrl != nil {
		return r.alterSyncStateSet(ctx, want)
	}
	if r.cfg.BrokerID != MasterID {
		return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w", want.Topic, want.Partition, ErrNotMaster)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := partKey{want.Topic, want.Partition}
	e, ok := r.isr[k]
	switch {
	case !ok:
		return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrUnknownTopic)
	case want.LeaderEpoch != 0:
		return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: epoch %d, current 0: %w",
			want.Topic, want.Partition, want.LeaderEpoch, broker.ErrFenced)
	case want.Version != e.version:
		return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: version %d, current %d: %w",
			want.Topic, want.Partition, want.Version, e.version, broker.ErrStaleState)
	}
	// The ISR is checked against the replicas this master knows: a
	// proposal made from an older route is stale, not invalid.
	if err := validate.ISR(want.ISR, e.replicas, r.self.ID); err != nil {
		return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w: %w",
			want.Topic, want.Partition, err, broker.ErrStaleState)
	}
	e.isr = slices.Clone(want.ISR)
	e.version++
	v := r.viewLocked()
	r.views.Offer(v)
	if t, ok := v.Topic(want.Topic); ok && int(want.Partition) < len(t.Partitions) {
		return t.Partitions[want.Partition], nil
	}
	return broker.PartitionState{}, fmt.Errorf("nameserver: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrUnknownTopic)
}
