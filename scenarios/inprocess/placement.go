package inprocess

import (
	"slices"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// Both in-process deployments tell the runner where partitions live, so
// that the analysis charges a fault only with gaps of partitions it could
// affect.
var (
	_ scenarios.Placer = (*coordinatorDeployment)(nil)
	_ scenarios.Placer = (*nameServerDeployment)(nil)
)

// Placement maps every broker to the partitions of the scenario's topic it
// leads or replicates, as the newest partition states say
// (scenarios.Placer): the runner takes it just before each fault.
func (c *cluster) Placement() map[string][]int32 {
	out := make(map[string][]int32, len(c.brokers))
	for _, n := range c.brokers {
		out[n.name] = []int32{}
	}
	for p := range int32(c.spec.Topic.Partitions) {
		st, ok := c.partitionState(c.spec.Topic.Name, p)
		if !ok {
			continue
		}
		for _, r := range append([]int32{st.Leader}, st.Replicas...) {
			name := nodes.BrokerName(r)
			if parts, known := out[name]; r >= 0 && known && !slices.Contains(parts, p) {
				out[name] = append(parts, p)
			}
		}
	}
	return out
}
