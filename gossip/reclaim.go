package gossip

import "slices"

// A node that starts again and still owns slots (gossip-ring: still leads
// partitions), from its state file or from the others' state, takes them
// again in a new epoch before its broker sees a view. Without it the
// restarted node would lead in the leader epoch of its previous life, and
// its log need not be the one it had then: after a power loss it ends
// where its last fsync did, while a follower that synced later holds more
// of that epoch. New writes in the same epoch would then land on offsets
// the follower already holds different records at, and no epoch boundary
// would tell the follower where to cut (OffsetForLeaderEpoch answers the
// leader's current end): the follower stopped at a batch that no longer
// lines up, fell out of the ISR and the partition took no acks=all write
// again. A new epoch starts at the restarted leader's log end, so
// followers truncate to it, as Kafka's controller bumps the leader epoch
// of every partition a restarted broker leads again.

// reclaimLocked returns the delta that takes this node's slots (ring: its
// partitions) again in a new epoch, applied to the state already; nil when
// it owns nothing. Lock should be held.
func (p *Plane) reclaimLocked() *delta {
	if p.cfg.Placement == PlacementRing {
		return p.reclaimRingLocked()
	}
	slots := p.st.slotsOf(p.self.ID)
	if len(slots) == 0 {
		return nil
	}
	p.st.epoch++
	epoch := p.st.epoch
	d := &delta{Epoch: epoch, Slots: rangesOf(slots, p.self.ID, epoch)}
	for _, c := range d.Slots {
		p.st.mergeSlots(c)
	}
	bySlot := p.partsBySlotLocked()
	for _, s := range slots {
		for _, u := range bySlot[s] {
			u.Rec = u.Rec.clone()
			u.Rec.Epoch = int32(epoch)
			u.Rec.Version++
			p.st.mergePart(u)
			d.Parts = append(d.Parts, u)
		}
	}
	p.log.Info("restarted: took own slots again in a new epoch", "slots", len(slots), "config-epoch", epoch, "partitions", len(d.Parts))
	return d
}

func (p *Plane) reclaimRingLocked() *delta {
	d := &delta{}
	for _, t := range p.st.sortedTopics() {
		if t.Deleted {
			continue
		}
		for i, r := range t.Parts {
			if r.Leader != p.self.ID || !slices.Contains(r.Replicas, p.self.ID) {
				continue
			}
			key := PartitionKey(t.Config.Name, int32(i))
			rec := r.clone()
			epoch := max(uint64(rec.Epoch), p.tried[key], p.partVotes[key]) + 1
			p.tried[key] = epoch
			rec.Epoch = int32(epoch)
			rec.Version++
			u := partUpdate{Topic: t.Config.Name, Stamp: t.Stamp, Partition: int32(i), Rec: rec}
			p.st.mergePart(u)
			d.Parts = append(d.Parts, u)
		}
	}
	if len(d.Parts) == 0 {
		return nil
	}
	p.log.Info("restarted: leads its ring partitions again in new epochs", "partitions", len(d.Parts))
	return d
}
