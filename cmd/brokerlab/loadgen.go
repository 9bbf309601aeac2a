package main

import "github.com/brokerlab/brokerlab/swarm"

func init() {
	extraCommands = append(extraCommands,
		command{"loadgen", "serve producers and consumers for a runner (the swarm runtime's load generator)", usageExit(swarm.RunLoadgenCLI, swarm.ErrUsage)},
	)
}
