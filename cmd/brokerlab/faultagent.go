package main

import "github.com/brokerlab/brokerlab/swarm"

func init() {
	extraCommands = append(extraCommands,
		command{"faultagent", "apply a swarm run's faults to the task containers of this swarm node (the swarm runtime's fault agent)", usageExit(swarm.RunAgentCLI, swarm.ErrUsage)},
	)
}
