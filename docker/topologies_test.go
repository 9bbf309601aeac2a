package docker_test

// Scenario files are validated against the registered topologies. The
// catalogue's quickstart lists jetstream, which has no docker driver (the
// runner reports it skipped); this import registers its descriptor in this
// test binary, as cmd/brokerlab links it in the real one.
import _ "github.com/brokerlab/brokerlab/scenarios/jetstream"
