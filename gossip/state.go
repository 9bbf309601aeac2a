package gossip

import (
	"cmp"
	"slices"

	"github.com/brokerlab/brokerlab/broker"
)

// slotClaim says owner holds slots Start..End (inclusive) since config
// epoch Epoch. A slot goes to the claim with the higher epoch (Redis
// Cluster's rule for conflicting slot owners); equal epochs go to the
// higher node id, so every node settles the same way.
type slotClaim struct {
	Start uint16 `json:"a"`
	End   uint16 `json:"b"`
	Owner int32  `json:"o"`
	Epoch uint64 `json:"e"`
}

// partRec is one partition's record in the cluster state. Records with a
// higher (Epoch, Version) replace lower ones.
type partRec struct {
	Replicas []int32 `json:"r"`
	// Leader is the ring's leader (gossip-ring); under slots the leader is
	// the slot's owner and this field is unused.
	Leader int32 `json:"l"`
	// Epoch is the leader epoch the record was written in.
	Epoch   int32   `json:"e"`
	ISR     []int32 `json:"i"`
	Version int64   `json:"v"`
}

func (r partRec) newer(o partRec) bool {
	return r.Epoch > o.Epoch || (r.Epoch == o.Epoch && r.Version > o.Version)
}

func (r partRec) clone() partRec {
	r.Replicas = slices.Clone(r.Replicas)
	r.ISR = slices.Clone(r.ISR)
	return r
}

// topicRec is one incarnation of a topic: Stamp is its creation time in
// nanoseconds (with the creator's id in the low bits), so a topic deleted
// and created again is a new incarnation that replaces the old.
type topicRec struct {
	Config  broker.TopicConfig `json:"c"`
	Stamp   int64              `json:"s"`
	Deleted bool               `json:"d,omitempty"`
	Parts   []partRec          `json:"p,omitempty"`
}

func (t *topicRec) clone() *topicRec {
	c := *t
	c.Parts = make([]partRec, len(t.Parts))
	for i, p := range t.Parts {
		c.Parts[i] = p.clone()
	}
	return &c
}

// partUpdate carries one partition's record.
type partUpdate struct {
	Topic     string  `json:"t"`
	Stamp     int64   `json:"s"`
	Partition int32   `json:"p"`
	Rec       partRec `json:"r"`
}

// report lists the nodes a reporter cannot reach (Redis PFAIL flags
// gossiped in pings).
type report struct {
	Reporter int32   `json:"r"`
	Targets  []int32 `json:"t"`
}

// delta is a piece of cluster state; the whole state is one delta too.
type delta struct {
	Epoch   uint64           `json:"e,omitempty"` // sender's current epoch
	Nodes   map[int32]string `json:"n,omitempty"` // member id -> gossip address
	Slots   []slotClaim      `json:"s,omitempty"`
	Topics  []*topicRec      `json:"t,omitempty"`
	Parts   []partUpdate     `json:"p,omitempty"`
	Reports []report         `json:"r,omitempty"`
	Fails   []int32          `json:"f,omitempty"` // nodes a majority marked FAIL
}

func (d *delta) empty() bool {
	return d.Epoch == 0 && len(d.Nodes) == 0 && len(d.Slots) == 0 && len(d.Topics) == 0 &&
		len(d.Parts) == 0 && len(d.Reports) == 0 && len(d.Fails) == 0
}

// clusterState is one node's copy of the cluster state. Plane.mu guards it.
type clusterState struct {
	epoch     uint64           // Redis currentEpoch: the highest epoch seen
	nodes     map[int32]string // every member ever joined -> gossip address
	owner     [Slots]int32     // -1: unassigned
	slotEpoch [Slots]uint64
	topics    map[string]*topicRec
}

func newClusterState() *clusterState {
	s := &clusterState{nodes: map[int32]string{}, topics: map[string]*topicRec{}}
	for i := range s.owner {
		s.owner[i] = -1
	}
	return s
}

// mergeResult says what a merge changed.
type mergeResult struct {
	changed bool
	slots   bool // slot ownership moved
}

// merge applies d and returns what changed; the changed parts are also
// returned as a delta to spread further.
func (s *clusterState) merge(d *delta) (mergeResult, *delta) {
	var res mergeResult
	out := &delta{}
	if d.Epoch > s.epoch {
		s.epoch = d.Epoch
	}
	for id, addr := range d.Nodes {
		if id < 0 || addr == "" {
			continue
		}
		if s.nodes[id] != addr {
			s.nodes[id] = addr
			res.changed = true
			if out.Nodes == nil {
				out.Nodes = map[int32]string{}
			}
			out.Nodes[id] = addr
		}
	}
	for _, c := range d.Slots {
		if s.mergeSlots(c) {
			res.changed, res.slots = true, true
			out.Slots = append(out.Slots, c)
		}
	}
	for _, t := range d.Topics {
		if s.mergeTopic(t) {
			res.changed = true
			out.Topics = append(out.Topics, t)
		}
	}
	for _, p := range d.Parts {
		if s.mergePart(p) {
			res.changed = true
			out.Parts = append(out.Parts, p)
		}
	}
	return res, out
}

