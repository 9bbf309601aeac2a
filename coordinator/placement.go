package coordinator

import (
	"fmt"
	"slices"

	"github.com/brokerlab/brokerlab/broker"
)

// load counts, per broker, the partitions it leads and the replicas it holds,
// so that new topics even out the cluster rather than just themselves.
type load struct {
	leaders  map[int32]int
	replicas map[int32]int
}

func newLoad() load { return load{leaders: map[int32]int{}, replicas: map[int32]int{}} }

// loadOf counts the preferred leaders (first replica) and replicas of every
// partition state in s.
func loadOf(s *state) load {
	l := newLoad()
	s.eachPartition(func(_ string, ps broker.PartitionState) {
		if len(ps.Replicas) > 0 {
			l.leaders[ps.Replicas[0]]++
		}
		for _, r := range ps.Replicas {
			l.replicas[r]++
		}
	})
	return l
}

// place assigns rf replicas to each partition in parts over the live brokers.
// The first replica is the partition's preferred leader. Each leader is the
// broker leading the fewest partitions so far; each follower is taken from a
// rack the partition does not use yet where possible, then from the broker
// holding the fewest replicas, then by ring distance from the leader (which
// gives Kafka's familiar [0 1 2] [1 2 0] [2 0 1] layout on an empty cluster).
// It updates l with what it placed.
func place(live []broker.BrokerInfo, l load, parts []int32, rf int) (map[int32][]int32, error) {
	if rf <= 0 {
		return nil, fmt.Errorf("coordinator: replication factor %d: %w", rf, broker.ErrInvalidTopic)
	}
	if len(live) < rf {
		return nil, fmt.Errorf("coordinator: %d live brokers for replication factor %d: %w", len(live), rf, broker.ErrNotEnoughBrokers)
	}
	bs := slices.Clone(live)
	slices.SortFunc(bs, func(a, b broker.BrokerInfo) int { return int(a.ID) - int(b.ID) })
	n := len(bs)
	rackLeaders := map[string]int{}
	for _, b := range bs {
		rackLeaders[b.Rack] += l.leaders[b.ID]
	}
	out := make(map[int32][]int32, len(parts))
	next := 0 // ring position after the last leader placed: breaks ties round-robin
	for _, p := range parts {
		li := best(n, func(i int) []int {
			b := bs[i]
			return []int{l.leaders[b.ID], rackLeaders[b.Rack], l.replicas[b.ID], (i - next + n) % n}
		}, nil)
		next = (li + 1) % n
		replicas := []int32{bs[li].ID}
		used := map[int]bool{li: true}
		racks := map[string]bool{bs[li].Rack: true}
		for len(replicas) < rf {
			fi := best(n, func(i int) []int {
				b := bs[i]
				return []int{btoi(racks[b.Rack]), l.replicas[b.ID], (i - li + n) % n}
			}, used)
			used[fi] = true
			racks[bs[fi].Rack] = true
			replicas = append(replicas, bs[fi].ID)
		}
		l.leaders[replicas[0]]++
		rackLeaders[bs[li].Rack]++
		for _, r := range replicas {
			l.replicas[r]++
		}
		out[p] = replicas
	}
	return out, nil
}

// best returns the index in [0,n) outside skip with the lexically smallest
// score.
func best(n int, score func(int) []int, skip map[int]bool) int {
	bi := -1
	var bs []int
	for i := range n {
		if skip[i] {
			continue
		}
		s := score(i)
		if bi < 0 || slices.Compare(s, bs) < 0 {
			bi, bs = i, s
		}
	}
	return bi
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// newPartition is the first state of a placed partition: the preferred
// leader leads at epoch 0 and every replica is in sync (all logs are empty).
func newPartition(cfg broker.TopicConfig, p int32, replicas []int32) broker.PartitionState {
	return broker.PartitionState{
		Topic:       cfg.Name,
		Partition:   p,
		Replicas:    replicas,
		Leader:      replicas[0],
		LeaderEpoch: 0,
		ISR:         slices.Clone(replicas),
		MinInsync:   cfg.MinInsync,
		Fanout:      cfg.Fanout,
	}
}

// decide is the controller's rule for one partition given which brokers are
// alive. It returns the state to write and whether it differs:
//   - a live leader keeps leading; dead members leave the ISR (epoch kept);
//   - a dead or missing leader is replaced by the first live ISR member in
//     replica order (epoch+1, ISR = its live members);
//   - with no live ISR member the partition goes offline (leader -1, epoch+1)
//     keeping its ISR, so that whichever in-sync replica returns first is
//     elected cleanly; with unclean election on, any live replica is elected
//     instead and becomes the whole ISR.
func decide(ps broker.PartitionState, live func(int32) bool, unclean bool) (broker.PartitionState, bool) {
	var liveISR []int32
	for _, r := range ps.Replicas {
		if ps.InISR(r) && live(r) {
			liveISR = append(liveISR, r)
		}
	}
	next := clonePartition(ps)
	if ps.Leader >= 0 && live(ps.Leader) {
		if !slices.Contains(liveISR, ps.Leader) {
			liveISR = append([]int32{ps.Leader}, liveISR...)
		}
		if sameSet(liveISR, ps.ISR) {
			return ps, false
		}
		next.ISR = liveISR
		return next, true
	}
	switch {
	case len(liveISR) > 0:
		next.Leader, next.ISR = liveISR[0], liveISR
	case unclean && slices.ContainsFunc(ps.Replicas, live):
		i := slices.IndexFunc(ps.Replicas, live)
		next.Leader, next.ISR = ps.Replicas[i], []int32{ps.Replicas[i]}
	case ps.Leader < 0:
		return ps, false // already offline, nobody to elect
	default:
		next.Leader = -1
	}
	next.LeaderEpoch++
	return next, true
}

// sameSet reports whether a and b hold the same ids (each at most once).
func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
