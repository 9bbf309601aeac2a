package gossip

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strconv"
)

// token is a position on the consistent-hash ring.
type token struct {
	pos  uint64
	node int32
}

// Ring is a consistent-hash ring with virtual nodes (Cassandra's token
// ring): each node holds vnodes tokens, and a key's replicas are the first
// rf distinct nodes met walking clockwise from the key's token.
type Ring struct {
	tokens []token // sorted by pos
}

// NewRing places vnodes tokens per node. Tokens are a hash of the node id
// and the token index, so every node computes the same ring from the same
// membership without exchanging tokens (Cassandra picks random tokens at
// bootstrap and gossips them).
func NewRing(nodes []int32, vnodes int) *Ring {
	r := &Ring{tokens: make([]token, 0, len(nodes)*vnodes)}
	for _, n := range nodes {
		for i := range vnodes {
			r.tokens = append(r.tokens, token{pos: hash64("node-" + strconv.Itoa(int(n)) + "-" + strconv.Itoa(i)), node: n})
		}
	}
	slices.SortFunc(r.tokens, func(a, b token) int {
		switch {
		case a.pos < b.pos:
			return -1
		case a.pos > b.pos:
			return 1
		}
		return int(a.node - b.node)
	})
	return r
}

// Replicas returns the first rf distinct nodes clockwise from key's token,
// fewer when the ring has fewer nodes.
func (r *Ring) Replicas(key string, rf int) []int32 {
	if len(r.tokens) == 0 || rf <= 0 {
		return nil
	}
	h := hash64(key)
	i, _ := slices.BinarySearchFunc(r.tokens, h, func(t token, h uint64) int {
		switch {
		case t.pos < h:
			return -1
		case t.pos > h:
			return 1
		}
		return 0
	})
	var out []int32
	for k := 0; k < len(r.tokens) && len(out) < rf; k++ {
		n := r.tokens[(i+k)%len(r.tokens)].node
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// hash64 is FNV-1a 64 with a final avalanche, so near-identical keys
// ("t/1", "t/2") land far apart.
func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	x := binary.BigEndian.Uint64(h.Sum(nil))
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
