package controller

import (
	"cmp"
	"fmt"
	"slices"
)

// NoMaster is GroupState.MasterID while a group has no master.
const NoMaster int32 = 0

// Broker is one member of a broker group as the controller records it.
// Broker ids start at 1 (RocketMQ's first controller-assigned id).
type Broker struct {
	BrokerID int32  `json:"broker_id"`
	NodeID   int32  `json:"node_id"` // Kafka node id
	Addr     string `json:"addr"`    // Kafka listener
}

// GroupState is the controller's record of one broker group (RocketMQ's
// ReplicaInfo plus SyncStateInfo).
type GroupState struct {
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
	// MasterID is the master's broker id, NoMaster when none.
	MasterID int32 `json:"master_id"`
	// MasterEpoch grows by one with every master change; a broker uses it
	// as the leader epoch of every partition of the group.
	MasterEpoch int32 `json:"master_epoch"`
	// SyncStateSet holds the broker ids in sync with the master, the
	// master included: masters are elected from it only.
	SyncStateSet []int32 `json:"sync_state_set"`
	// SyncStateSetEpoch grows with every SyncStateSet change; an alter
	// request must name the current one (compare-and-swap).
	SyncStateSetEpoch int32 `json:"sync_state_set_epoch"`
	// Brokers is every member ever registered, by broker id.
	Brokers []Broker `json:"brokers"`
	// Inactive lists the members the leading controller considers down.
	// It is leader-local (heartbeats are not replicated), filled in when
	// the state is sent to a broker.
	Inactive []int32 `json:"inactive,omitempty"`
}

// Broker returns the member with broker id id.
func (g GroupState) Broker(id int32) (Broker, bool) {
	for _, b := range g.Brokers {
		if b.BrokerID == id {
			return b, true
		}
	}
	return Broker{}, false
}

// InSync reports whether broker id is in the SyncStateSet.
func (g GroupState) InSync(id int32) bool { return slices.Contains(g.SyncStateSet, id) }

func (g GroupState) clone() GroupState {
	g.SyncStateSet = slices.Clone(g.SyncStateSet)
	g.Brokers = slices.Clone(g.Brokers)
	g.Inactive = slices.Clone(g.Inactive)
	return g
}

type groupKey struct{ cluster, group string }

// Replicated commands (the Raft log's entries, JSON).
const (
	opRegister = "register" // add or update a member; the first one becomes master
	opElect    = "elect"    // set a new master (or none) at an expected master epoch
	opAlter    = "alter"    // AlterSyncStateSet with compare-and-swap
)

// command is one Raft log entry.
type command struct {
	// Req identifies the proposal so the proposer can wait for its result.
	Req     uint64 `json:"req"`
	Op      string `json:"op"`
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
	Broker  Broker `json:"broker,omitzero"` // register
	// NewMaster is elect's choice (NoMaster clears the master).
	NewMaster int32 `json:"new_master,omitempty"`
	// MasterID and MasterEpoch are what elect and alter expect to be
	// current; SyncStateSetEpoch and SyncStateSet are alter's.
	MasterID          int32   `json:"master_id,omitempty"`
	MasterEpoch       int32   `json:"master_epoch,omitempty"`
	SyncStateSetEpoch int32   `json:"sync_state_set_epoch,omitempty"`
	SyncStateSet      []int32 `json:"sync_state_set,omitempty"`
}

// stateMachine holds every group. It is deterministic: every controller
// applies the same commands in the same order and reaches the same state.
// Callers serialise access.
type stateMachine struct {
	groups map[groupKey]*GroupState
}

func newStateMachine() *stateMachine { return &stateMachine{groups: make(map[groupKey]*GroupState)} }

func (m *stateMachine) get(cluster, group string) (GroupState, bool) {
	g, ok := m.groups[groupKey{cluster, group}]
	if !ok {
		return GroupState{}, false
	}
	return g.clone(), true
}

func (m *stateMachine) all() []GroupState {
	out := make([]GroupState, 0, len(m.groups))
	for _, g := range m.groups {
		out = append(out, g.clone())
	}
	slices.SortFunc(out, func(a, b GroupState) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Group, b.Group))
	})
	return out
}

