package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/brokerlab/brokerlab/internal/validate"
)

// The broker learns who leads what through a ControlPlane and never imports a
// control-plane package. coordinator (etcd, Kafka/ZooKeeper style), nameserver
// (RocketMQ style) and the in-memory planes used by tests and standalone mode
// implement it.

// Control-plane errors. Implementations wrap them with %w; the broker maps
// them to Kafka error codes with errors.Is.
var (
	ErrTopicExists      = errors.New("broker: topic already exists")
	ErrUnknownTopic     = errors.New("broker: unknown topic")
	ErrInvalidTopic     = errors.New("broker: invalid topic configuration")
	ErrNotEnoughBrokers = errors.New("broker: not enough live brokers for the replication factor")
	ErrStaleState       = errors.New("broker: partition state changed since it was read")
	ErrFenced           = errors.New("broker: leader epoch is stale")
	ErrControlPlaneDown = errors.New("broker: control plane unavailable")
	// ErrNoHandoff is what Deregister returns, after leaving, from a plane
	// that cannot move leaderships (a fixed master): the broker then stops
	// without waiting for a hand-off.
	ErrNoHandoff       = errors.New("broker: this control plane cannot hand leaderships off")
	ErrNotController   = errors.New("broker: not the controller")
	ErrPolicyViolation = errors.New("broker: operation not allowed by this control plane")
)

// BrokerInfo is what a broker registers: its Kafka node id, the address
// clients and other brokers dial, and its rack.
type BrokerInfo struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"` // host:port
	Rack string `json:"rack,omitempty"`
}

// Fanout says how followers of a partition replicate.
type Fanout string

const (
	// FanoutStar: every follower fetches from the leader (Kafka).
	FanoutStar Fanout = "star"
	// FanoutChain: the i-th live replica after the leader (in Replicas order)
	// fetches from the (i-1)-th; every follower still reports its log end
	// offset to the leader with a zero-byte fetch so the high watermark is
	// the minimum over the whole ISR.
	FanoutChain Fanout = "chain"
)

// TopicConfig is a topic as created by CreateTopics.
type TopicConfig struct {
	Name              string `json:"name"`
	Partitions        int32  `json:"partitions"`
	ReplicationFactor int16  `json:"replication_factor"`
	// MinInsync is min.insync.replicas: acks=all fails with
	// NOT_ENOUGH_REPLICAS while the ISR is smaller. 0 means 1.
	MinInsync int16 `json:"min_insync"`
	// UncleanElection lets the controller pick a leader outside the ISR.
	UncleanElection bool   `json:"unclean_election,omitempty"`
	Fanout          Fanout `json:"fanout,omitempty"` // "" means star
}

// Bounds every control plane applies to a topic configuration.
const (
	MaxTopicPartitions  = 100_000
	MaxTopicReplication = 64
)

// Validate checks a topic configuration as Kafka's CreateTopics does: a
// valid name, 1..MaxTopicPartitions partitions, 1..MaxTopicReplication
// replicas, min insync between 0 and the replication factor, a known
// fanout. The error wraps ErrInvalidTopic. Control planes call it on every
// topic they create and on every stored one they read.
func (c TopicConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("topic %q: %s: %w", c.Name, fmt.Sprintf(format, args...), ErrInvalidTopic)
	}
	if err := validate.TopicName(c.Name); err != nil {
		return bad("%v", err)
	}
	switch {
	case c.Partitions <= 0 || c.Partitions > MaxTopicPartitions:
		return bad("partitions %d not in 1..%d", c.Partitions, MaxTopicPartitions)
	case c.ReplicationFactor <= 0 || c.ReplicationFactor > MaxTopicReplication:
		return bad("replication factor %d not in 1..%d", c.ReplicationFactor, MaxTopicReplication)
	case c.MinInsync < 0 || c.MinInsync > c.ReplicationFactor:
		return bad("min insync %d not in 0..%d (the replication factor)", c.MinInsync, c.ReplicationFactor)
	}
	switch c.Fanout {
	case "", FanoutStar, FanoutChain:
	default:
		return bad("fanout %q is not star or chain", c.Fanout)
	}
	return nil
}

// PartitionState is the control plane's record for one partition (Kafka's
// LeaderAndIsr znode).
type PartitionState struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Replicas    []int32 `json:"replicas"`
	Leader      int32   `json:"leader"` // -1: no leader
	LeaderEpoch int32   `json:"leader_epoch"`
	ISR         []int32 `json:"isr"`
	// Version is an opaque compare-and-swap token (etcd mod revision,
	// ZooKeeper zkVersion). AlterISR must carry the version it read.
	Version int64 `json:"version"`

	MinInsync int16  `json:"min_insync"`
	Fanout    Fanout `json:"fanout,omitempty"`
	// AsyncAck: acks=all is answered once the leader has the batch
	// (RocketMQ ASYNC_MASTER). Replication still happens, later.
	AsyncAck bool `json:"async_ack,omitempty"`
	// FollowerReads: followers serve consumer fetches. While the partition
	// has no leader they serve their whole log (a RocketMQ slave reading
	// on after its master died), otherwise up to their high watermark.
	FollowerReads bool `json:"follower_reads,omitempty"`
}

