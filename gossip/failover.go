package gossip

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/brokerlab/brokerlab/internal/poll"
)

// cronLoop runs failure detection, elections, slot takeover and rejoins.
func (p *Plane) cronLoop() {
	nextMeta := time.Now()
	poll.Every(p.ctx, max(p.cfg.ProbeInterval/3, 20*time.Millisecond), nil, func(now time.Time) {
		if !now.Before(nextMeta) {
			nextMeta = now.Add(p.cfg.ProbeInterval)
			p.refreshMeta()
		}
		p.tick(now)
	})
}

func (p *Plane) tick(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	d := &delta{}
	p.detectLocked(now, d)
	if p.cfg.Placement == PlacementSlots {
		p.takeSlotsLocked(now, d)
		p.slotElectionsLocked(now)
	} else {
		p.ringElectionsLocked(now)
	}
	p.rejoinLocked(now)
	if !d.empty() {
		p.publishLocked(d)
	}
	if p.dirty {
		p.dirty = false
		p.views.offer(p.viewLocked())
	}
}

// detectLocked reports the nodes this one cannot reach (PFAIL) and marks
// FAIL those a majority of the voters report. Lock should be held.
func (p *Plane) detectLocked(now time.Time, d *delta) {
	var pfail []int32
	for _, id := range sortedKeys(p.st.nodes) {
		if _, ok := p.alive[id]; !ok && id != p.self.ID {
			pfail = append(pfail, id)
		}
	}
	// A report goes out when the set changes, and again while it is not
	// empty to keep it valid; an empty report adds nothing to anyone's
	// count, and every member repeating one every ReportValidity/3 cost
	// members × fan-out × rounds messages each time: at idle, most of the
	// plane's traffic (1,700 messages/s among 10 brokers, fast timings).
	changed := !slices.Equal(pfail, p.pfail)
	if changed || (len(pfail) > 0 && !now.Before(p.nextReport)) {
		if changed && len(pfail) > 0 {
			p.log.Info("members unreachable (pfail)", "pfail", pfail)
		}
		p.pfail = pfail
		p.nextReport = now.Add(p.cfg.ReportValidity / 3)
		d.Reports = append(d.Reports, report{Reporter: p.self.ID, Targets: pfail})
	}
	p.reports[p.self.ID] = reportEntry{targets: pfail, at: now}
	voters := p.votersLocked()
	need := majority(len(voters))
	counts := map[int32]int{}
	for _, v := range voters {
		r, ok := p.reports[v]
		if !ok || now.Sub(r.at) > p.cfg.ReportValidity {
			continue
		}
		for _, t := range r.targets {
			if t != v {
				counts[t]++
			}
		}
	}
	for _, t := range sortedKeys(counts) {
		if _, done := p.failed[t]; !done && counts[t] >= need && t != p.self.ID {
			p.failed[t] = now
			d.Fails = append(d.Fails, t)
			p.log.Info("node failed: a majority of voters reports it", "failed-node", t, "reports", counts[t], "voters", len(voters))
		}
	}
	for id, since := range p.failed {
		if _, up := p.alive[id]; up && (!p.leadsLocked(id) || now.Sub(since) > 2*p.cfg.ReportValidity) {
			delete(p.failed, id)
			p.log.Info("failed node is back", "member", id)
			p.dirty = true
		}
	}
}

// leadsLocked reports whether id leads anything: owns slots, or leads a
// ring partition. Lock should be held.
func (p *Plane) leadsLocked(id int32) bool {
	if p.cfg.Placement == PlacementSlots {
		return slices.Contains(p.st.owner[:], id)
	}
	for _, t := range p.st.topics {
		for _, r := range t.Parts {
			if r.Leader == id {
				return true
			}
		}
	}
	return false
}

// takeSlotsLocked lets a node without slots take its share of the slots no
// partition hashes to, from the master holding most (Redis moves slots by
// resharding, keys and all; here only empty slots move, so no data does).
// The claim bumps the epoch without a vote, as Redis's resharding does.
// Lock should be held.
func (p *Plane) takeSlotsLocked(now time.Time, d *delta) {
	if now.Before(p.nextTake) || p.left || len(p.st.slotsOf(p.self.ID)) > 0 {
		return // a leaving node has just handed its slots off
	}
	p.nextTake = now.Add(p.cfg.JoinRetry)
	masters := p.st.masters()
	if len(masters) == 0 {
		return
	}
	live := p.liveLocked()
	share := Slots / max(len(live), 1)
	var donor int32 = -1
	most := 0
	for _, m := range masters {
		if n := len(p.st.slotsOf(m)); n > most && slices.Contains(live, m) {
			donor, most = m, n
		}
	}
	if donor < 0 || most <= share {
		return
	}
	used := p.st.usedSlots()
	var free []int
	for _, s := range slices.Backward(p.st.slotsOf(donor)) {
		if !used[s] {
			free = append(free, s)
		}
		if len(free) == share {
			break
		}
	}
	if len(free) == 0 {
		return
	}
	p.st.epoch++
	claims := rangesOf(free, p.self.ID, p.st.epoch)
	for _, c := range claims {
		p.st.mergeSlots(c)
	}
	d.Slots = append(d.Slots, claims...)
	d.Epoch = p.st.epoch
	p.dirty = true
	p.log.Info("took slots", "slots", len(free), "from", donor, "config-epoch", p.st.epoch)
}