// apply executes one command and returns the group's new state.
func (m *stateMachine) apply(c command) (GroupState, error) {
	if c.Cluster == "" || c.Group == "" {
		return GroupState{}, fmt.Errorf("%w: cluster and group are required", ErrBadRequest)
	}
	k := groupKey{c.Cluster, c.Group}
	g, ok := m.groups[k]
	switch c.Op {
	case opRegister:
		if !ok {
			g = &GroupState{Cluster: c.Cluster, Group: c.Group}
			m.groups[k] = g
		}
		return m.register(g, c.Broker)
	case opElect, opAlter:
		if !ok {
			return GroupState{}, fmt.Errorf("%w: unknown group %s/%s", ErrBadRequest, c.Cluster, c.Group)
		}
		if c.Op == opElect {
			return m.elect(g, c)
		}
		return m.alter(g, c)
	}
	return GroupState{}, fmt.Errorf("%w: unknown command %q", ErrBadRequest, c.Op)
}

func (m *stateMachine) register(g *GroupState, b Broker) (GroupState, error) {
	if b.BrokerID < 1 || b.NodeID < 0 || b.Addr == "" {
		return GroupState{}, fmt.Errorf("%w: broker %+v", ErrBadRequest, b)
	}
	i := slices.IndexFunc(g.Brokers, func(x Broker) bool { return x.BrokerID == b.BrokerID })
	if i < 0 {
		g.Brokers = append(g.Brokers, b)
		slices.SortFunc(g.Brokers, func(x, y Broker) int { return cmp.Compare(x.BrokerID, y.BrokerID) })
	} else {
		g.Brokers[i] = b
	}
	if g.MasterEpoch == 0 { // a new group: its first member is master
		g.MasterID, g.MasterEpoch = b.BrokerID, 1
		g.SyncStateSet, g.SyncStateSetEpoch = []int32{b.BrokerID}, 1
	}
	return g.clone(), nil
}

func (m *stateMachine) elect(g *GroupState, c command) (GroupState, error) {
	if c.MasterEpoch != g.MasterEpoch {
		return GroupState{}, fmt.Errorf("%w: elect at epoch %d, current %d", ErrFenced, c.MasterEpoch, g.MasterEpoch)
	}
	if c.NewMaster != NoMaster {
		if _, ok := g.Broker(c.NewMaster); !ok {
			return GroupState{}, fmt.Errorf("%w: broker %d is not a member", ErrBadRequest, c.NewMaster)
		}
		g.SyncStateSet = []int32{c.NewMaster}
		g.SyncStateSetEpoch++
	}
	g.MasterID = c.NewMaster
	g.MasterEpoch++
	return g.clone(), nil
}

func (m *stateMachine) alter(g *GroupState, c command) (GroupState, error) {
	switch {
	case c.MasterID != g.MasterID || c.MasterEpoch != g.MasterEpoch:
		return GroupState{}, fmt.Errorf("%w: master %d epoch %d, current master %d epoch %d",
			ErrFenced, c.MasterID, c.MasterEpoch, g.MasterID, g.MasterEpoch)
	case c.SyncStateSetEpoch != g.SyncStateSetEpoch:
		return GroupState{}, fmt.Errorf("%w: epoch %d, current %d", ErrStaleSyncStateSet, c.SyncStateSetEpoch, g.SyncStateSetEpoch)
	case !slices.Contains(c.SyncStateSet, g.MasterID):
		return GroupState{}, fmt.Errorf("%w: sync state set %v lacks the master %d", ErrBadRequest, c.SyncStateSet, g.MasterID)
	}
	set := slices.Clone(c.SyncStateSet)
	slices.Sort(set)
	set = slices.Compact(set)
	for _, id := range set {
		if _, ok := g.Broker(id); !ok {
			return GroupState{}, fmt.Errorf("%w: broker %d is not a member", ErrBadRequest, id)
		}
	}
	g.SyncStateSet = set
	g.SyncStateSetEpoch++
	return g.clone(), nil
}

// candidate picks the next master of g: the lowest-id member of the
// SyncStateSet that is alive and not the current (failed) master; with
// unclean election allowed and none in sync, the lowest-id live member.
// NoMaster when there is none.
func candidate(g GroupState, alive func(int32) bool, unclean bool) int32 {
	pick := func(ids []int32) int32 {
		for _, id := range ids {
			if alive(id) && (id != g.MasterID || g.MasterID == NoMaster) {
				return id
			}
		}
		return NoMaster
	}
	sss := slices.Sorted(slices.Values(g.SyncStateSet))
	if id := pick(sss); id != NoMaster || !unclean {
		return id
	}
	all := make([]int32, 0, len(g.Brokers))
	for _, b := range g.Brokers {
		all = append(all, b.BrokerID)
	}
	return pick(all)
}
