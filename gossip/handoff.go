package gossip

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

// Graceful leave (Plane.Deregister). Redis has CLUSTER FAILOVER, run on a
// replica, for a planned master change: the master stops writes, the
// replica catches up and takes the slots in a new config epoch. Here the
// leaving node starts it from its side: it still owns its slots (or leads
// its ring partitions), so it hands each to a live in-sync replica in a
// new epoch without an election, as Redis's resharding and CLUSTER
// FAILOVER TAKEOVER do, tells every live member directly, and only then
// leaves memberlist. A replica in the ISR has every acknowledged write
// (acks=all waits for the ISR), so nothing acknowledged is lost; writes the
// old leader took and not yet acknowledged fail and are retried by the
// producers against the new leader.

// handoffLocked moves every leadership of this node to a live in-sync
// replica and returns the change, nil when there is nothing to move. Lock
// should be held.
func (p *Plane) handoffLocked() *delta {
	var d *delta
	if p.cfg.Placement == PlacementSlots {
		d = p.handoffSlotsLocked()
	} else {
		d = p.handoffRingLocked()
	}
	if d == nil || d.empty() {
		return nil
	}
	return d
}

// liveOthersLocked are the live members other than this node, by id. Lock
// should be held.
func (p *Plane) liveOthersLocked() []int32 {
	var out []int32
	for _, id := range sortedKeys(p.alive) {
		if _, failed := p.failed[id]; id != p.self.ID && !failed {
			out = append(out, id)
		}
	}
	return out
}

// handoffSlotsLocked gives each owned slot to the lowest live replica in
// sync on all its partitions; slots no partition hashes to go with the
// first slot handed off (or to the lowest live node). Lock should be held.
func (p *Plane) handoffSlotsLocked() *delta {
	slots := p.st.slotsOf(p.self.ID)
	live := p.liveOthersLocked()
	if len(slots) == 0 || len(live) == 0 {
		return nil
	}
	bySlot := p.partsBySlotLocked()
	epoch := p.st.epoch + 1
	to := map[int32][]int{}
	fallback := int32(-1)
	var empty []int
	for _, s := range slots {
		parts := bySlot[s]
		if len(parts) == 0 {
			empty = append(empty, s)
			continue
		}
		i := slices.IndexFunc(live, func(id int32) bool { return eligible(id, parts) })
		if i < 0 {
			continue // no replica can take it over: it goes offline with this node
		}
		to[live[i]] = append(to[live[i]], s)
		if fallback < 0 {
			fallback = live[i]
		}
	}
	if fallback < 0 {
		fallback = live[0]
	}
	to[fallback] = append(to[fallback], empty...)
	d := &delta{Epoch: epoch}
	for _, owner := range sortedKeys(to) {
		ss := to[owner]
		slices.Sort(ss)
		d.Slots = append(d.Slots, rangesOf(ss, owner, epoch)...)
		for _, s := range ss {
			for _, u := range bySlot[s] {
				u.Rec = u.Rec.clone()
				u.Rec.ISR = slices.DeleteFunc(u.Rec.ISR, func(id int32) bool { return id == p.self.ID })
				u.Rec.Epoch = int32(epoch)
				u.Rec.Version++
				d.Parts = append(d.Parts, u)
			}
		}
		p.log.Info("handoff: slots to a replica", "to", owner, "slots", len(ss), "config-epoch", epoch)
	}
	p.st.epoch = epoch
	for _, c := range d.Slots {
		p.st.mergeSlots(c)
	}
	for _, u := range d.Parts {
		p.st.mergePart(u)
	}
	return d
}

