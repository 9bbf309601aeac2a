package swarm

import (
	"path/filepath"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestScenarioParses keeps the test scenario valid where no swarm runs.
func TestScenarioParses(t *testing.T) {
	s, err := scenario.Load(filepath.Join("testdata", "swarm-quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Runtime != scenario.RuntimeSwarm || len(s.Faults) != 4 {
		t.Errorf("runtime %q, %d faults", s.Runtime, len(s.Faults))
	}
}