// rangesOf turns slots into claims of contiguous ranges.
func rangesOf(slots []int, owner int32, epoch uint64) []slotClaim {
	s := slices.Clone(slots)
	slices.Sort(s)
	var out []slotClaim
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		out = append(out, slotClaim{Start: uint16(s[i]), End: uint16(s[j]), Owner: owner, Epoch: epoch})
		i = j + 1
	}
	return out
}

// rejoinLocked asks memberlist to reach known members it holds dead, so a
// healed partition merges again (Serf's reconnect). Lock should be held.
func (p *Plane) rejoinLocked(now time.Time) {
	if now.Before(p.nextJoin) || p.joinOn.Load() {
		return
	}
	p.nextJoin = now.Add(p.cfg.JoinRetry)
	var addrs []string
	for id, a := range p.st.nodes {
		if _, ok := p.alive[id]; !ok && id != p.self.ID {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return
	}
	p.joinOn.Store(true)
	p.goFunc(func() {
		defer p.joinOn.Store(false)
		_, _ = p.ml.Join(addrs)
	})
}

// partsBySlotLocked maps each used slot to its partitions. Lock should be
// held.
func (p *Plane) partsBySlotLocked() map[int][]partUpdate {
	out := map[int][]partUpdate{}
	for _, t := range p.st.topics {
		if t.Deleted {
			continue
		}
		for i, r := range t.Parts {
			s := Slot(PartitionKey(t.Config.Name, int32(i)))
			out[s] = append(out[s], partUpdate{Topic: t.Config.Name, Stamp: t.Stamp, Partition: int32(i), Rec: r})
		}
	}
	return out
}

// eligible reports whether node may take over every partition in parts:
// it must be a replica and in the ISR (an out-of-sync replica could lose
// acknowledged writes).
func eligible(node int32, parts []partUpdate) bool {
	for _, u := range parts {
		if !slices.Contains(u.Rec.Replicas, node) || !slices.Contains(u.Rec.ISR, node) {
			return false
		}
	}
	return true
}

// slotElectionsLocked schedules and starts this node's elections for the
// slots of failed masters. Lock should be held.
func (p *Plane) slotElectionsLocked(now time.Time) {
	bySlot := p.partsBySlotLocked()
	for _, x := range sortedKeys(p.failed) {
		key := "slots/" + strconv.Itoa(int(x))
		slots := p.st.slotsOf(x)
		if len(slots) == 0 || p.running[key] {
			delete(p.elections, key)
			continue
		}
		var mine []int
		for _, s := range slots {
			if eligible(p.self.ID, bySlot[s]) {
				mine = append(mine, s)
			}
		}
		if len(mine) == 0 {
			continue
		}
		at, ok := p.elections[key]
		if !ok {
			rank := p.rankLocked(x, slots, bySlot)
			at = now.Add(p.cfg.ElectionDelay + jitter(p.cfg.ElectionJitter) + time.Duration(rank)*p.cfg.RankDelay)
			p.elections[key] = at
			p.log.Info("master failed: election scheduled", "failed-node", x, "rank", rank, "slots", len(mine), "in", time.Until(at).Round(time.Millisecond))
		}
		if now.Before(at) {
			continue
		}
		p.running[key] = true
		p.goFunc(func() { p.runSlotElection(key, x, mine) })
	}
}

// rankLocked is this node's rank among the live replicas eligible for all
// of x's partitions, by the replication offset they gossip for x (highest
// first), then id. Lock should be held.
func (p *Plane) rankLocked(x int32, slots []int, bySlot map[int][]partUpdate) int {
	var parts []partUpdate
	for _, s := range slots {
		parts = append(parts, bySlot[s]...)
	}
	var cands []int32
	for _, id := range p.liveLocked() {
		if id != x && eligible(id, parts) {
			cands = append(cands, id)
		}
	}
	slices.SortFunc(cands, func(a, b int32) int {
		return cmp.Or(cmp.Compare(p.infos[b].Offsets[x], p.infos[a].Offsets[x]), cmp.Compare(a, b))
	})
	if i := slices.Index(cands, p.self.ID); i >= 0 {
		return i
	}
	return len(cands)
}

// ballot asks voters for their votes on req, within an election timeout,
// and returns how many granted. The lock must not be held.
func (p *Plane) ballot(voters []int32, req *request) int {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.ElectionTimeout)
	defer cancel()
	return p.quorum(ctx, voters, req)
}

