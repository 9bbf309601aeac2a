package coordinator

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/brokerlab/brokerlab/broker"
)

// registration is a live broker as etcd holds it.
type registration struct {
	info  broker.BrokerInfo
	lease int64 // the lease the key is attached to: the broker's session
}

// candidate is one key of the controller election.
type candidate struct {
	brokerID  int32
	createRev int64
}

// topicRecord is a topic's config key.
type topicRecord struct {
	cfg       broker.TopicConfig
	createRev int64
	modRev    int64
}

// state mirrors the cluster's keys at one revision. It is not safe for
// concurrent use: each owner (the view watcher, the controller) has its own.
type state struct {
	keys      keys
	rev       int64
	clusterID string
	brokers   map[int32]registration
	// sorted is brokers' infos by id, replaced (never changed in place) on
	// every registration or removal: views share it, and building it
	// afresh for every view (a map walk and a sort) was a third of the CPU
	// while 1,000 brokers registered, each registration reaching every
	// broker's watch.
	sorted     []broker.BrokerInfo
	candidates map[string]candidate
	topics     map[string]topicRecord
	parts      map[string]*topicParts
	deleted    map[string]struct{} // deleted-topics/ markers

	// Every broker holds the whole cluster's partition table, so its
	// representation is kept compact: topic names and replica sets are
	// interned (a partition's Topic, Replicas and ISR share one copy with
	// every partition of the same name or set), and a topic's partition
	// states are one array that views share (see topicParts).
	names map[string]string
	sets  map[replicaSet][]int32
}

// topicParts are a topic's partition states, indexed by partition; a slot
// with Version 0 holds none (a stored key's mod revision is never 0). The
// array is copied on write once a view has it, so a view never changes
// and an unchanged topic costs every view nothing.
type topicParts struct {
	states []broker.PartitionState
	n      int  // slots holding a state
	shared bool // a view holds states
}

func (tp *topicParts) get(p int32) (broker.PartitionState, bool) {
	if tp == nil || p < 0 || int(p) >= len(tp.states) || tp.states[p].Version == 0 {
		return broker.PartitionState{}, false
	}
	return tp.states[p], true
}

// writable makes states safe to write, growing it to hold partition p and
// at least size slots (the topic's partition count, when known, so a
// topic's states are allocated once as its keys arrive).
func (tp *topicParts) writable(p int32, size int) {
	need := max(int(p)+1, size)
	switch {
	case tp.shared:
	case need <= len(tp.states):
		return
	case need <= cap(tp.states): // never written beyond len: still zero
		tp.states = tp.states[:need]
		return
	}
	next := make([]broker.PartitionState, max(len(tp.states), need), max(need, 2*len(tp.states)))
	copy(next, tp.states)
	tp.states, tp.shared = next, false
}

// partition returns a stored partition state.
func (s *state) partition(topic string, p int32) (broker.PartitionState, bool) {
	return s.parts[topic].get(p)
}

// eachPartition calls fn with every stored partition state of every topic.
func (s *state) eachPartition(fn func(topic string, ps broker.PartitionState)) {
	for name, tp := range s.parts {
		for _, ps := range tp.states {
			if ps.Version != 0 {
				fn(name, ps)
			}
		}
	}
}

// replicaSet keys the interned replica and ISR lists of up to
// maxInternedSet brokers.
type replicaSet struct {
	n   int
	ids [maxInternedSet]int32
}

const maxInternedSet = 8

// intern returns the shared copy of a replica or ISR list. Lists longer
// than maxInternedSet are kept as they are.
func (s *state) intern(ids []int32) []int32 {
	if ids == nil || len(ids) > maxInternedSet {
		return ids
	}
	k := replicaSet{n: len(ids)}
	copy(k.ids[:], ids)
	if c, ok := s.sets[k]; ok {
		return c
	}
	if len(s.sets) >= maxInternedSets {
		clear(s.sets) // churn over a long life: start again, sharing is an optimisation only
	}
	c := slices.Clip(slices.Clone(ids))
	s.sets[k] = c
	return c
}

// maxInternedSets bounds the replica-set table.
const maxInternedSets = 1 << 20

// internName returns the shared copy of a topic name.
func (s *state) internName(name string) string {
	if c, ok := s.names[name]; ok {
		return c
	}
	if len(s.names) >= maxInternedSets {
		clear(s.names)
	}
	c := strings.Clone(name)
	s.names[c] = c
	return c
}

func newState(k keys) *state {
	s := &state{keys: k}
	s.clear()
	return s
}

func (s *state) clear() {
	s.rev = 0
	s.clusterID = ""
	s.brokers = make(map[int32]registration)
	s.sorted = nil
	s.candidates = make(map[string]candidate)
	s.topics = make(map[string]topicRecord)
	s.parts = make(map[string]*topicParts)
	s.deleted = make(map[string]struct{})
	s.names = make(map[string]string)
	s.sets = make(map[replicaSet][]int32)
}

