package swarm

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func placementSpec(t *testing.T, yaml string) scenario.Spec {
	t.Helper()
	s, err := scenario.Parse("place.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPlacementRoundRobin: a role the scenario places goes round robin
// over its selectors and over the machines a label matches; a role it
// leaves out is spread over every machine that takes it.
func TestPlacementRoundRobin(t *testing.T) {
	hosts := []swarmHost{
		{id: "id-a", hostname: "a", labels: map[string]string{"zone": "east"}},
		{id: "id-b", hostname: "b", labels: map[string]string{"zone": "west"}},
		{id: "id-c", hostname: "c", labels: map[string]string{"zone": "east"}},
	}
	spec := placementSpec(t, "topologies: [nameserver]\ncluster:\n  brokers: 3\n  placement:\n    brokers: [zone=east]\n    nameservers: [id-b, a]\n")
	if err := checkPlacement(spec, hosts); err != nil {
		t.Fatal(err)
	}
	s := &services{hosts: hosts, spec: spec, byRole: map[string]int{}, bySelector: map[string]int{}}
	place := func(role string, n int) string {
		var got []string
		for range n {
			h, err := s.placeLocked(role)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, h.hostname)
		}
		return strings.Join(got, ",")
	}
	for _, tc := range []struct {
		role string
		n    int
		want string
	}{
		{"broker", 4, "a,c,a,c"},
		{"nameserver", 3, "b,a,b"},
		{"client", 4, "a,b,c,a"},
	} {
		if got := place(tc.role, tc.n); got != tc.want {
			t.Errorf("%s: placed on %s, want %s", tc.role, got, tc.want)
		}
	}
}

// TestPlacementUnknownMachine: a selector no machine answers to fails the
// check with the scenario's file, line and field.
func TestPlacementUnknownMachine(t *testing.T) {
	hosts := []swarmHost{{id: "id-a", hostname: "a"}}
	spec := placementSpec(t, "cluster:\n  placement:\n    brokers:\n      - a\n      - zone=north\n")
	err := checkPlacement(spec, hosts)
	if err == nil || !strings.Contains(err.Error(), `place.yaml:5: cluster.placement.brokers[1]: "zone=north" matches no ready, active swarm node`) {
		t.Fatalf("%v", err)
	}
}

// TestPlacementOnSwarm: on the engine's swarm (formed here when it is in
// none), a deployment whose placement names a machine the swarm lacks
// fails before it creates anything, with the scenario's file and line,
// and leaves the swarm it formed. (The quickstart test places its brokers
// and load generators by the machine's hostname.)
func TestPlacementOnSwarm(t *testing.T) {
	client, eng, formed := needSwarm(t)
	spec := placementSpec(t, "runtime: swarm\ncluster:\n  placement:\n    brokers: [no-such-machine]\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := newServices(ctx, scenarios.Env{Spec: spec, Runtime: scenario.RuntimeSwarm}, slog.New(slog.DiscardHandler))
	var se *scenario.SpecError
	if !errors.As(err, &se) || se.Line != 4 || se.Field != "cluster.placement.brokers[0]" {
		t.Fatalf("%v, want an error at place.yaml:4", err)
	}
	t.Log(err)
	assertNothingLeft(t, client, eng, labelOwner+"="+owner(), formed)
}
