package analysis

import (
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"strings"
)

// scope is the set of partitions a fault can affect.
type scope struct {
	all   bool
	parts map[int32]bool
}

// has reports whether the fault can affect partition p. Partition -1 holds
// sends that never reached a partition: any fault that affects something
// can cause those.
func (s scope) has(p int32) bool {
	if s.all {
		return true
	}
	if p < 0 {
		return len(s.parts) > 0
	}
	return s.parts[p]
}

func (s *scope) add(parts []int32) {
	if s.parts == nil {
		s.parts = map[int32]bool{}
	}
	for _, p := range parts {
		s.parts[p] = true
	}
}

// faultScope is what a fault can affect:
//   - a fault that was not applied (skipped, or its target did not resolve)
//     nothing;
//   - a control-plane fault (a topology's role: controller, etcd, name
//     server ...; or "heal all") every partition: leader elections, routes
//     and ISR changes of all of them go through it;
//   - a broker fault (kill, pause, isolate, their reverts) the partitions
//     the broker led or replicated (with acks=all a lost follower stalls
//     writes until it leaves the ISR);
//   - a link fault between two brokers the partitions both replicate; between
//     a broker and a control-plane node the broker's partitions (it may
//     lose its lease or registration); between two control-plane nodes all.
//
// Without a placement (a runtime that cannot tell) a broker fault affects
// every partition, as does a node the placement does not know.
func faultScope(ev FaultEvent) scope {
	node := ev.Node
	if node == "" {
		if ev.Err != "" {
			return scope{} // never applied
		}
		node = ev.Target // built without a resolution (tests, old results)
	}
	if t, err := scenario.ParseTarget(ev.Target); err == nil && (t.Kind == scenario.TargetAll || t.Kind.IsRole()) {
		return scope{all: true} // a role is a control-plane node: etcd, controller, name server ...
	}
	var sc scope
	for _, n := range strings.Split(node, ",") {
		n = strings.TrimSpace(n)
		a, b, isLink := strings.Cut(n, " - ")
		if !isLink {
			parts, ok := brokerParts(ev.Placement, n)
			if !ok {
				return scope{all: true}
			}
			sc.add(parts)
			continue
		}
		pa, okA := brokerParts(ev.Placement, strings.TrimSpace(a))
		pb, okB := brokerParts(ev.Placement, strings.TrimSpace(b))
		switch {
		case okA && okB:
			sc.add(intersect(pa, pb))
		case okA:
			sc.add(pa)
		case okB:
			sc.add(pb)
		default:
			return scope{all: true}
		}
	}
	if sc.parts == nil {
		sc.parts = map[int32]bool{}
	}
	return sc
}

// brokerParts returns the partitions a broker node led or replicated; ok
// is false for a node that is not a broker the placement knows.
func brokerParts(placement map[string][]int32, node string) ([]int32, bool) {
	if placement == nil || !strings.HasPrefix(node, string(scenario.TargetBroker)+" ") {
		return nil, false
	}
	parts, ok := placement[node]
	return parts, ok
}

func intersect(a, b []int32) []int32 {
	in := map[int32]bool{}
	for _, p := range a {
		in[p] = true
	}
	var out []int32
	for _, p := range b {
		if in[p] {
			out = append(out, p)
		}
	}
	return out
}
