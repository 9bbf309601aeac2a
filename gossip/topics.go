package gossip

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/brokerlab/brokerlab/broker"
)

// CreateTopics places each topic and spreads it. Under slots a partition's
// replicas are its slot's master followed by the next live nodes by id
// (the master's replicas); under the ring, the next distinct nodes
// clockwise from the partition's token.
func (p *Plane) CreateTopics(ctx context.Context, topics []broker.TopicConfig) []error {
	errs := make([]error, len(topics))
	if err := ctx.Err(); err != nil {
		return fill(errs, fmt.Errorf("gossip: create topics: %w", err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.started {
		return fill(errs, fmt.Errorf("gossip: create topics: %w", ErrClosed))
	}
	d := &delta{}
	for i, cfg := range topics {
		t, err := p.placeLocked(cfg)
		if err != nil {
			errs[i] = err
			continue
		}
		p.st.mergeTopic(t)
		d.Topics = append(d.Topics, t)
		p.log.Info("topic created", "topic", cfg.Name, "partitions", cfg.Partitions, "replication", cfg.ReplicationFactor)
	}
	if len(d.Topics) > 0 {
		p.publishLocked(d)
		p.views.offer(p.viewLocked())
	}
	return errs
}

func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// liveLocked returns the members that are alive and not FAIL, by id.
// Lock should be held.
func (p *Plane) liveLocked() []int32 {
	var out []int32
	for _, id := range sortedKeys(p.alive) {
		if _, failed := p.failed[id]; !failed {
			out = append(out, id)
		}
	}
	return out
}

// placeLocked builds a new topic's record. Lock should be held.
func (p *Plane) placeLocked(cfg broker.TopicConfig) (*topicRec, error) {
	if cfg.Name == "" || cfg.Partitions <= 0 || cfg.ReplicationFactor <= 0 || cfg.Partitions > maxPartitions {
		return nil, fmt.Errorf("gossip: create topic %q: %w: %d partitions, replication %d", cfg.Name,
			broker.ErrInvalidTopic, cfg.Partitions, cfg.ReplicationFactor)
	}
	if t, ok := p.st.topics[cfg.Name]; ok && !t.Deleted {
		return nil, fmt.Errorf("gossip: create topic %q: %w", cfg.Name, broker.ErrTopicExists)
	}
	live := p.liveLocked()
	if int(cfg.ReplicationFactor) > len(live) {
		return nil, fmt.Errorf("gossip: create topic %q: %w: replication %d, %d live", cfg.Name,
			broker.ErrNotEnoughBrokers, cfg.ReplicationFactor, len(live))
	}
	t := &topicRec{Config: cfg, Stamp: time.Now().UnixNano()&^0xffff | int64(p.self.ID&0xffff)}
	var ring *Ring
	if p.cfg.Placement == PlacementRing {
		ring = NewRing(live, p.cfg.VirtualNodes)
	}
	for i := range cfg.Partitions {
		key := PartitionKey(cfg.Name, i)
		var rec partRec
		if ring != nil {
			rec.Replicas = ring.Replicas(key, int(cfg.ReplicationFactor))
			rec.Leader = rec.Replicas[0]
		} else {
			s := Slot(key)
			owner := p.st.owner[s]
			if owner < 0 {
				return nil, fmt.Errorf("gossip: create topic %q: %w: slot %d has no master yet", cfg.Name, broker.ErrNotEnoughBrokers, s)
			}
			rec.Replicas = replicasAfter(owner, live, int(cfg.ReplicationFactor))
			rec.Leader = -1
			rec.Epoch = int32(p.st.slotEpoch[s])
		}
		rec.ISR = slices.Clone(rec.Replicas)
		rec.Version = 1
		t.Parts = append(t.Parts, rec)
	}
	return t, nil
}

// replicasAfter returns master followed by the next rf-1 nodes of live
// after it by id, wrapping around.
func replicasAfter(master int32, live []int32, rf int) []int32 {
	out := []int32{master}
	i, _ := slices.BinarySearch(live, master)
	for k := 0; k < len(live) && len(out) < rf; k++ {
		n := live[(i+k)%len(live)]
		if n != master {
			out = append(out, n)
		}
	}
	return out
}

// DeleteTopics marks topics deleted and spreads the tombstones.
func (p *Plane) DeleteTopics(ctx context.Context, names []string) []error {
	errs := make([]error, len(names))
	if err := ctx.Err(); err != nil {
		return fill(errs, fmt.Errorf("gossip: delete topics: %w", err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.started {
		return fill(errs, fmt.Errorf("gossip: delete topics: %w", ErrClosed))
	}
	d := &delta{}
	for i, name := range names {
		t, ok := p.st.topics[name]
		if !ok || t.Deleted {
			errs[i] = fmt.Errorf("gossip: delete topic %q: %w", name, broker.ErrUnknownTopic)
			continue
		}
		t.Deleted, t.Parts = true, nil
		d.Topics = append(d.Topics, t.clone())
		p.log.Info("topic deleted", "topic", name)
	}
	if len(d.Topics) > 0 {
		p.publishLocked(d)
		p.views.offer(p.viewLocked())
	}
	return errs
}

// AlterISR stores a new ISR once a majority of the voters (masters under
// slots, every ring member under the ring) acknowledged it; a leader cut
// off with a minority cannot shrink its ISR, so acks=all stops there.
func (p *Plane) AlterISR(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	p.mu.Lock()
	rec, req, voters, err := p.isrProposalLocked(want)
	p.mu.Unlock()
	if err != nil {
		return broker.PartitionState{}, err
	}
	granted := p.quorum(ctx, voters, req)
	if granted < majority(len(voters)) {
		return broker.PartitionState{}, fmt.Errorf("gossip: alter isr %s/%d: %w (%d of %d voters): %w",
			want.Topic, want.Partition, ErrNoMajority, granted, len(voters), broker.ErrControlPlaneDown)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.st.mergePart(*req.Part) {
		t := p.st.topics[want.Topic]
		if t == nil || t.Deleted || int(want.Partition) >= len(t.Parts) || !sameRec(t.Parts[want.Partition], rec) {
			return broker.PartitionState{}, fmt.Errorf("gossip: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrStaleState)
		}
	}
	p.publishLocked(&delta{Parts: []partUpdate{*req.Part}})
	p.views.offer(p.viewLocked())
	out := want
	out.ISR, out.Version = slices.Clone(rec.ISR), rec.Version
	return out, nil
}

func sameRec(a, b partRec) bool { return a.Epoch == b.Epoch && a.Version == b.Version }

// isrProposalLocked checks want against the state and builds the request.
// Lock should be held.
func (p *Plane) isrProposalLocked(want broker.PartitionState) (partRec, *request, []int32, error) {
	if p.closed || !p.started {
		return partRec{}, nil, nil, ErrClosed
	}
	t, ok := p.st.topics[want.Topic]
	if !ok || t.Deleted || want.Partition < 0 || int(want.Partition) >= len(t.Parts) {
		return partRec{}, nil, nil, fmt.Errorf("gossip: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrUnknownTopic)
	}
	cur := t.Parts[want.Partition]
	leader, epoch := p.leaderLocked(t, want.Partition)
	switch {
	case leader != p.self.ID || want.LeaderEpoch != epoch:
		return partRec{}, nil, nil, fmt.Errorf("gossip: alter isr %s/%d: leader %d epoch %d, asked by %d in epoch %d: %w",
			want.Topic, want.Partition, leader, epoch, p.self.ID, want.LeaderEpoch, broker.ErrFenced)
	case want.Version != cur.Version:
		return partRec{}, nil, nil, fmt.Errorf("gossip: alter isr %s/%d: version %d, current %d: %w",
			want.Topic, want.Partition, want.Version, cur.Version, broker.ErrStaleState)
	case !slices.Contains(want.ISR, p.self.ID):
		return partRec{}, nil, nil, fmt.Errorf("gossip: alter isr %s/%d: ISR %v lacks the leader: %w",
			want.Topic, want.Partition, want.ISR, broker.ErrInvalidTopic)
	}
	for _, id := range want.ISR {
		if !slices.Contains(cur.Replicas, id) {
			return partRec{}, nil, nil, fmt.Errorf("gossip: alter isr %s/%d: %d is not a replica: %w",
				want.Topic, want.Partition, id, broker.ErrInvalidTopic)
		}
	}
	rec := cur.clone()
	rec.ISR = slices.Clone(want.ISR)
	slices.Sort(rec.ISR)
	rec.Epoch = epoch
	rec.Version = cur.Version + 1
	req := &request{Kind: reqISR, Epoch: uint64(epoch), Base: cur.Version,
		Part: &partUpdate{Topic: want.Topic, Stamp: t.Stamp, Partition: want.Partition, Rec: rec}}
	return rec, req, p.votersLocked(), nil
}

// votersLocked returns who votes and acknowledges: the masters under
// slots, every ring member under the ring. Lock should be held.
func (p *Plane) votersLocked() []int32 {
	if p.cfg.Placement == PlacementRing {
		return sortedKeys(p.st.nodes)
	}
	return p.st.masters()
}

// quorum sends req to every voter (this node answers itself in-process)
// and returns how many granted, stopping early at a majority.
func (p *Plane) quorum(ctx context.Context, voters []int32, req *request) int {
	need := majority(len(voters))
	ch := make(chan response, len(voters))
	req.From = p.self.ID
	req.ID = p.reqSeq.Add(1)<<16 | uint64(p.self.ID&0xffff)
	p.mu.Lock()
	p.pending[req.ID] = ch
	var targets []*memberlist.Node
	selfVoter := false
	for _, id := range voters {
		if id == p.self.ID {
			selfVoter = true
		} else if n := p.alive[id]; n != nil {
			targets = append(targets, n)
		}
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, req.ID)
		p.mu.Unlock()
	}()
	granted, answered := 0, 0
	if selfVoter {
		answered++
		if ok, reason := p.grant(req); ok {
			granted++
		} else {
			p.log.Debug("own vote refused", "kind", req.Kind, "reason", reason)
		}
	}
	if granted >= need {
		return granted
	}
	msg, err := encode(kindRequest, req)
	if err != nil {
		return granted
	}
	for _, n := range targets {
		p.goFunc(func() {
			p.requestsSent.Add(1)
			p.send(n, msg, true)
		})
	}
	timer := time.NewTimer(p.cfg.RequestTimeout)
	defer timer.Stop()
	for answered < len(targets)+boolInt(selfVoter) && granted < need {
		select {
		case r := <-ch:
			answered++
			if r.Granted {
				granted++
			} else {
				p.log.Debug("vote refused", "kind", req.Kind, "voter", r.From, "reason", r.Reason)
			}
		case <-timer.C:
			return granted
		case <-ctx.Done():
			return granted
		case <-p.ctx.Done():
			return granted
		}
	}
	return granted
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// answer serves a peer's request.
func (p *Plane) answer(req *request) {
	var ok bool
	var reason string
	if req.Kind == reqLeave {
		ok, reason = p.dropFromISRs(req.From)
	} else {
		ok, reason = p.grant(req)
	}
	// What a grant commits to (a vote, an acknowledged ISR change) is on
	// disk before the asker hears of it, as Redis saves before it votes.
	if ok {
		if err := p.save(); err != nil {
			ok, reason = false, err.Error()
		}
	}
	p.mu.Lock()
	to := p.alive[req.From]
	p.mu.Unlock()
	if to == nil {
		return
	}
	msg, err := encode(kindResponse, response{ID: req.ID, From: p.self.ID, Granted: ok, Reason: reason})
	if err == nil {
		p.send(to, msg, true)
	}
}

// grant decides a request and records what granting it commits to.
func (p *Plane) grant(req *request) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch req.Kind {
	case reqISR:
		// A voter stores what it acknowledges; the asker itself stores
		// the change only once a majority has.
		return p.grantISRLocked(req, req.From != p.self.ID)
	case reqVote:
		if p.cfg.Placement == PlacementRing {
			return p.grantRingVoteLocked(req)
		}
		return p.grantSlotVoteLocked(req)
	}
	return false, "unknown request"
}

// grantISRLocked acknowledges an ISR change when the asker leads the
// partition in this node's view too, in the same epoch, and the change
// builds on what this node holds; it stores the change, so a later
// election (which needs a majority that overlaps this one) sees it.
func (p *Plane) grantISRLocked(req *request, commit bool) (bool, string) {
	u := req.Part
	t, ok := p.st.topics[u.Topic]
	if !ok || t.Deleted || t.Stamp != u.Stamp || int(u.Partition) >= len(t.Parts) {
		return false, "unknown partition"
	}
	leader, epoch := p.leaderLocked(t, u.Partition)
	cur := t.Parts[u.Partition]
	switch {
	case leader != req.From || uint64(epoch) != req.Epoch:
		return false, fmt.Sprintf("leader here is %d in epoch %d", leader, epoch)
	case sameRec(cur, u.Rec):
		return true, ""
	case !u.Rec.newer(cur) || cur.Version > req.Base:
		return false, fmt.Sprintf("record here is epoch %d version %d", cur.Epoch, cur.Version)
	}
	if commit {
		// The broker's view follows at the next tick: a voter acknowledges
		// every leader's ISR changes, and building a whole view for each
		// one, under the lock, stalled the plane (probes, gossip, other
		// grants) when many partitions changed at once (a failure at 50
		// brokers × 500 partitions: thousands of grants queued on the lock).
		if p.st.mergePart(*u) {
			p.dirty = true
		}
	}
	return true, ""
}