// mergeSlots applies a claim slot by slot; it reports whether any slot
// changed hands or epoch.
func (s *clusterState) mergeSlots(c slotClaim) bool {
	if c.Start > c.End || int(c.End) >= Slots || c.Owner < 0 {
		return false
	}
	if c.Epoch > s.epoch {
		s.epoch = c.Epoch
	}
	changed := false
	for i := int(c.Start); i <= int(c.End); i++ {
		if c.Epoch > s.slotEpoch[i] || (c.Epoch == s.slotEpoch[i] && c.Owner > s.owner[i]) {
			s.owner[i], s.slotEpoch[i] = c.Owner, c.Epoch
			changed = true
		}
	}
	return changed
}

func (s *clusterState) mergeTopic(t *topicRec) bool {
	if t == nil || t.Config.Name == "" || (!t.Deleted && int(t.Config.Partitions) != len(t.Parts)) {
		return false
	}
	cur, ok := s.topics[t.Config.Name]
	switch {
	case !ok || t.Stamp > cur.Stamp:
		s.topics[t.Config.Name] = t.clone()
		s.bumpEpochs(t)
		return true
	case t.Stamp < cur.Stamp:
		return false
	}
	changed := false
	if t.Deleted && !cur.Deleted {
		cur.Deleted, cur.Parts = true, nil
		return true
	}
	if cur.Deleted {
		return false
	}
	for i, p := range t.Parts {
		if i < len(cur.Parts) && p.newer(cur.Parts[i]) {
			cur.Parts[i] = p.clone()
			changed = true
		}
	}
	s.bumpEpochs(t)
	return changed
}

func (s *clusterState) bumpEpochs(t *topicRec) {
	for _, p := range t.Parts {
		if p.Epoch > 0 && uint64(p.Epoch) > s.epoch {
			s.epoch = uint64(p.Epoch)
		}
	}
}

func (s *clusterState) mergePart(u partUpdate) bool {
	t, ok := s.topics[u.Topic]
	if !ok || t.Stamp != u.Stamp || t.Deleted || u.Partition < 0 || int(u.Partition) >= len(t.Parts) {
		return false
	}
	if !u.Rec.newer(t.Parts[u.Partition]) {
		return false
	}
	t.Parts[u.Partition] = u.Rec.clone()
	if u.Rec.Epoch > 0 && uint64(u.Rec.Epoch) > s.epoch {
		s.epoch = uint64(u.Rec.Epoch)
	}
	return true
}

// full returns the whole state as a delta (push-pull).
func (s *clusterState) full() *delta {
	d := &delta{Epoch: s.epoch, Nodes: make(map[int32]string, len(s.nodes)), Slots: s.claims()}
	for id, a := range s.nodes {
		d.Nodes[id] = a
	}
	for _, t := range s.sortedTopics() {
		d.Topics = append(d.Topics, t.clone())
	}
	return d
}

// claims run-length encodes the slot table.
func (s *clusterState) claims() []slotClaim {
	var out []slotClaim
	for i := 0; i < Slots; {
		j := i
		for j+1 < Slots && s.owner[j+1] == s.owner[i] && s.slotEpoch[j+1] == s.slotEpoch[i] {
			j++
		}
		if s.owner[i] >= 0 {
			out = append(out, slotClaim{Start: uint16(i), End: uint16(j), Owner: s.owner[i], Epoch: s.slotEpoch[i]})
		}
		i = j + 1
	}
	return out
}

func (s *clusterState) sortedTopics() []*topicRec {
	out := make([]*topicRec, 0, len(s.topics))
	for _, t := range s.topics {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *topicRec) int { return cmp.Compare(a.Config.Name, b.Config.Name) })
	return out
}

// masters are the nodes owning at least one slot, by id.
func (s *clusterState) masters() []int32 {
	seen := map[int32]bool{}
	for _, o := range s.owner {
		if o >= 0 {
			seen[o] = true
		}
	}
	return sortedKeys(seen)
}

// slotsOf returns the slots node owns.
func (s *clusterState) slotsOf(node int32) []int {
	var out []int
	for i, o := range s.owner {
		if o == node {
			out = append(out, i)
		}
	}
	return out
}

// usedSlots marks the slots some live topic's partitions hash to.
func (s *clusterState) usedSlots() map[int]bool {
	used := map[int]bool{}
	for _, t := range s.topics {
		if t.Deleted {
			continue
		}
		for p := range t.Parts {
			used[Slot(PartitionKey(t.Config.Name, int32(p)))] = true
		}
	}
	return used
}

func sortedKeys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// majority is Redis's and Raft's quorum of n voters.
func majority(n int) int { return n/2 + 1 }
