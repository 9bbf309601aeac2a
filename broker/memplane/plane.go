package memplane

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/mailbox"
	"github.com/brokerlab/brokerlab/internal/validate"
)

// Options configures a Plane.
type Options struct {
	// ClusterID is reported in every view; empty generates a Kafka-style
	// random id.
	ClusterID string
	// AutoFailover runs Failover(id) when a broker's handle closes without
	// Deregister (a crash), as a Kafka controller does when a broker's
	// session expires. Off, leadership stays with the dead broker until the
	// test calls Failover.
	AutoFailover bool
	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
}

// Plane is an in-memory cluster state shared by the brokers of one process:
// it plays both the controller and the store. All state is guarded by mu and
// changed only by short functions named ...Locked.
type Plane struct {
	log          *slog.Logger
	clusterID    string
	autoFailover bool

	mu       sync.Mutex // guards everything below
	closed   bool
	live     map[int32]*Handle // registered brokers by id
	handles  map[*Handle]struct{}
	topics   map[string]*topic
	deleted  map[string]struct{} // topics deleted and not created again, announced in every view
	version  int64               // last Version handed out; every state change takes the next
	topicSeq int                 // topics created so far, rotates placement
}

type topic struct {
	cfg   broker.TopicConfig
	parts []broker.PartitionState
}

// New returns an empty plane.
func New(opts Options) *Plane {
	log := logs.OrDiscard(opts.Logger)
	id := opts.ClusterID
	if id == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = base64.RawURLEncoding.EncodeToString(b)
	}
	return &Plane{
		log:          log,
		clusterID:    id,
		autoFailover: opts.AutoFailover,
		live:         make(map[int32]*Handle),
		handles:      make(map[*Handle]struct{}),
		topics:       make(map[string]*topic),
		deleted:      make(map[string]struct{}),
	}
}

// Handle returns a new, unregistered connection to the plane for one broker.
// Each broker (and each restart of it) needs its own.
func (p *Plane) Handle() *Handle {
	h := &Handle{p: p, views: mailbox.New[broker.ClusterView](nil), done: make(chan struct{})}
	return h
}

// ClusterID returns the cluster id reported in views.
func (p *Plane) ClusterID() string { return p.clusterID }

// View returns the current cluster view.
func (p *Plane) View() broker.ClusterView {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.viewLocked()
}

// Brokers returns the live brokers, by id.
func (p *Plane) Brokers() []broker.BrokerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.brokersLocked()
}

// State returns the state of one partition.
func (p *Plane) State(topic string, partition int32) (broker.PartitionState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.partLocked(topic, partition)
	if err != nil {
		return broker.PartitionState{}, false
	}
	return clone(*st), true
}

// CreateTopic creates a topic as CreateTopics through a handle does.
func (p *Plane) CreateTopic(cfg broker.TopicConfig) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.createLocked(cfg); err != nil {
		return err
	}
	p.publishLocked()
	return nil
}

// SetLeader makes leader (a replica, or -1 for none) the partition's leader
// with the next leader epoch, adding it to the ISR if absent.
func (p *Plane) SetLeader(topic string, partition, leader int32) error {
	return p.update(topic, partition, func(st *broker.PartitionState) error {
		if leader != -1 && !st.HasReplica(leader) {
			return fmt.Errorf("memplane: %s/%d: leader %d is not a replica %v: %w", topic, partition, leader, st.Replicas, broker.ErrInvalidTopic)
		}
		st.Leader = leader
		st.LeaderEpoch++
		if leader != -1 && !st.InISR(leader) {
			st.ISR = append(st.ISR, leader)
		}
		p.log.Info("memplane: leader set", "topic", topic, "partition", partition, "leader", leader, "leader-epoch", st.LeaderEpoch)
		return nil
	})
}

// SetISR replaces the partition's ISR; it must be a subset of the replicas
// that contains the leader.
func (p *Plane) SetISR(topic string, partition int32, isr []int32) error {
	return p.update(topic, partition, func(st *broker.PartitionState) error {
		if err := checkISR(*st, isr); err != nil {
			return err
		}
		st.ISR = slices.Clone(isr)
		return nil
	})
}