// reset replaces the state with a listing taken at rev. It returns the keys
// it could not decode, which are left out.
func (s *state) reset(kvs []*mvccpb.KeyValue, rev int64) []error {
	s.clear()
	var errs []error
	for _, kv := range kvs {
		if err := s.put(kv); err != nil {
			errs = append(errs, err)
		}
	}
	s.rev = rev
	return errs
}

// apply applies watch events of one response whose header is at rev.
func (s *state) apply(events []*mvccpb.Event, rev int64) []error {
	var errs []error
	for _, ev := range events {
		if ev == nil || ev.Kv == nil {
			continue
		}
		var err error
		switch ev.Type {
		case mvccpb.Event_PUT:
			err = s.put(ev.Kv)
		case mvccpb.Event_DELETE:
			err = s.del(string(ev.Kv.Key))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if rev > s.rev {
		s.rev = rev
	}
	return errs
}

// put stores one key. A value that does not decode removes what was stored
// under the key, so the state never holds a stale value for it.
func (s *state) put(kv *mvccpb.KeyValue) error {
	key := string(kv.Key)
	pk, err := s.keys.parse(key)
	if err != nil {
		return err
	}
	switch pk.kind {
	case kindClusterID:
		s.clusterID = string(kv.Value)
	case kindBroker:
		var info broker.BrokerInfo
		if err := json.Unmarshal(kv.Value, &info); err != nil || info.ID != pk.brokerID {
			s.dropBroker(pk.brokerID)
			return fmt.Errorf("broker key %q: bad registration %q", key, kv.Value)
		}
		s.setBroker(registration{info: info, lease: kv.Lease})
	case kindCandidate:
		id, err := parseID(string(kv.Value))
		if err != nil {
			delete(s.candidates, pk.name)
			return fmt.Errorf("election key %q: %w", key, err)
		}
		s.candidates[pk.name] = candidate{brokerID: id, createRev: kv.CreateRevision}
	case kindTopic:
		var cfg broker.TopicConfig
		if err := json.Unmarshal(kv.Value, &cfg); err != nil || cfg.Name != pk.name || cfg.Validate() != nil {
			delete(s.topics, pk.name)
			return fmt.Errorf("topic key %q: bad config %q", key, kv.Value)
		}
		cfg.Name = s.internName(cfg.Name)
		cfg.Fanout = canonicalFanout(cfg.Fanout)
		s.topics[cfg.Name] = topicRecord{cfg: cfg, createRev: kv.CreateRevision, modRev: kv.ModRevision}
	case kindPartition:
		var ps broker.PartitionState
		if err := json.Unmarshal(kv.Value, &ps); err != nil {
			s.delPartition(pk.name, pk.partition)
			return fmt.Errorf("partition key %q: bad state: %w", key, err)
		}
		name := s.internName(pk.name)
		ps.Topic, ps.Partition, ps.Version = name, pk.partition, kv.ModRevision
		ps.Replicas = s.intern(ps.Replicas)
		if slices.Equal(ps.ISR, ps.Replicas) {
			ps.ISR = ps.Replicas
		} else {
			ps.ISR = s.intern(ps.ISR)
		}
		ps.Fanout = canonicalFanout(ps.Fanout)
		if pk.partition >= broker.MaxTopicPartitions {
			s.delPartition(name, pk.partition)
			return fmt.Errorf("partition key %q: partition %d beyond %d", key, pk.partition, broker.MaxTopicPartitions)
		}
		if ps.Version == 0 {
			ps.Version = 1 // a key always has a mod revision; keep the slot marked as held
		}
		tp := s.parts[name]
		if tp == nil {
			tp = &topicParts{}
			s.parts[name] = tp
		}
		tp.writable(pk.partition, int(s.topics[name].cfg.Partitions))
		if tp.states[pk.partition].Version == 0 {
			tp.n++
		}
		tp.states[pk.partition] = ps
	case kindDeleted:
		s.deleted[pk.name] = struct{}{}
	}
	return nil
}

func (s *state) del(key string) error {
	pk, err := s.keys.parse(key)
	if err != nil {
		return err
	}
	switch pk.kind {
	case kindClusterID:
		s.clusterID = ""
	case kindBroker:
		s.dropBroker(pk.brokerID)
	case kindCandidate:
		delete(s.candidates, pk.name)
	case kindTopic:
		delete(s.topics, pk.name)
	case kindPartition:
		s.delPartition(pk.name, pk.partition)
	case kindDeleted:
		delete(s.deleted, pk.name)
	}
	return nil
}

func (s *state) delPartition(topic string, p int32) {
	tp := s.parts[topic]
	if _, ok := tp.get(p); !ok {
		return
	}
	tp.writable(p, 0)
	tp.states[p] = broker.PartitionState{}
	if tp.n--; tp.n == 0 {
		delete(s.parts, topic)
	}
}

// controllerID is the broker id of the election's leader: the candidate key
// with the lowest create revision, as concurrency.Election decides. -1 when
// nobody campaigns.
func (s *state) controllerID() int32 {
	id, best := int32(-1), int64(0)
	for _, c := range s.candidates {
		if best == 0 || c.createRev < best {
			id, best = c.brokerID, c.createRev
		}
	}
	return id
}

// complete reports whether every partition of the topic has a state.
func (s *state) complete(t topicRecord) bool {
	tp, n := s.parts[t.cfg.Name], int(t.cfg.Partitions)
	if tp == nil || len(tp.states) < n || tp.n < n {
		return false
	}
	if tp.n == n && len(tp.states) == n {
		return true
	}
	for _, ps := range tp.states[:n] {
		if ps.Version == 0 {
			return false
		}
	}
	return true
}

// liveBrokers returns the registered brokers by id. The slice is shared
// (views hold it): callers must not change it.
func (s *state) liveBrokers() []broker.BrokerInfo { return s.sorted }

func byID(b broker.BrokerInfo, id int32) int { return cmp.Compare(b.ID, id) }

// setBroker stores a registration and replaces sorted with a copy that
// has it.
func (s *state) setBroker(r registration) {
	s.brokers[r.info.ID] = r
	i, found := slices.BinarySearchFunc(s.sorted, r.info.ID, byID)
	out := make([]broker.BrokerInfo, 0, len(s.sorted)+1)
	out = append(out, s.sorted[:i]...)
	out = append(out, r.info)
	if found {
		i++
	}
	s.sorted = append(out, s.sorted[i:]...)
}

// dropBroker removes a registration and replaces sorted with a copy
// without it.
func (s *state) dropBroker(id int32) {
	delete(s.brokers, id)
	if i, found := slices.BinarySearchFunc(s.sorted, id, byID); found {
		s.sorted = slices.Concat(s.sorted[:i], s.sorted[i+1:])
	}
}

// view builds a snapshot. It shares the partition lists with the state and
// with earlier views, which is safe because neither is ever mutated (views
// are values; the state replaces what changes). Topics whose partition
// states are not all written yet are left out. DeletedTopics are
// the deleted-topics/ markers, except for a name whose topic key exists
// (written by hand or by an older version: the topic wins).
func (s *state) view() broker.ClusterView {
	v := broker.ClusterView{ClusterID: s.clusterID, ControllerID: -1, Brokers: s.liveBrokers()}
	if id := s.controllerID(); id >= 0 {
		if _, ok := s.brokers[id]; ok {
			v.ControllerID = id
		}
	}
	names := make([]string, 0, len(s.topics))
	for name, t := range s.topics {
		if s.complete(t) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	v.Topics = make([]broker.TopicView, 0, len(names))
	for _, name := range names {
		t := s.topics[name]
		tp := s.parts[name]
		tp.shared = true
		v.Topics = append(v.Topics, broker.TopicView{Config: t.cfg, Partitions: tp.states[:t.cfg.Partitions:t.cfg.Partitions]})
	}
	for name := range s.deleted {
		if _, ok := s.topics[name]; !ok {
			v.DeletedTopics = append(v.DeletedTopics, name)
		}
	}
	slices.Sort(v.DeletedTopics)
	return v
}

// canonicalFanout returns the package constant for a known fanout, so the
// decoded copy of the string is not kept once per partition.
func canonicalFanout(f broker.Fanout) broker.Fanout {
	switch f {
	case broker.FanoutStar:
		return broker.FanoutStar
	case broker.FanoutChain:
		return broker.FanoutChain
	}
	return f
}

func clonePartition(ps broker.PartitionState) broker.PartitionState {
	ps.Replicas = slices.Clone(ps.Replicas)
	ps.ISR = slices.Clone(ps.ISR)
	return ps
}

// encodePartition is the stored form of a partition state: the JSON of
// broker.PartitionState with Version zeroed (the key's mod revision is the
// version).
func encodePartition(ps broker.PartitionState) string {
	ps.Version = 0
	b, _ := json.Marshal(ps) // a struct of plain fields always marshals
	return string(b)
}

func encodeTopic(cfg broker.TopicConfig) string {
	b, _ := json.Marshal(cfg)
	return string(b)
}

func encodeBroker(info broker.BrokerInfo) string {
	b, _ := json.Marshal(info)
	return string(b)
}

func encodeBrokerID(id int32) string { return strconv.Itoa(int(id)) }
