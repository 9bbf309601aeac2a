package main

import (
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestOverrideRepeat: --repeat and --seed replace the scenario's values
// and are validated like them.
func TestOverrideRepeat(t *testing.T) {
	base := "name: x\ntopologies: [coordinator]\nworkload: {duration: 30s}\n"
	plain, err := scenario.Parse("x.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if err := overrideRepeat(&plain, 3, ""); err != nil || plain.Repeat != 3 {
		t.Errorf("--repeat 3: repeat %d, err %v", plain.Repeat, err)
	}
	if err := overrideRepeat(&plain, -2, ""); err == nil || !strings.Contains(err.Error(), "repeat: -2 out of range") {
		t.Errorf("--repeat -2: %v", err)
	}
	if err := overrideRepeat(&plain, 0, "5"); err == nil || !strings.Contains(err.Error(), "no random fault schedule") {
		t.Errorf("--seed without random: %v", err)
	}
	random, err := scenario.Parse("x.yaml", []byte(base+"random: {seed: 1, every: 10s, faults: [kill leader]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	before := random.Random
	if err := overrideRepeat(&random, 0, "77"); err != nil || random.Random.Seed != 77 || before.Seed != 1 {
		t.Errorf("--seed 77: seed %d (parsed spec's %d), err %v", random.Random.Seed, before.Seed, err)
	}
	if err := overrideRepeat(&random, 0, "-1"); err == nil {
		t.Error("--seed -1 accepted")
	}
}
