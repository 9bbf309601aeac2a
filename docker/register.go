package docker

import (
	"slices"

	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	RegisterRuntime(scenario.RuntimeDocker, newContainers)
	scenarios.RegisterPreparer(scenario.RuntimeDocker, PrepareImage)
}

// RegisterRuntime registers the topology drivers of this package under
// runtime (every one, or those named), each running its nodes through the
// launchers newLauncher makes: a container runtime supplies its Launcher
// and nothing else.
func RegisterRuntime(runtime string, newLauncher NewLauncher, topologies ...string) {
	for name, start := range starters(newLauncher) {
		if len(topologies) == 0 || slices.Contains(topologies, name) {
			scenarios.RegisterDriver(runtime, name, start)
		}
	}
}

// starters are the drivers by topology name.
func starters(newLauncher NewLauncher) map[string]scenarios.Starter {
	return map[string]scenarios.Starter{
		coordinator.TopologyName:          startCoordinator(newLauncher),
		nameserver.TopologyName:           nameServerStarter(newLauncher, false),
		nameserver.ControllerTopologyName: nameServerStarter(newLauncher, true),
		gossip.TopologyName:               gossipStarter(newLauncher, gossip.TopologyName),
		gossip.RingTopologyName:           gossipStarter(newLauncher, gossip.RingTopologyName),
	}
}
