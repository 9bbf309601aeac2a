package broker

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
)

// role is what this broker's replica of a partition currently does.
type role int8

const (
	roleNone     role = iota // no leader known, or not yet applied
	roleLeader               // accepts produce, tracks followers
	roleFollower             // replicates from a source broker
)

func (r role) String() string {
	return [...]string{"none", "leader", "follower"}[r]
}

// followerProgress is what a leader knows about one follower (Kafka's
// Replica object on the leader).
type followerProgress struct {
	leo                int64     // last fetch offset; -1 until the first fetch
	lastFetch          time.Time // time of the last fetch
	lastFetchLeaderLEO int64     // leader's LEO at the last fetch
	lastCaughtUp       time.Time // last time the follower had all of the leader's log
}

// ackWaiter is an acks=all produce waiting for the high watermark.
type ackWaiter struct {
	last int64      // last offset of the appended batches
	done chan error // buffered 1
}

// partition is this broker's replica of one topic partition. Every field below
// mu is guarded by it; methods named ...Locked expect it held.
type partition struct {
	topic  string
	id     int32
	self   int32
	log    storage.Log
	logger *slog.Logger

	mu              sync.Mutex
	state           PartitionState
	role            role
	epoch           int32 // leader epoch this replica acts under
	hw              int64
	followers       map[int32]*followerProgress // leader only
	pendingISR      []int32                     // ISR proposed with AlterISR, nil when none in flight
	pendingBase     int64                       // state Version the proposal was made against
	waiters         []*ackWaiter
	watchers        []chan struct{}
	needsTruncation bool // follower: ask the leader for the epoch end offset first
	closed          bool
}

func newPartition(topic string, id, self int32, log storage.Log, logger *slog.Logger) *partition {
	return &partition{
		topic:  topic,
		id:     id,
		self:   self,
		log:    log,
		logger: logger.With("topic", topic, "partition", id),
		hw:     0,
		epoch:  -1,
	}
}

// apply adopts a new control-plane state. It returns true when the replica's
// role or leader epoch changed (the caller then re-plans fetching).
func (p *partition) apply(st PartitionState, now time.Time) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	prevRole, prevEpoch, prevLeader := p.role, p.epoch, p.state.Leader
	if st.Leader == prevLeader && st.LeaderEpoch == p.state.LeaderEpoch && st.Version < p.state.Version {
		return false // an older view than a state AlterISR already returned
	}
	p.state = st
	if p.pendingISR != nil && st.Version != p.pendingBase {
		// A newer state settles the proposal one way or the other.
		p.pendingISR = nil
	}
	switch {
	case st.Leader == p.self:
		if prevRole != roleLeader || prevEpoch != st.LeaderEpoch {
			p.becomeLeaderLocked(now)
		} else {
			p.syncFollowersLocked(now)
		}
	case st.Leader >= 0:
		if prevRole != roleFollower || prevEpoch != st.LeaderEpoch || prevLeader != st.Leader {
			p.becomeFollowerLocked()
		}
	default:
		if prevRole == roleLeader {
			p.failWaitersLocked(ErrNotLeader)
		}
		p.role = roleNone
		p.epoch = st.LeaderEpoch
	}
	if p.role == roleLeader {
		p.advanceHWLocked()
	}
	p.wakeLocked()
	return p.role != prevRole || p.epoch != prevEpoch || st.Leader != prevLeader
}

func (p *partition) becomeLeaderLocked(now time.Time) {
	p.role = roleLeader
	p.epoch = p.state.LeaderEpoch
	p.needsTruncation = false
	p.followers = make(map[int32]*followerProgress)
	for _, r := range p.state.Replicas {
		if r != p.self {
			p.followers[r] = &followerProgress{leo: -1, lastCaughtUp: now, lastFetch: now}
		}
	}
	if p.hw > p.log.EndOffset() {
		p.hw = p.log.EndOffset()
	}
	p.logger.Info("became leader", "leader-epoch", p.epoch, "log-end-offset", p.log.EndOffset(), "high-watermark", p.hw)
}

