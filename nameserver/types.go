package nameserver

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/validate"
)

// Replication modes of a broker group.
const (
	// ModeSync acknowledges acks=all once every in-sync slave has the write
	// (RocketMQ SYNC_MASTER).
	ModeSync = "sync"
	// ModeAsync acknowledges acks=all once the master has the write
	// (RocketMQ ASYNC_MASTER); slaves catch up later.
	ModeAsync = "async"
)

// MasterID is the broker id of a group's master; slaves have larger ids.
const MasterID = 0

// GroupTopic is one topic as a broker group hosts it: the group's queues
// are the global Kafka partitions FirstPartition .. FirstPartition+Queues-1.
// It is what a broker persists in topics.json and registers every heartbeat
// (RocketMQ's TopicConfig).
type GroupTopic struct {
	Name           string `json:"name"`
	Queues         int32  `json:"queues"`
	FirstPartition int32  `json:"first_partition"`
	// Partitions is the topic's total over all groups.
	Partitions        int32         `json:"partitions"`
	ReplicationFactor int16         `json:"replication_factor,omitempty"`
	MinInsync         int16         `json:"min_insync,omitempty"`
	Fanout            broker.Fanout `json:"fanout,omitempty"`
}

// validate checks the invariants every stored or received GroupTopic keeps.
func (t GroupTopic) validate() error {
	if err := validTopicName(t.Name); err != nil {
		return err
	}
	if t.Queues <= 0 || t.FirstPartition < 0 || t.Partitions <= 0 ||
		int64(t.FirstPartition)+int64(t.Queues) > int64(t.Partitions) {
		return fmt.Errorf("%w: topic %q: queues %d from partition %d do not fit %d partitions",
			broker.ErrInvalidTopic, t.Name, t.Queues, t.FirstPartition, t.Partitions)
	}
	if t.MinInsync < 0 {
		return fmt.Errorf("%w: topic %q: min insync %d", broker.ErrInvalidTopic, t.Name, t.MinInsync)
	}
	return nil
}

// config is the Kafka topic configuration of a GroupTopic.
func (t GroupTopic) config() broker.TopicConfig {
	return broker.TopicConfig{Name: t.Name, Partitions: t.Partitions,
		ReplicationFactor: t.ReplicationFactor, MinInsync: t.MinInsync, Fanout: t.Fanout}
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	if err := validate.TopicName(name); err != nil {
		return fmt.Errorf("%w: %w", broker.ErrInvalidTopic, err)
	}
	return nil
}

// RegisterRequest is a broker's registration, sent to every name server
// every heartbeat with the group's complete topic list.
type RegisterRequest struct {
	Cluster  string `json:"cluster"`
	Group    string `json:"group"`
	BrokerID int32  `json:"broker_id"` // 0: master
	NodeID   int32  `json:"node_id"`   // Kafka node id
	Addr     string `json:"addr"`      // Kafka listener, host:port
	Rack     string `json:"rack,omitempty"`
	Mode     string `json:"mode"`
	// MasterEpoch is the controller's master epoch of a master in
	// controller mode, 0 otherwise. A name server keeps the registration
	// with the higher epoch when two brokers claim the same id (an
	// isolated old master and its successor).
	MasterEpoch int32 `json:"master_epoch,omitempty"`
	// Topics is the group topic configuration the broker holds.
	Topics []GroupTopic `json:"topics"`
}

