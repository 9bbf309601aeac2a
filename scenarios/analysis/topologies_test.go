package analysis_test

// The scenario format reads its topologies from the registry; these
// imports register the real descriptors (and the in-process reference
// drivers) in this test binary, as cmd/brokerlab does in the real one.
import (
	_ "github.com/brokerlab/brokerlab/coordinator"
	_ "github.com/brokerlab/brokerlab/gossip"
	_ "github.com/brokerlab/brokerlab/nameserver"
	_ "github.com/brokerlab/brokerlab/scenarios/external"
	_ "github.com/brokerlab/brokerlab/scenarios/jetstream"
)
