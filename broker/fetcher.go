package broker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchVersion is the Fetch version followers send (every field they need,
// no topic ids).
const fetchVersion = 11

// assignment is one partition a fetcher replicates.
type assignment struct {
	p      *partition
	leader BrokerInfo // where truncation points and progress go
	epoch  int32
}

// fetcher replicates every partition whose source is one broker, in one
// Fetch per round (Kafka's ReplicaFetcherThread). In star fan-out the source
// is the leader; in chain fan-out it is the previous replica in the chain,
// and progress is reported to the leader separately.
type fetcher struct {
	b      *Broker
	source BrokerInfo
	cancel context.CancelFunc
	done   chan struct{}
	signal chan struct{}

	mu    sync.Mutex
	parts map[topicPartition]assignment
}

func (b *Broker) newFetcher(source BrokerInfo) *fetcher {
	ctx, cancel := context.WithCancel(b.ctx)
	f := &fetcher{b: b, source: source, cancel: cancel, done: make(chan struct{}), signal: make(chan struct{}, 1), parts: map[topicPartition]assignment{}}
	b.goFunc(func() {
		defer close(f.done)
		f.run(ctx)
	})
	return f
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

func (f *fetcher) set(parts map[topicPartition]assignment) {
	f.mu.Lock()
	f.parts = parts
	f.mu.Unlock()
	select {
	case f.signal <- struct{}{}:
	default:
	}
}

func (f *fetcher) snapshot() map[topicPartition]assignment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts
}

// planFetchers assigns every follower replica to the fetcher of its source.
func (b *Broker) planFetchers(v ClusterView) {
	plan := map[int32]map[topicPartition]assignment{}
	sources := map[int32]BrokerInfo{}
	b.mu.Lock()
	leaving := b.leaving
	b.mu.Unlock()
	for _, p := range b.localPartitions() {
		if leaving {
			break // a broker handing off follows nobody (Handoff)
		}
		p.mu.Lock()
		role, st, epoch := p.role, p.state, p.epoch
		p.mu.Unlock()
		if role != roleFollower {
			continue
		}
		leader, ok := v.Broker(st.Leader)
		if !ok {
			continue // leader not live: nothing to fetch from until the view changes
		}
		src := leader
		if st.Fanout == FanoutChain {
			src = chainSource(v, st, b.cfg.NodeID)
		}
		if plan[src.ID] == nil {
			plan[src.ID] = map[topicPartition]assignment{}
		}
		plan[src.ID][topicPartition{p.topic, p.id}] = assignment{p: p, leader: leader, epoch: epoch}
		sources[src.ID] = src
	}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	if b.leaving { // set since the plan was made (Handoff)
		plan = nil
	}
	var stale []*fetcher
	for id, f := range b.fetchers {
		if _, ok := plan[id]; !ok || f.source.Addr != sources[id].Addr {
			stale = append(stale, f)
			delete(b.fetchers, id)
		}
	}
	for id, parts := range plan {
		f, ok := b.fetchers[id]
		if !ok {
			f = b.newFetcher(sources[id])
			b.fetchers[id] = f
		}
		f.set(parts)
	}
	b.mu.Unlock()
	for _, f := range stale {
		f.stop()
	}
}

// chainSource is the live replica just before self in the chain: the leader
// followed by the other replicas in assignment order.
func chainSource(v ClusterView, st PartitionState, self int32) BrokerInfo {
	leader, _ := v.Broker(st.Leader)
	src := leader
	for _, r := range st.Replicas {
		if r == st.Leader {
			continue
		}
		if r == self {
			return src
		}
		if bi, ok := v.Broker(r); ok {
			src = bi
		}
	}
	return leader
}

func (f *fetcher) run(ctx context.Context) {
	b := f.b
	id := "brokerlab-replica-" + strconv.Itoa(int(b.cfg.NodeID))
	dial := b.cfg.Dial
	if dial == nil {
		var d netDialer
		dial = d.DialContext
	}
	conns := map[string]*peerConn{}
	conn := func(addr string) *peerConn {
		c, ok := conns[addr]
		if !ok {
			c = &peerConn{dial: dial, addr: addr, clientID: id, maxFrame: b.cfg.MaxFrameBytes}
			conns[addr] = c
		}
		return c
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	logger := b.logger.With("source", f.source.ID)
	for ctx.Err() == nil {
		parts := f.snapshot()
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-f.signal:
				continue
			}
		}
		ok := f.truncate(ctx, parts, conn, logger)
		if ok {
			ok = f.fetchRound(ctx, parts, conn, logger)
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.ReplicaBackoff):
			}
		}
	}
}

// truncate handles partitions that just became followers: ask the leader
// where our last epoch ends and cut the log there (KIP-101).
func (f *fetcher) truncate(ctx context.Context, parts map[topicPartition]assignment, conn func(string) *peerConn, logger interface {
	Warn(string, ...any)
}) bool {
	ok := true
	for tp, a := range parts {
		a.p.mu.Lock()
		need, latest := a.p.needsTruncation, a.p.log.LatestEpoch()
		leo := a.p.log.EndOffset()
		a.p.mu.Unlock()
		if !need {
			continue
		}
		if latest < 0 || leo == 0 {
			_ = a.p.truncateTo(leo, a.epoch) // empty log: nothing can diverge
			continue
		}
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = f.b.cfg.NodeID
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tp.partition, a.epoch, latest
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		rctx, cancel := context.WithTimeout(ctx, f.b.cfg.ReplicaFetchWait+5*time.Second)
		resp, err := conn(a.leader.Addr).request(rctx, req, 3)
		cancel()
		if err != nil {
			logger.Warn("offset for leader epoch", "topic", tp.topic, "partition", tp.partition, "error", err)
			ok = false
			continue
		}
		r := resp.(*kmsg.OffsetForLeaderEpochResponse)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			ok = false
			continue
		}
		op := r.Topics[0].Partitions[0]
		if op.ErrorCode != 0 {
			ok = false
			continue
		}
		target := leo
		if op.EndOffset >= 0 {
			_, mine := a.p.log.EpochEndOffset(op.LeaderEpoch)
			if mine < 0 {
				mine = leo
			}
			target = min(op.EndOffset, mine, leo)
		} else {
			a.p.mu.Lock()
			target = min(a.p.hw, leo)
			a.p.mu.Unlock()
		}
		if err := a.p.truncateTo(target, a.epoch); err != nil && !errors.Is(err, ErrNotLeader) {
			logger.Warn("truncate", "topic", tp.topic, "partition", tp.partition, "error", err)
			ok = false
		}
	}
	return ok
}