// syncFollowersLocked follows a change of replicas within one leader
// epoch (Kafka's updateAssignmentAndIsr): a new replica is tracked from
// now, so its fetches count towards the ISR and the high watermark, and a
// replica no longer assigned is forgotten. A control plane whose replicas
// are its registered members (nameserver-controller's broker group) adds
// members without a new epoch.
func (p *partition) syncFollowersLocked(now time.Time) {
	for _, r := range p.state.Replicas {
		if _, ok := p.followers[r]; !ok && r != p.self {
			p.followers[r] = &followerProgress{leo: -1, lastCaughtUp: now, lastFetch: now}
		}
	}
	for id := range p.followers {
		if !slices.Contains(p.state.Replicas, id) {
			delete(p.followers, id)
		}
	}
}

func (p *partition) becomeFollowerLocked() {
	if p.role == roleLeader {
		p.failWaitersLocked(ErrNotLeader)
	}
	p.role = roleFollower
	p.epoch = p.state.LeaderEpoch
	p.followers = nil
	p.pendingISR = nil
	p.needsTruncation = true
	p.logger.Info("became follower", "leader", p.state.Leader, "leader-epoch", p.epoch)
}

// effectiveISRLocked is the ISR used for the high watermark: the stored ISR
// plus members a pending expansion adds (Kafka's maximal ISR, KIP-497).
func (p *partition) effectiveISRLocked() []int32 {
	isr := p.state.ISR
	for _, id := range p.pendingISR {
		if !slices.Contains(isr, id) {
			isr = append(slices.Clip(isr), id)
		}
	}
	return isr
}

// advanceHWLocked moves the high watermark to the minimum log end offset over
// the ISR and completes the acks=all waiters it passes. It never moves back.
func (p *partition) advanceHWLocked() {
	if p.role != roleLeader {
		return
	}
	hw := p.log.EndOffset()
	for _, id := range p.effectiveISRLocked() {
		if id == p.self {
			continue
		}
		f, ok := p.followers[id]
		if !ok || f.leo < 0 {
			return // an ISR member we have not heard from yet holds the HW
		}
		hw = min(hw, f.leo)
	}
	if hw <= p.hw {
		return
	}
	p.hw = hw
	p.completeWaitersLocked()
}

func (p *partition) completeWaitersLocked() {
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.last < p.hw {
			var err error
			if len(p.state.ISR) < int(max(p.state.MinInsync, 1)) {
				err = ErrNotEnoughAfter
			}
			w.done <- err
			continue
		}
		kept = append(kept, w)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}

func (p *partition) failWaitersLocked(err error) {
	for _, w := range p.waiters {
		w.done <- err
	}
	p.waiters = nil
}

// removeWaiter forgets a waiter whose request timed out.
func (p *partition) removeWaiter(w *ackWaiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiters = slices.DeleteFunc(p.waiters, func(x *ackWaiter) bool { return x == w })
}

// watch registers ch to be signalled (non-blocking) at the next change of
// the log or high watermark; fetch long-polls use it.
func (p *partition) watch(ch chan struct{}) {
	p.mu.Lock()
	p.watchers = append(p.watchers, ch)
	p.mu.Unlock()
}

func (p *partition) unwatch(ch chan struct{}) {
	p.mu.Lock()
	p.watchers = slices.DeleteFunc(p.watchers, func(x chan struct{}) bool { return x == ch })
	p.mu.Unlock()
}

func (p *partition) wakeLocked() {
	for _, ch := range p.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.watchers = p.watchers[:0]
}