// Update applies f to a copy of the partition's state and stores the result
// with a new Version, for changes the other drivers do not cover (AsyncAck,
// FollowerReads, a hand-made epoch). Topic, Partition and Replicas are kept.
func (p *Plane) Update(topic string, partition int32, f func(*broker.PartitionState)) error {
	return p.update(topic, partition, func(st *broker.PartitionState) error {
		next := clone(*st)
		f(&next)
		next.Topic, next.Partition, next.Replicas = st.Topic, st.Partition, st.Replicas
		*st = next
		return nil
	})
}

// update runs f on the stored state of a partition and, when f succeeds,
// gives it a new Version and tells every broker.
func (p *Plane) update(topic string, partition int32, f func(*broker.PartitionState) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.partLocked(topic, partition)
	if err != nil {
		return err
	}
	next := clone(*st)
	if err := f(&next); err != nil {
		return err
	}
	*st = next
	st.Version = p.nextVersionLocked()
	p.publishLocked()
	return nil
}

// Failover does what a Kafka controller does when broker id dies: it leaves
// every ISR where at least one other member remains, and each partition it
// led gets the first live ISR member as leader with the next epoch, or no
// leader (-1) when there is none, or, for topics with UncleanElection, the
// first live replica. It returns how many partitions changed.
func (p *Plane) Failover(id int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.failoverLocked(id)
	if n > 0 {
		p.publishLocked()
	}
	return n
}

// Close closes every handle, stopping their view deliveries. It is idempotent.
func (p *Plane) Close() error {
	p.mu.Lock()
	p.closed = true
	handles := make([]*Handle, 0, len(p.handles))
	for h := range p.handles {
		handles = append(handles, h)
	}
	p.mu.Unlock()
	for _, h := range handles {
		h.Close()
	}
	return nil
}

// failoverLocked moves leadership and ISR membership away from id. Lock
// should be held.
func (p *Plane) failoverLocked(id int32) int {
	changed := 0
	for _, name := range p.topicNamesLocked() {
		t := p.topics[name]
		for i := range t.parts {
			st := &t.parts[i]
			before := st.Version
			if st.InISR(id) && len(st.ISR) > 1 {
				st.ISR = slices.DeleteFunc(slices.Clone(st.ISR), func(r int32) bool { return r == id })
				st.Version = p.nextVersionLocked()
			}
			if st.Leader == id {
				p.electLocked(t.cfg, st, id)
			}
			if st.Version != before {
				changed++
			}
		}
	}
	p.log.Info("memplane: failover", "node-id", id, "partitions", changed)
	return changed
}

// electLocked picks a new leader other than dead for a partition. Lock
// should be held.
func (p *Plane) electLocked(cfg broker.TopicConfig, st *broker.PartitionState, dead int32) {
	eligible := func(r int32) bool { return r != dead && p.live[r] != nil }
	leader := int32(-1)
	if i := slices.IndexFunc(st.ISR, eligible); i >= 0 {
		leader = st.ISR[i]
	} else if i := slices.IndexFunc(st.Replicas, eligible); i >= 0 && cfg.UncleanElection {
		leader = st.Replicas[i]
		st.ISR = []int32{leader}
	}
	st.Leader = leader
	st.LeaderEpoch++
	st.Version = p.nextVersionLocked()
	p.log.Info("memplane: leader elected", "topic", st.Topic, "partition", st.Partition, "leader", leader, "leader-epoch", st.LeaderEpoch)
}

// onlineLocked gives leaderless partitions to broker id when it may lead
// them (in the ISR, or any replica with unclean election), as a controller
// does when a replica comes back. Lock should be held.
func (p *Plane) onlineLocked(id int32) {
	for _, name := range p.topicNamesLocked() {
		t := p.topics[name]
		for i := range t.parts {
			st := &t.parts[i]
			if st.Leader != -1 || !(st.InISR(id) || t.cfg.UncleanElection && st.HasReplica(id)) {
				continue
			}
			if !st.InISR(id) {
				st.ISR = []int32{id}
			}
			st.Leader = id
			st.LeaderEpoch++
			st.Version = p.nextVersionLocked()
			p.log.Info("memplane: leader elected", "topic", st.Topic, "partition", st.Partition, "leader", id, "leader-epoch", st.LeaderEpoch)
		}
	}
}