// handoffRingLocked gives each ring partition this node leads to the next
// live in-sync replica in ring order. Lock should be held.
func (p *Plane) handoffRingLocked() *delta {
	live := p.liveOthersLocked()
	d := &delta{}
	for _, t := range p.st.sortedTopics() {
		if t.Deleted {
			continue
		}
		for i, r := range t.Parts {
			if r.Leader != p.self.ID {
				continue
			}
			j := slices.IndexFunc(r.Replicas, func(id int32) bool {
				return slices.Contains(live, id) && slices.Contains(r.ISR, id)
			})
			if j < 0 {
				continue
			}
			key := PartitionKey(t.Config.Name, int32(i))
			rec := r.clone()
			epoch := max(uint64(rec.Epoch), p.tried[key]) + 1
			p.tried[key] = epoch
			rec.Leader = r.Replicas[j]
			rec.Epoch = int32(epoch)
			rec.ISR = slices.DeleteFunc(rec.ISR, func(id int32) bool { return id == p.self.ID })
			rec.Version++
			u := partUpdate{Topic: t.Config.Name, Stamp: t.Stamp, Partition: int32(i), Rec: rec}
			p.st.mergePart(u)
			d.Parts = append(d.Parts, u)
			p.log.Info("handoff: ring partition to a replica", "partition", key, "to", rec.Leader, "leader-epoch", epoch)
		}
	}
	return d
}

// tellAll sends d to every live member directly and reliably (and to the
// spread, for members that miss it), so they follow the hand-off before
// this node leaves.
func (p *Plane) tellAll(ctx context.Context, d *delta) {
	p.mu.Lock()
	p.publishLocked(d)
	p.views.offer(p.viewLocked())
	id := updateID{origin: p.self.ID, seq: p.seq.Add(1)}
	p.mu.Unlock()
	msg, err := encode(kindUpdate, update{Origin: id.origin, Seq: id.seq, Via: p.self.ID, Delta: d})
	if err != nil {
		return
	}
	done := make(chan struct{})
	p.goFunc(func() {
		defer close(done)
		for _, n := range p.peers() {
			p.send(n, msg, true)
		}
	})
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(p.cfg.TCPTimeout):
	}
}

// leaveISRs asks every live member to drop this node from the ISRs of the
// partitions it leads (what Kafka's controller does in a controlled
// shutdown): with acks=all, a leader would otherwise wait for the stopped
// follower until it falls out of the ISR after replica_lag_max. It waits
// for a majority of the answers, at most the request timeout.
func (p *Plane) leaveISRs(ctx context.Context) {
	p.mu.Lock()
	peers := p.liveOthersLocked()
	p.mu.Unlock()
	if len(peers) == 0 {
		return
	}
	n := p.quorum(ctx, peers, &request{Kind: reqLeave})
	p.log.Info("handoff: leaders dropped this node from their ISRs", "granted", n, "asked", len(peers))
}

// dropFromISRs serves a leaving node's reqLeave: every partition this node
// leads with x in its ISR (and someone else) gets an ISR without x, through
// the usual majority-acknowledged ISR change.
func (p *Plane) dropFromISRs(x int32) (bool, string) {
	p.mu.Lock()
	var wants []broker.PartitionState
	for _, t := range p.st.sortedTopics() {
		if t.Deleted {
			continue
		}
		for i, r := range t.Parts {
			leader, epoch := p.leaderLocked(t, int32(i))
			if leader != p.self.ID || len(r.ISR) < 2 || !slices.Contains(r.ISR, x) {
				continue
			}
			wants = append(wants, broker.PartitionState{Topic: t.Config.Name, Partition: int32(i), Leader: leader,
				LeaderEpoch: epoch, Version: r.Version,
				ISR: slices.DeleteFunc(slices.Clone(r.ISR), func(id int32) bool { return id == x })})
		}
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ElectionTimeout)
	defer cancel()
	failed := 0
	for _, w := range wants {
		if _, err := p.AlterISR(ctx, w); err != nil {
			failed++
			p.log.Info("handoff: cannot drop a leaving node from an ISR", "leaving-node", x, "topic", w.Topic, "partition", w.Partition, "error", err)
		}
	}
	if failed > 0 {
		return false, fmt.Sprintf("%d of %d ISR changes failed", failed, len(wants))
	}
	return true, ""
}