// fetchRound sends one Fetch to the source and appends what comes back.
func (f *fetcher) fetchRound(ctx context.Context, parts map[topicPartition]assignment, conn func(string) *peerConn, logger interface {
	Warn(string, ...any)
	Debug(string, ...any)
}) bool {
	b := f.b
	req := f.fetchRequest(parts, b.cfg.ReplicaFetchMaxBytes, b.cfg.ReplicaFetchWait)
	if req == nil {
		return false // every partition still needs truncation
	}
	rctx, cancel := context.WithTimeout(ctx, b.cfg.ReplicaFetchWait+5*time.Second)
	resp, err := conn(f.source.Addr).request(rctx, req, fetchVersion)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			logger.Debug("replica fetch failed", "error", err)
		}
		return false
	}
	ok := f.applyResponse(resp.(*kmsg.FetchResponse), parts, logger)
	// Chain: tell each leader how far we got, and learn its high watermark.
	byLeader := map[string]map[topicPartition]assignment{}
	for tp, a := range parts {
		if a.leader.ID != f.source.ID {
			if byLeader[a.leader.Addr] == nil {
				byLeader[a.leader.Addr] = map[topicPartition]assignment{}
			}
			byLeader[a.leader.Addr][tp] = a
		}
	}
	for addr, lp := range byLeader {
		preq := f.fetchRequest(lp, 0, 0)
		if preq == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		presp, err := conn(addr).request(rctx, preq, fetchVersion)
		cancel()
		if err != nil {
			ok = false
			continue
		}
		f.applyResponse(presp.(*kmsg.FetchResponse), lp, logger)
	}
	return ok
}

func (f *fetcher) fetchRequest(parts map[topicPartition]assignment, partMax int32, wait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.b.cfg.NodeID
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes = 1
	if partMax == 0 {
		req.MinBytes = 0
	}
	req.MaxBytes = 64 << 20
	req.SessionEpoch = -1
	topics := map[string]int{}
	n := 0
	for tp, a := range parts {
		a.p.mu.Lock()
		skip := a.p.needsTruncation || a.p.epoch != a.epoch
		leo := a.p.log.EndOffset()
		a.p.mu.Unlock()
		if skip {
			continue
		}
		i, ok := topics[tp.topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = tp.topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			topics[tp.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset, rp.LogStartOffset, rp.PartitionMaxBytes = tp.partition, a.epoch, leo, -1, partMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		n++
	}
	if n == 0 {
		return nil
	}
	return req
}

func (f *fetcher) applyResponse(resp *kmsg.FetchResponse, parts map[topicPartition]assignment, logger interface {
	Warn(string, ...any)
	Debug(string, ...any)
}) bool {
	ok := true
	if resp.ErrorCode != 0 {
		return false
	}
	for _, t := range resp.Topics {
		for _, fp := range t.Partitions {
			tp := topicPartition{t.Topic, fp.Partition}
			a, found := parts[tp]
			if !found {
				continue
			}
			if fp.ErrorCode != 0 {
				ok = false
				if fp.ErrorCode == kerr.OffsetOutOfRange.Code {
					f.outOfRange(a, fp.LogStartOffset, logger)
				}
				logger.Debug("replica fetch partition error", "topic", tp.topic, "partition", tp.partition, "error", kerr.ErrorForCode(fp.ErrorCode))
				continue
			}
			err := a.p.followerAppend(fp.RecordBatches, fp.HighWatermark, a.epoch)
			switch {
			case err == nil:
			case errors.Is(err, storage.ErrNotContiguous):
				a.p.mu.Lock()
				a.p.needsTruncation = true
				a.p.mu.Unlock()
				ok = false
			case errors.Is(err, ErrNotLeader):
			default:
				logger.Warn("follower append", "topic", tp.topic, "partition", tp.partition, "error", err)
				ok = false
			}
		}
	}
	return ok
}

// outOfRange handles a fetch offset the source does not have: below its log
// start (retention removed it) the replica starts over at the source's start
// offset, as Kafka's truncateFullyAndStartAt; above its end the replica has a
// tail to truncate.
func (f *fetcher) outOfRange(a assignment, sourceStart int64, logger interface{ Warn(string, ...any) }) {
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	leo := a.p.log.EndOffset()
	if r, ok := a.p.log.(storage.Resetter); ok && sourceStart > leo {
		if err := r.Reset(sourceStart); err != nil {
			logger.Warn("reset replica log", "topic", a.p.topic, "partition", a.p.id, "error", err)
			return
		}
		a.p.hw = sourceStart
		logger.Warn("replica behind the source's log start; restarted there", "topic", a.p.topic, "partition", a.p.id, "from", leo, "to", sourceStart)
		return
	}
	a.p.needsTruncation = true
}