// createLocked validates and places a new topic. Lock should be held.
func (p *Plane) createLocked(cfg broker.TopicConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("memplane: %w", err)
	}
	if _, ok := p.topics[cfg.Name]; ok {
		return fmt.Errorf("memplane: topic %q: %w", cfg.Name, broker.ErrTopicExists)
	}
	brokers := p.brokersLocked()
	if int(cfg.ReplicationFactor) > len(brokers) {
		return fmt.Errorf("memplane: topic %q wants %d replicas, %d brokers are live: %w",
			cfg.Name, cfg.ReplicationFactor, len(brokers), broker.ErrNotEnoughBrokers)
	}
	t := &topic{cfg: cfg, parts: make([]broker.PartitionState, cfg.Partitions)}
	for i := range t.parts {
		replicas := make([]int32, cfg.ReplicationFactor)
		for j := range replicas {
			replicas[j] = brokers[(p.topicSeq+i+j)%len(brokers)].ID
		}
		t.parts[i] = broker.PartitionState{
			Topic:       cfg.Name,
			Partition:   int32(i),
			Replicas:    replicas,
			Leader:      replicas[0],
			LeaderEpoch: 0,
			ISR:         slices.Clone(replicas),
			Version:     p.nextVersionLocked(),
			MinInsync:   cfg.MinInsync,
			Fanout:      cfg.Fanout,
		}
	}
	p.topicSeq++
	p.topics[cfg.Name] = t
	delete(p.deleted, cfg.Name)
	p.log.Info("memplane: topic created", "topic", cfg.Name, "partitions", cfg.Partitions, "replication-factor", cfg.ReplicationFactor)
	return nil
}

// checkISR validates a proposed ISR against the stored state.
func checkISR(st broker.PartitionState, isr []int32) error {
	if err := validate.ISR(isr, st.Replicas, st.Leader); err != nil {
		return fmt.Errorf("memplane: %s/%d: %w: %w", st.Topic, st.Partition, err, broker.ErrInvalidTopic)
	}
	return nil
}

// partLocked returns the stored state of a partition. Lock should be held.
func (p *Plane) partLocked(topic string, partition int32) (*broker.PartitionState, error) {
	t, ok := p.topics[topic]
	if !ok {
		return nil, fmt.Errorf("memplane: topic %q: %w", topic, broker.ErrUnknownTopic)
	}
	if partition < 0 || int(partition) >= len(t.parts) {
		return nil, fmt.Errorf("memplane: topic %q has no partition %d: %w", topic, partition, broker.ErrUnknownTopic)
	}
	return &t.parts[partition], nil
}

// nextVersionLocked hands out the next Version. Lock should be held.
func (p *Plane) nextVersionLocked() int64 {
	p.version++
	return p.version
}

// topicNamesLocked returns the topic names in order. Lock should be held.
func (p *Plane) topicNamesLocked() []string {
	names := make([]string, 0, len(p.topics))
	for name := range p.topics {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// brokersLocked returns the live brokers by id. Lock should be held.
func (p *Plane) brokersLocked() []broker.BrokerInfo {
	out := make([]broker.BrokerInfo, 0, len(p.live))
	for _, h := range p.live {
		out = append(out, h.info)
	}
	slices.SortFunc(out, func(a, b broker.BrokerInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// viewLocked builds a snapshot that shares nothing with the stored state.
// Lock should be held.
func (p *Plane) viewLocked() broker.ClusterView {
	v := broker.ClusterView{ClusterID: p.clusterID, ControllerID: -1, Brokers: p.brokersLocked()}
	if len(v.Brokers) > 0 {
		v.ControllerID = v.Brokers[0].ID
	}
	for _, name := range p.topicNamesLocked() {
		t := p.topics[name]
		tv := broker.TopicView{Config: t.cfg, Partitions: make([]broker.PartitionState, len(t.parts))}
		for i, st := range t.parts {
			tv.Partitions[i] = clone(st)
		}
		v.Topics = append(v.Topics, tv)
	}
	for name := range p.deleted {
		v.DeletedTopics = append(v.DeletedTopics, name)
	}
	slices.Sort(v.DeletedTopics)
	return v
}

// publishLocked offers the current view to every registered broker. Lock
// should be held.
func (p *Plane) publishLocked() {
	if len(p.live) == 0 {
		return
	}
	v := p.viewLocked()
	for _, h := range p.live {
		h.offer(v)
	}
}

func clone(st broker.PartitionState) broker.PartitionState {
	st.Replicas = slices.Clone(st.Replicas)
	st.ISR = slices.Clone(st.ISR)
	return st
}

// errClosed is returned by a closed handle or plane.
var errClosed = fmt.Errorf("memplane: closed: %w", broker.ErrControlPlaneDown)

// fill returns err for each of n items.
func fill(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}