// settleLocked ends election key and reports whether it was won (granted
// by a majority of voters); a lost one is not tried again for two election
// timeouts. Lock should be held.
func (p *Plane) settleLocked(key string, granted, voters int) bool {
	delete(p.running, key)
	if granted < majority(voters) {
		p.elections[key] = time.Now().Add(2 * p.cfg.ElectionTimeout)
		p.electionsLost.Add(1)
		return false
	}
	p.electionsWon.Add(1)
	return true
}

// runSlotElection asks the masters for votes in a new epoch and, with a
// majority, takes the claimed slots in that epoch: the partitions' new
// leader epoch.
func (p *Plane) runSlotElection(key string, x int32, slots []int) {
	p.mu.Lock()
	p.st.epoch = max(p.st.epoch, p.tried[key]) + 1
	epoch := p.st.epoch
	p.tried[key] = epoch
	voters := p.votersLocked()
	req := &request{Kind: reqVote, Epoch: epoch, Failed: x, Slots: rangesOf(slots, p.self.ID, epoch)}
	p.mu.Unlock()

	granted := p.ballot(voters, req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.settleLocked(key, granted, len(voters)) {
		p.log.Info("election lost", "failed-node", x, "config-epoch", epoch, "votes", granted, "voters", len(voters))
		return
	}
	for _, s := range slots {
		if p.st.owner[s] != x || p.st.slotEpoch[s] >= epoch {
			p.log.Info("election won but the slots moved on", "failed-node", x, "config-epoch", epoch)
			return
		}
	}
	d := &delta{Epoch: epoch, Slots: req.Slots}
	bySlot := p.partsBySlotLocked()
	for _, c := range req.Slots {
		p.st.mergeSlots(c)
	}
	for _, s := range slots {
		for _, u := range bySlot[s] {
			u.Rec = u.Rec.clone()
			u.Rec.ISR = slices.DeleteFunc(u.Rec.ISR, func(id int32) bool { return id == x })
			u.Rec.Epoch = int32(epoch)
			u.Rec.Version++
			p.st.mergePart(u)
			d.Parts = append(d.Parts, u)
		}
	}
	delete(p.elections, key)
	p.failovers.Add(1)
	p.publishLocked(d)
	p.views.offer(p.viewLocked())
	p.log.Info("failover: took the failed master's slots", "failed-node", x, "slots", len(slots),
		"config-epoch", epoch, "votes", granted, "voters", len(voters))
}

// grantSlotVoteLocked is a master's vote (Redis's rules): once per epoch,
// for a master this node holds FAIL, for slots that master still owns in
// an older epoch, to a candidate in sync on all their partitions. Lock
// should be held.
func (p *Plane) grantSlotVoteLocked(req *request) (bool, string) {
	if !slices.Contains(p.st.masters(), p.self.ID) {
		return false, "not a master"
	}
	if req.Epoch <= p.lastVote {
		return false, fmt.Sprintf("already voted in epoch %d", p.lastVote)
	}
	if _, failed := p.failed[req.Failed]; !failed {
		return false, fmt.Sprintf("node %d is not failed here", req.Failed)
	}
	bySlot := p.partsBySlotLocked()
	for _, c := range req.Slots {
		for s := int(c.Start); s <= int(c.End); s++ {
			if p.st.owner[s] != req.Failed || p.st.slotEpoch[s] >= req.Epoch {
				return false, fmt.Sprintf("slot %d is owned by %d in epoch %d", s, p.st.owner[s], p.st.slotEpoch[s])
			}
			if !eligible(req.From, bySlot[s]) {
				return false, fmt.Sprintf("candidate %d is not in sync on slot %d", req.From, s)
			}
		}
	}
	p.lastVote = req.Epoch
	p.st.epoch = max(p.st.epoch, req.Epoch)
	return true, ""
}

// ringElectionsLocked: under the ring, a partition whose leader FAILed is
// taken by the next live in-sync replica in ring order, with a majority
// of the ring's votes. Lock should be held.
func (p *Plane) ringElectionsLocked(now time.Time) {
	for _, t := range p.st.sortedTopics() {
		if t.Deleted {
			continue
		}
		for i, r := range t.Parts {
			if _, failed := p.failed[r.Leader]; !failed {
				continue
			}
			key := PartitionKey(t.Config.Name, int32(i))
			if p.running[key] {
				continue
			}
			var cands []int32
			for _, id := range r.Replicas {
				_, up := p.alive[id]
				_, failed := p.failed[id]
				if id != r.Leader && up && !failed && slices.Contains(r.ISR, id) {
					cands = append(cands, id)
				}
			}
			rank := slices.Index(cands, p.self.ID)
			if rank < 0 {
				continue
			}
			at, ok := p.elections[key]
			if !ok {
				at = now.Add(p.cfg.ElectionDelay + jitter(p.cfg.ElectionJitter) + time.Duration(rank)*p.cfg.RankDelay)
				p.elections[key] = at
			}
			if now.Before(at) {
				continue
			}
			p.running[key] = true
			u := partUpdate{Topic: t.Config.Name, Stamp: t.Stamp, Partition: int32(i), Rec: r.clone()}
			p.goFunc(func() { p.runRingElection(key, u) })
		}
	}
}

func (p *Plane) runRingElection(key string, u partUpdate) {
	p.mu.Lock()
	epoch := max(uint64(u.Rec.Epoch), p.tried[key]) + 1
	p.tried[key] = epoch
	voters := p.votersLocked()
	failed := u.Rec.Leader
	req := &request{Kind: reqVote, Epoch: epoch, Failed: failed, Part: &u}
	p.mu.Unlock()

	granted := p.ballot(voters, req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.settleLocked(key, granted, len(voters)) {
		p.log.Info("ring election lost", "partition", key, "leader-epoch", epoch, "votes", granted, "voters", len(voters))
		return
	}
	t := p.st.topics[u.Topic]
	if t == nil || t.Stamp != u.Stamp || t.Deleted || t.Parts[u.Partition].Leader != failed {
		return
	}
	rec := t.Parts[u.Partition].clone()
	rec.Leader = p.self.ID
	rec.Epoch = int32(epoch)
	rec.ISR = slices.DeleteFunc(rec.ISR, func(id int32) bool { return id == failed })
	rec.Version++
	nu := partUpdate{Topic: u.Topic, Stamp: u.Stamp, Partition: u.Partition, Rec: rec}
	p.st.mergePart(nu)
	delete(p.elections, key)
	p.failovers.Add(1)
	p.publishLocked(&delta{Parts: []partUpdate{nu}})
	p.views.offer(p.viewLocked())
	p.log.Info("failover: leading ring partition", "partition", key, "failed-node", failed, "leader-epoch", epoch, "votes", granted)
}

// grantRingVoteLocked votes once per partition and epoch, for an in-sync
// replica replacing a leader this node holds FAIL. Lock should be held.
func (p *Plane) grantRingVoteLocked(req *request) (bool, string) {
	u := req.Part
	if u == nil {
		return false, "no partition"
	}
	t, ok := p.st.topics[u.Topic]
	if !ok || t.Deleted || t.Stamp != u.Stamp || int(u.Partition) >= len(t.Parts) {
		return false, "unknown partition"
	}
	key := PartitionKey(u.Topic, u.Partition)
	r := t.Parts[u.Partition]
	_, failed := p.failed[req.Failed]
	switch {
	case req.Epoch <= uint64(r.Epoch) || req.Epoch <= p.partVotes[key]:
		return false, fmt.Sprintf("epoch %d is not new", req.Epoch)
	case r.Leader != req.Failed || !failed:
		return false, fmt.Sprintf("leader %d is not failed here", r.Leader)
	case !slices.Contains(r.ISR, req.From):
		return false, "candidate is not in sync"
	}
	p.partVotes[key] = req.Epoch
	return true, ""
}

// refreshMeta gossips the replication offsets this node holds, summed per
// leader, when they changed.
func (p *Plane) refreshMeta() {
	if p.cfg.Offsets == nil || p.ml == nil {
		return
	}
	offs := p.cfg.Offsets()
	p.mu.Lock()
	sums := map[int32]int64{}
	for _, t := range p.st.topics {
		if t.Deleted {
			continue
		}
		for i := range t.Parts {
			if o, ok := offs[PartitionKey(t.Config.Name, int32(i))]; ok {
				leader, _ := p.leaderLocked(t, int32(i))
				sums[leader] += o
			}
		}
	}
	self := p.self
	old := p.infos[self.ID]
	changed := !maps.Equal(old.Offsets, sums)
	if changed {
		p.infos[self.ID] = nodeMeta{Broker: self, Offsets: sums}
	}
	p.mu.Unlock()
	if !changed {
		return
	}
	m := nodeMeta{Broker: self, Offsets: sums}
	if b, err := json.Marshal(m); err == nil && len(b) <= 512 {
		p.meta.Store(&b)
		_ = p.ml.UpdateNode(p.cfg.TCPTimeout)
	}
}