func (r RegisterRequest) validate() error {
	switch {
	case r.Cluster == "" || r.Group == "":
		return fmt.Errorf("%w: cluster and group are required", ErrBadRequest)
	case r.BrokerID < 0 || r.NodeID < 0:
		return fmt.Errorf("%w: negative broker or node id", ErrBadRequest)
	case r.Addr == "":
		return fmt.Errorf("%w: address is required", ErrBadRequest)
	case r.Mode != ModeSync && r.Mode != ModeAsync:
		return fmt.Errorf("%w: mode %q", ErrBadRequest, r.Mode)
	}
	for _, t := range r.Topics {
		if err := t.validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	return nil
}

// memberKey identifies a registration.
type memberKey struct {
	Cluster, Group string
	BrokerID       int32
}

// unregisterRequest removes a broker from a name server.
type unregisterRequest struct {
	Cluster  string `json:"cluster"`
	Group    string `json:"group"`
	BrokerID int32  `json:"broker_id"`
}

// routeRequest asks for the routes of the named topics, or of all topics
// when Topics is empty.
type routeRequest struct {
	Topics []string `json:"topics,omitempty"`
}

// routeReply answers a routeRequest; Missing lists named topics the name
// server does not know.
type routeReply struct {
	Routes  []TopicRoute `json:"routes"`
	Missing []string     `json:"missing,omitempty"`
}

// clusterInfoRequest asks for every group and member a name server knows.
type clusterInfoRequest struct{}

// snapshotRequest is a broker's poll: every route and the cluster info,
// unless nothing changed since the version it names.
type snapshotRequest struct {
	Epoch   uint64 `json:"epoch,omitempty"`
	Version uint64 `json:"version,omitempty"`
}

// snapshotReply answers a snapshotRequest. Routes carry no members (they
// are in Info once). Unchanged means the broker's copy is current and
// nothing else is sent.
type snapshotReply struct {
	Epoch     uint64       `json:"epoch"`
	Version   uint64       `json:"version"`
	Unchanged bool         `json:"unchanged,omitempty"`
	Routes    []TopicRoute `json:"routes,omitempty"`
	Info      ClusterInfo  `json:"info"`
}

// CreateTopicRequest asks a name server to place and create a topic.
type CreateTopicRequest struct {
	// Config.Partitions is the total number of partitions, spread evenly
	// over the chosen groups when QueuesPerGroup is 0.
	Config broker.TopicConfig `json:"config"`
	// Cluster to place the topic in; empty means the only cluster the name
	// server knows.
	Cluster string `json:"cluster,omitempty"`
	// QueuesPerGroup, when positive, gives every chosen group this many
	// queues (RocketMQ's per-broker queue count); Config.Partitions is then
	// ignored and the total is QueuesPerGroup times the groups.
	QueuesPerGroup int32 `json:"queues_per_group,omitempty"`
	// Groups restricts placement to these groups (each needs a registered
	// master); empty means every group of the cluster with a master.
	Groups []string `json:"groups,omitempty"`
}

// createTopicReply carries the new topic's route.
type createTopicReply struct {
	Route TopicRoute `json:"route"`
}

// deleteTopicRequest asks a name server to delete a topic from its groups.
type deleteTopicRequest struct {
	Name string `json:"name"`
}

// topicConfigPush is a name server handing a broker its group's part of a
// new topic.
type topicConfigPush struct {
	Topic GroupTopic `json:"topic"`
}

// topicDeletePush is a name server telling a broker to drop a topic.
type topicDeletePush struct {
	Name string `json:"name"`
}

// Member is one registered broker of a group.
type Member struct {
	BrokerID    int32  `json:"broker_id"`
	NodeID      int32  `json:"node_id"`
	Addr        string `json:"addr"`
	Rack        string `json:"rack,omitempty"`
	Mode        string `json:"mode"`
	MasterEpoch int32  `json:"master_epoch,omitempty"` // controller mode: see RegisterRequest
}

// GroupInfo is a group with its registered members, by broker id.
type GroupInfo struct {
	Cluster string   `json:"cluster"`
	Group   string   `json:"group"`
	Members []Member `json:"members,omitempty"`
}

// Master returns the group's master when it is registered.
func (g GroupInfo) Master() (Member, bool) {
	if len(g.Members) > 0 && g.Members[0].BrokerID == MasterID {
		return g.Members[0], true
	}
	return Member{}, false
}

// ClusterInfo is every group a name server knows, by cluster and group.
type ClusterInfo struct {
	Groups []GroupInfo `json:"groups"`
}

// Group returns the named group.
func (c ClusterInfo) Group(cluster, group string) (GroupInfo, bool) {
	for _, g := range c.Groups {
		if g.Cluster == cluster && g.Group == group {
			return g, true
		}
	}
	return GroupInfo{}, false
}

// GroupRoute is one group's part of a topic: its queues are the partitions
// FirstPartition .. FirstPartition+Queues-1.
type GroupRoute struct {
	GroupInfo
	Queues         int32 `json:"queues"`
	FirstPartition int32 `json:"first_partition"`
}

// HasPartition reports whether partition p is one of the group's queues.
func (g GroupRoute) HasPartition(p int32) bool {
	return p >= g.FirstPartition && p-g.FirstPartition < g.Queues
}

// TopicRoute is what a name server answers for a topic (RocketMQ's
// TopicRouteData): the groups hosting it, by FirstPartition, with members.
type TopicRoute struct {
	Topic string `json:"topic"`
	// Partitions is the topic's total; partitions of a group that is gone
	// from the route have no group here.
	Partitions        int32         `json:"partitions"`
	ReplicationFactor int16         `json:"replication_factor,omitempty"`
	MinInsync         int16         `json:"min_insync,omitempty"`
	Fanout            broker.Fanout `json:"fanout,omitempty"`
	Groups            []GroupRoute  `json:"groups"`
}

// Group returns the group hosting partition p.
func (r TopicRoute) Group(p int32) (GroupRoute, bool) {
	for _, g := range r.Groups {
		if g.HasPartition(p) {
			return g, true
		}
	}
	return GroupRoute{}, false
}

// Queue is one partition with the broker to use for it.
type Queue struct {
	Partition int32  `json:"partition"`
	Group     string `json:"group"`
	Member    Member `json:"member"`
}

// WriteQueues lists the queues a producer may send to: those of groups whose
// master is in the route and, when ft is non-nil, available by ft. When ft
// isolates every group with a master it returns all of them anyway, as
// RocketMQ does, rather than nothing.
func (r TopicRoute) WriteQueues(ft *FaultTolerance) []Queue {
	var all, avail []Queue
	for _, g := range r.Groups {
		m, ok := g.Master()
		if !ok {
			continue
		}
		ok = ft == nil || ft.Available(g.Group)
		for i := range g.Queues {
			q := Queue{Partition: g.FirstPartition + i, Group: g.Group, Member: m}
			all = append(all, q)
			if ok {
				avail = append(avail, q)
			}
		}
	}
	if len(avail) == 0 {
		return all
	}
	return avail
}

// ReadQueue returns the broker a consumer reads partition p from: the group's
// master, or its lowest-id slave while the master is absent from the route.
func (r TopicRoute) ReadQueue(p int32) (Queue, bool) {
	g, ok := r.Group(p)
	if !ok || len(g.Members) == 0 {
		return Queue{}, false
	}
	return Queue{Partition: p, Group: g.Group, Member: g.Members[0]}, true
}

// sortMembers orders members by broker id, the master first.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.BrokerID, b.BrokerID) })
}