// appendLeader appends produced batches. For acks=all it returns a waiter
// that completes when the high watermark passes them (nil when it already
// has, or when the partition acknowledges asynchronously).
func (p *partition) appendLeader(batches []byte, acks int16) (int64, *ackWaiter, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, nil, ErrShuttingDown
	}
	if p.role != roleLeader {
		return 0, nil, ErrNotLeader
	}
	waitAll := acks == -1 && !p.state.AsyncAck
	if waitAll && len(p.state.ISR) < int(max(p.state.MinInsync, 1)) {
		return 0, nil, fmt.Errorf("%w: isr %v, min %d", ErrNotEnoughReplicas, p.state.ISR, p.state.MinInsync)
	}
	base, err := p.log.AppendLeader(batches, p.epoch)
	if err != nil {
		return 0, nil, err
	}
	last := p.log.EndOffset() - 1
	p.advanceHWLocked()
	p.wakeLocked()
	if !waitAll || last < p.hw {
		return base, nil, nil
	}
	w := &ackWaiter{last: last, done: make(chan error, 1)}
	p.waiters = append(p.waiters, w)
	return base, w, nil
}

// fetchBounds says how far a fetcher may read. replica >= 0 is a follower
// broker (reads to the log end); consumers read to the high watermark on the
// leader, or on a follower when the partition allows follower reads.
func (p *partition) fetchBounds(replica int32, currentEpoch int32) (maxOffset, hw int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, 0, ErrShuttingDown
	}
	if currentEpoch >= 0 && currentEpoch != p.epoch {
		if currentEpoch < p.epoch {
			return 0, 0, ErrFenced
		}
		return 0, 0, ErrUnknownLeaderEpoch
	}
	leo := p.log.EndOffset()
	switch {
	case replica >= 0:
		if p.role == roleLeader || (p.role == roleFollower && p.state.Fanout == FanoutChain) {
			return leo, p.hw, nil
		}
		return 0, 0, ErrNotLeader
	case p.role == roleLeader:
		return p.hw, p.hw, nil
	case p.state.FollowerReads && p.state.Leader < 0:
		// A RocketMQ slave whose master is gone serves everything it has.
		return leo, leo, nil
	case p.state.FollowerReads && p.role == roleFollower:
		return p.hw, p.hw, nil
	}
	if p.state.Leader < 0 {
		return 0, 0, ErrLeaderNotAvailable
	}
	return 0, 0, ErrNotLeader
}

// followerFetched records a follower's fetch at offset (its log end offset)
// and may expand the ISR or advance the high watermark. It returns an ISR to
// propose, or nil.
func (p *partition) followerFetched(id int32, offset int64, now time.Time) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.role != roleLeader {
		return nil
	}
	f, ok := p.followers[id]
	if !ok {
		return nil // not a replica of this partition
	}
	leo := p.log.EndOffset()
	if offset > leo {
		offset = leo
	}
	// Kafka's rule: caught up now if the fetch reaches the current end, or
	// caught up as of the previous fetch if it reaches the end seen then.
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.lastFetchLeaderLEO && !f.lastFetch.IsZero():
		if f.lastFetch.After(f.lastCaughtUp) {
			f.lastCaughtUp = f.lastFetch
		}
	}
	f.leo = offset
	f.lastFetch = now
	f.lastFetchLeaderLEO = leo
	p.advanceHWLocked()
	p.wakeLocked()
	if p.pendingISR != nil || p.state.InISR(id) || offset < p.hw {
		return nil
	}
	// Caught up to the high watermark: propose adding it back.
	isr := append(slices.Clone(p.state.ISR), id)
	slices.Sort(isr)
	p.pendingISR, p.pendingBase = isr, p.state.Version
	p.advanceHWLocked()
	return isr
}

// laggingISR returns a shrunk ISR when some member has not caught up for
// longer than lagMax, or nil.
func (p *partition) laggingISR(now time.Time, lagMax time.Duration) []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.role != roleLeader || p.pendingISR != nil {
		return nil
	}
	var keep []int32
	shrink := false
	for _, id := range p.state.ISR {
		if f, ok := p.followers[id]; ok && id != p.self && now.Sub(f.lastCaughtUp) > lagMax {
			shrink = true
			p.logger.Warn("follower out of sync", "follower", id, "lag", now.Sub(f.lastCaughtUp).Round(time.Millisecond), "follower-leo", f.leo)
			continue
		}
		keep = append(keep, id)
	}
	if !shrink {
		return nil
	}
	if !slices.Contains(keep, p.self) {
		keep = append(keep, p.self)
		slices.Sort(keep)
	}
	p.pendingISR, p.pendingBase = keep, p.state.Version
	return keep
}