// HasReplica reports whether broker id hosts a replica of the partition.
func (s PartitionState) HasReplica(id int32) bool { return slices.Contains(s.Replicas, id) }

// InISR reports whether broker id is in the in-sync replica set.
func (s PartitionState) InISR(id int32) bool { return slices.Contains(s.ISR, id) }

// TopicView is one topic with the state of every partition, ordered by
// partition number.
type TopicView struct {
	Config     TopicConfig      `json:"config"`
	Partitions []PartitionState `json:"partitions"`
}

// ClusterView is a complete snapshot of what a broker needs to know. Views are
// values: the control plane never mutates one after delivering it. A view
// may share memory (partition lists, replica sets, names) with earlier
// views and with the plane's own state, which is how a broker holding a
// large cluster's metadata keeps one copy of it, so receivers must treat
// it as read-only too and copy what they change.
//
// Topics and DeletedTopics say different things. A topic in Topics is served
// as its partition states say; a topic absent from Topics is not served, but
// a broker keeps its replicas' data, because absence can mean the plane does
// not know the topic right now (a name server that has just restarted answers
// from an empty table). Only a name in DeletedTopics makes a broker remove its
// replicas' data, on disk too, like Kafka's StopReplica with delete=true.
type ClusterView struct {
	ClusterID    string       `json:"cluster_id"`
	ControllerID int32        `json:"controller_id"` // -1: none known
	Brokers      []BrokerInfo `json:"brokers"`       // live brokers, by id
	Topics       []TopicView  `json:"topics"`        // by name
	// DeletedTopics are topics the control plane has deleted and not
	// created again since, sorted by name. A plane keeps announcing a
	// deletion in every later view (a broker that was away learns it when
	// it returns) and stops once the name is created again; a name is never
	// in both Topics and DeletedTopics.
	DeletedTopics []string `json:"deleted_topics,omitempty"`
}

// Deleted reports whether the view announces the deletion of the named topic.
func (v ClusterView) Deleted(name string) bool { return slices.Contains(v.DeletedTopics, name) }

// Broker returns the live broker with the given id.
func (v ClusterView) Broker(id int32) (BrokerInfo, bool) {
	for _, b := range v.Brokers {
		if b.ID == id {
			return b, true
		}
	}
	return BrokerInfo{}, false
}

// Topic returns the named topic.
func (v ClusterView) Topic(name string) (TopicView, bool) {
	for _, t := range v.Topics {
		if t.Config.Name == name {
			return t, true
		}
	}
	return TopicView{}, false
}

// ControlPlane connects one broker to its cluster's control plane. It is
// everything the broker relies on; the broker never type-asserts a plane for
// more.
//
// Register announces the broker and starts delivering views: onView is called
// with a complete snapshot soon after registration and after every change,
// never concurrently with itself, and must return quickly. Register returns
// once the broker is registered; views keep coming until Close. A plane may
// coalesce views (deliver only the newest of several pending) but never
// delivers an older view after a newer one.
//
// Views decide what the broker serves and what it deletes (see ClusterView):
// a topic missing from a view is no longer served and its data is kept; the
// broker removes a replica's data only for a topic named in DeletedTopics. A
// plane therefore announces every deletion it performs, and only those: it
// must never list a topic it merely failed to learn about. Topics have no
// incarnation id yet (Kafka's topic ids): a deletion followed at once by a
// creation under the same name may reach the broker as the creation alone
// (views coalesce), and the broker then serves the old data under the new
// topic.
//
// AlterISR proposes a new ISR for a partition the broker leads. want carries
// the Version and LeaderEpoch the broker last saw; it fails with ErrStaleState
// when the stored state moved on (the broker then waits for the next view) and
// ErrFenced when the epoch is not current. On success it returns the stored
// state with its new Version.
//
// CreateTopics and DeleteTopics return one error per topic, in order, nil
// for success; a nil error means the creation or deletion is durable in the
// plane (a deleted topic then appears in DeletedTopics of later views).
//
// Deregister is a graceful leave (Kafka's controlled shutdown), called by
// Broker.Close while the broker still serves: the plane hands the broker's
// leaderships to other in-sync replicas where it can, then stops counting
// the broker as a member, so clients and the other brokers move on without
// waiting for a session to expire. Views must keep coming until Close: the
// broker waits for the view that shows its leaderships moved before it
// stops listening. A plane that cannot move leaderships leaves and returns
// ErrNoHandoff. A crash (Broker.Kill) skips it. It is idempotent, and a
// no-op before Register.
//
// Close stops view deliveries and releases every resource the plane holds
// (connections, goroutines); onView is not called after Close returns. It is
// idempotent and valid on a plane that never registered.
type ControlPlane interface {
	Register(ctx context.Context, self BrokerInfo, onView func(ClusterView)) error
	AlterISR(ctx context.Context, want PartitionState) (PartitionState, error)
	CreateTopics(ctx context.Context, topics []TopicConfig) []error
	DeleteTopics(ctx context.Context, names []string) []error
	Deregister(ctx context.Context) error
	Close() error
}
