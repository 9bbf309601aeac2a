package gossip

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// updateID names one update: its origin and the origin's sequence number.
type updateID struct {
	origin int32
	seq    uint64
}

// spreadItem is an update this node is still spreading.
type spreadItem struct {
	msg    []byte
	told   map[string]bool // peers told, or heard from (TellOnce)
	rounds int
}

// outgoing is one message for one peer.
type outgoing struct {
	to  *memberlist.Node
	msg []byte
}

// spreader spreads updates epidemically: every round, each update still
// being spread goes to k peers, for retransmitMult x ceil(log10(n+1))
// rounds (memberlist's retransmit limit). With tellOnce the peers are
// picked among those not told yet, and spreading stops once all are told.
type spreader struct {
	k, mult  int
	tellOnce bool

	mu    sync.Mutex // guards the fields below
	rng   *rand.Rand
	items map[updateID]*spreadItem
	seen  map[updateID]time.Time
}

func newSpreader(k, mult int, tellOnce bool, seed uint64) *spreader {
	return &spreader{
		k: k, mult: mult, tellOnce: tellOnce,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		items: map[updateID]*spreadItem{},
		seen:  map[updateID]time.Time{},
	}
}

// add starts spreading an update heard from peer from ("" for a local one)
// and reports whether it is new.
func (s *spreader) add(id updateID, msg []byte, from string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[id]; ok {
		if it := s.items[id]; it != nil && from != "" {
			it.told[from] = true
		}
		return false
	}
	s.seen[id] = now
	it := &spreadItem{msg: msg, told: map[string]bool{}}
	if from != "" {
		it.told[from] = true
	}
	s.items[id] = it
	return true
}

// limit is the number of rounds an update is spread among n members.
func (s *spreader) limit(n int) int {
	return s.mult * int(math.Ceil(math.Log10(float64(n+1))))
}

// round picks this round's targets among peers (the other live members)
// and returns the messages to send.
func (s *spreader) round(peers []*memberlist.Node, now time.Time) []outgoing {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.seen {
		if now.Sub(at) > 10*time.Minute {
			delete(s.seen, id)
		}
	}
	var out []outgoing
	limit := s.limit(len(peers) + 1)
	for id, it := range s.items {
		cands := peers
		if s.tellOnce {
			cands = make([]*memberlist.Node, 0, len(peers))
			for _, p := range peers {
				if !it.told[p.Name] {
					cands = append(cands, p)
				}
			}
		}
		for _, i := range s.pick(len(cands)) {
			out = append(out, outgoing{to: cands[i], msg: it.msg})
			it.told[cands[i].Name] = true
		}
		it.rounds++
		if it.rounds >= limit || (s.tellOnce && len(cands) <= s.k) {
			delete(s.items, id)
		}
	}
	return out
}

// pick returns min(k, n) distinct random indexes below n. Lock should be
// held.
func (s *spreader) pick(n int) []int {
	if n <= s.k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, s.k)
	for len(out) < s.k {
		i := s.rng.IntN(n)
		dup := false
		for _, j := range out {
			dup = dup || i == j
		}
		if !dup {
			out = append(out, i)
		}
	}
	return out
}

// pending returns how many updates are still being spread.
func (s *spreader) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}