// proposal returns the state to send with AlterISR for isr.
func (p *partition) proposal(isr []int32) PartitionState {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state
	st.ISR = slices.Clone(isr)
	st.LeaderEpoch = p.epoch
	return st
}

// isrSettled clears a pending proposal after AlterISR failed; a success is
// settled by apply with the returned state.
func (p *partition) isrSettled() {
	p.mu.Lock()
	p.pendingISR = nil
	p.mu.Unlock()
}

// followerAppend appends batches fetched from the source and takes the
// leader's high watermark.
func (p *partition) followerAppend(records []byte, leaderHW int64, epoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.role != roleFollower || p.epoch != epoch {
		return ErrNotLeader // stale response; the fetcher re-plans
	}
	if len(records) > 0 {
		if err := p.log.AppendFollower(records); err != nil {
			return err
		}
	}
	if hw := min(leaderHW, p.log.EndOffset()); hw > p.hw {
		p.hw = hw
	}
	p.wakeLocked()
	return nil
}

// truncateTo removes a divergent tail found by OffsetForLeaderEpoch.
func (p *partition) truncateTo(offset int64, epoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.role != roleFollower || p.epoch != epoch {
		return ErrNotLeader
	}
	if leo := p.log.EndOffset(); offset < leo {
		if err := p.log.Truncate(offset); err != nil {
			return err
		}
		p.logger.Warn("truncated divergent log tail", "from", leo, "to", p.log.EndOffset(), "leader-epoch", epoch)
	}
	p.hw = min(p.hw, p.log.EndOffset())
	p.needsTruncation = false
	return nil
}

// status is a snapshot for tests, stats and debugging.
type ReplicaStatus struct {
	Topic       string
	Partition   int32
	Role        string
	LeaderEpoch int32
	LogEnd      int64
	LogStart    int64
	HighWater   int64
	ISR         []int32
}

func (p *partition) status() ReplicaStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ReplicaStatus{
		Topic: p.topic, Partition: p.id, Role: p.role.String(), LeaderEpoch: p.epoch,
		LogEnd: p.log.EndOffset(), LogStart: p.log.StartOffset(), HighWater: p.hw,
		ISR: slices.Clone(p.state.ISR),
	}
}

// metricsStatus is status plus the size of the replica set.
func (p *partition) metricsStatus() (ReplicaStatus, int) {
	p.mu.Lock()
	n := len(p.state.Replicas)
	p.mu.Unlock()
	return p.status(), n
}

// isrLen is the size of the ISR in the current state.
func (p *partition) isrLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.state.ISR)
}

// stopLocked stops serving: it marks the replica closed, fails its waiters
// and wakes its long polls. It reports false when it was closed already.
// Lock should be held.
func (p *partition) stopLocked() bool {
	if p.closed {
		return false
	}
	p.closed = true
	p.failWaitersLocked(ErrShuttingDown)
	p.wakeLocked()
	return true
}

// losePower stops serving as close does, then closes the log as a power
// failure would (storage.Log.PowerLoss). flush is ignored: nothing is.
func (p *partition) losePower(bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopLocked() {
		return nil
	}
	return p.log.PowerLoss()
}

// close fails waiters and stops serving; kill skips the flush.
// detach stops the replica as close does but leaves its log open, synced,
// and returns it, for a new partition to take over later.
func (p *partition) detach() storage.Log {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopLocked() {
		if err := p.log.Sync(); err != nil {
			p.logger.Warn("sync on detach failed", "error", err)
		}
	}
	return p.log
}

func (p *partition) close(flush bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopLocked() {
		return nil
	}
	if flush {
		if err := p.log.Sync(); err != nil {
			p.logger.Warn("sync on close failed", "error", err)
		}
	}
	return p.log.Close()
}
