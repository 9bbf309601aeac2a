package jetstream

import (
	"slices"

	"github.com/brokerlab/brokerlab/scenarios"
)

var _ scenarios.Placer = (*deployment)(nil)

// setMembers records the servers of each of the topic's parts partitions;
// of returns them for one partition. A partition whose members are not
// known (empty) leaves the whole placement unknown.
func (d *deployment) setMembers(parts int, of func(p int32) ([]int, error)) {
	m := make(map[int32][]int, parts)
	for p := range int32(parts) {
		servers, err := of(p)
		if err != nil || len(servers) == 0 {
			m = nil
			break
		}
		m[p] = servers
	}
	d.mu.Lock()
	d.streamServers = m
	d.mu.Unlock()
}

// Placement maps every server, named as faults resolve it ("broker 1"), to
// the partitions whose stream it holds (scenarios.Placer). Stream members
// do not move during a run (a lost server stays a member until it returns),
// so the membership found when the topic was created holds; nil when it was
// not found.
func (d *deployment) Placement() map[string][]int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streamServers == nil {
		return nil
	}
	out := make(map[string][]int32, len(d.c.nodes))
	for i := range d.c.nodes {
		out[nodeTarget(i)] = []int32{}
	}
	for p, servers := range d.streamServers {
		for _, i := range servers {
			out[nodeTarget(i)] = append(out[nodeTarget(i)], p)
		}
	}
	for _, parts := range out {
		slices.Sort(parts)
	}
	return out
}
