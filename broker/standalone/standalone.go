// Package standalone is the control plane of a one-node cluster: the broker
// is its own controller and leads every partition. Topic definitions and
// leader epochs are kept in <data dir>/cluster.json so that a restart on the
// same data directory serves every topic again, under a new leader epoch as a
// real controller would assign after a restart.
//
//	cp, err := standalone.New(dataDir)
//	b, err := broker.New(cfg, cp)
package standalone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
)

// stateFile is the file standalone keeps in the data directory.
const stateFile = "cluster.json"

type persisted struct {
	ClusterID string               `json:"cluster_id"`
	Epoch     int32                `json:"epoch"`
	Topics    []broker.TopicConfig `json:"topics"`
	// DeletedTopics are announced in every view until created again, so
	// a broker that stopped before removing a deleted topic's data
	// removes it after its restart.
	DeletedTopics []string `json:"deleted_topics,omitempty"`
}

// clone returns a copy that shares no slice with s.
func (s persisted) clone() persisted {
	s.Topics = slices.Clone(s.Topics)
	s.DeletedTopics = slices.Clone(s.DeletedTopics)
	return s
}

// Plane is a single-node broker.ControlPlane.
type Plane struct {
	path string // "" keeps state in memory only

	mu     sync.Mutex
	state  persisted
	self   broker.BrokerInfo
	onView func(broker.ClusterView)
	closed bool
}

// New loads the state in dataDir (created if missing); an empty dataDir keeps
// everything in memory.
func New(dataDir string) (*Plane, error) {
	p := &Plane{state: persisted{ClusterID: "brokerlab-standalone"}}
	if dataDir == "" {
		return p, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("standalone: %w", err)
	}
	p.path = filepath.Join(dataDir, stateFile)
	data, err := os.ReadFile(p.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("standalone: %w", err)
	default:
		if err := json.Unmarshal(data, &p.state); err != nil {
			return nil, fmt.Errorf("standalone: %s is corrupt: %w", p.path, err)
		}
	}
	return p, nil
}

// Register makes the broker controller and leader of everything, under a
// leader epoch one above the previous run's.
func (p *Plane) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.self, p.onView = self, onView
	p.state.Epoch++
	if err := p.saveLocked(); err != nil {
		return err
	}
	p.publishLocked()
	return nil
}

// AlterISR accepts nothing but the node itself: it is the only replica.
func (p *Plane) AlterISR(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if want.LeaderEpoch != p.state.Epoch {
		return broker.PartitionState{}, broker.ErrFenced
	}
	for _, t := range p.state.Topics {
		if t.Name == want.Topic && want.Partition >= 0 && want.Partition < t.Partitions {
			return p.partitionLocked(t, want.Partition), nil
		}
	}
	return broker.PartitionState{}, broker.ErrUnknownTopic
}

// CreateTopics adds topics; every one needs replication factor 1. When the
// state cannot be saved, nothing is added and every topic that would have
// been gets the error.
func (p *Plane) CreateTopics(ctx context.Context, topics []broker.TopicConfig) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, len(topics))
	next := p.state.clone()
	changed := false
	for i, t := range topics {
		switch {
		case slices.ContainsFunc(next.Topics, func(x broker.TopicConfig) bool { return x.Name == t.Name }):
			errs[i] = fmt.Errorf("%w: %s", broker.ErrTopicExists, t.Name)
		case t.ReplicationFactor != 1:
			errs[i] = fmt.Errorf("%w: standalone has 1 broker, replication factor %d", broker.ErrNotEnoughBrokers, t.ReplicationFactor)
		case t.Partitions <= 0:
			errs[i] = fmt.Errorf("%w: %d partitions", broker.ErrInvalidTopic, t.Partitions)
		default:
			next.Topics = append(next.Topics, t)
			next.DeletedTopics = slices.DeleteFunc(next.DeletedTopics, func(n string) bool { return n == t.Name })
			changed = true
		}
	}
	if changed {
		p.commitLocked(next, errs)
	}
	return errs
}

// DeleteTopics removes topics; every later view lists them in
// DeletedTopics until they are created again. When the state cannot be
// saved, nothing is deleted and every topic that would have been gets the
// error.
func (p *Plane) DeleteTopics(ctx context.Context, names []string) []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := make([]error, len(names))
	next := p.state.clone()
	changed := false
	for i, n := range names {
		before := len(next.Topics)
		next.Topics = slices.DeleteFunc(next.Topics, func(x broker.TopicConfig) bool { return x.Name == n })
		if len(next.Topics) == before {
			errs[i] = fmt.Errorf("%w: %s", broker.ErrUnknownTopic, n)
			continue
		}
		if !slices.Contains(next.DeletedTopics, n) {
			next.DeletedTopics = append(next.DeletedTopics, n)
		}
		changed = true
	}
	if changed {
		p.commitLocked(next, errs)
	}
	return errs
}

// commitLocked saves next and makes it the state, then publishes it. When
// the save fails the state stays as it was and every nil entry of errs (the
// topics next changed) gets the error.
func (p *Plane) commitLocked(next persisted, errs []error) {
	old := p.state
	p.state = next
	if err := p.saveLocked(); err != nil {
		p.state = old
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return
	}
	p.publishLocked()
}

// Deregister does nothing: the node is the whole cluster, so there is no
// one to hand leaderships to and no membership to leave.
func (p *Plane) Deregister(ctx context.Context) error { return nil }

// Close stops delivering views.
func (p *Plane) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func (p *Plane) partitionLocked(t broker.TopicConfig, i int32) broker.PartitionState {
	id := p.self.ID
	return broker.PartitionState{
		Topic: t.Name, Partition: i, Replicas: []int32{id}, Leader: id,
		LeaderEpoch: p.state.Epoch, ISR: []int32{id}, Version: int64(p.state.Epoch),
		MinInsync: 1, Fanout: broker.FanoutStar,
	}
}

// publishLocked delivers the view. The broker's onView only stores the view
// and signals, so calling it with the lock held cannot deadlock.
func (p *Plane) publishLocked() {
	if p.onView == nil || p.closed {
		return
	}
	v := broker.ClusterView{ClusterID: p.state.ClusterID, ControllerID: p.self.ID, Brokers: []broker.BrokerInfo{p.self}}
	for _, t := range p.state.Topics {
		tv := broker.TopicView{Config: t}
		for i := range t.Partitions {
			tv.Partitions = append(tv.Partitions, p.partitionLocked(t, i))
		}
		v.Topics = append(v.Topics, tv)
	}
	v.DeletedTopics = slices.Sorted(slices.Values(p.state.DeletedTopics))
	slices.SortFunc(v.Topics, func(a, b broker.TopicView) int {
		if a.Config.Name < b.Config.Name {
			return -1
		}
		if a.Config.Name > b.Config.Name {
			return 1
		}
		return 0
	})
	p.onView(v)
}

// saveLocked writes the state atomically (temp file, fsync, rename).
func (p *Plane) saveLocked() error {
	if p.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(p.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := p.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("standalone: %w", err)
	}
	return os.Rename(tmp, p.path)
}
