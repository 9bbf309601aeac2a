package swarm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Placement: a role's nodes go round robin over the swarm nodes that take
// the role (labelRoles), or, where the scenario's cluster.placement names
// the role, round robin over its selectors (member i on selector i mod
// len) and over the swarm nodes each selector matches. A selector is a
// swarm node's hostname, its id, or label=value of its labels.

// matches reports whether the swarm node answers to sel.
func (h swarmHost) matches(sel string) bool {
	if k, v, ok := strings.Cut(sel, "="); ok {
		got, has := h.labels[k]
		return has && got == v
	}
	return sel == h.hostname || sel == h.id
}

// matching returns the hosts sel matches, in the hosts' order.
func matching(hosts []swarmHost, sel string) []swarmHost {
	var out []swarmHost
	for _, h := range hosts {
		if h.matches(sel) {
			out = append(out, h)
		}
	}
	return out
}

// checkPlacement fails, naming the scenario's file, line and field, for a
// selector that matches no ready, active swarm node: a run does not start
// with nodes it cannot place.
func checkPlacement(spec scenario.Spec, hosts []swarmHost) error {
	var errs []error
	for _, role := range slices.Sorted(maps.Keys(spec.Cluster.Placement)) {
		for i, sel := range spec.Cluster.Placement[role] {
			if len(matching(hosts, sel)) > 0 {
				continue
			}
			path := fmt.Sprintf("cluster.placement.%s[%d]", role, i)
			var names []string
			for _, h := range hosts {
				names = append(names, h.hostname)
			}
			errs = append(errs, &scenario.SpecError{File: spec.File, Line: spec.Line(path), Field: path,
				Msg: fmt.Sprintf("%q matches no ready, active swarm node by hostname, id or label (nodes: %s)", sel, strings.Join(names, ", "))})
		}
	}
	return errors.Join(errs...)
}

// placeLocked picks the swarm node of the next member of role.
func (s *services) placeLocked(role string) (swarmHost, error) {
	i := s.byRole[role]
	s.byRole[role]++
	if sels := s.spec.Cluster.PlacementOf(role); len(sels) > 0 {
		sel := sels[i%len(sels)]
		hs := matching(s.hosts, sel)
		if len(hs) == 0 {
			return swarmHost{}, fmt.Errorf("swarm: placement of a %s: %q matches no swarm node", role, sel)
		}
		key := role + "=" + sel
		h := hs[s.bySelector[key]%len(hs)]
		s.bySelector[key]++
		return h, nil
	}
	var eligible []swarmHost
	for _, h := range s.hosts {
		if h.takes(role) {
			eligible = append(eligible, h)
		}
	}
	if len(eligible) == 0 {
		return swarmHost{}, fmt.Errorf("swarm: no node takes role %q (label %s)", role, labelRoles)
	}
	return eligible[i%len(eligible)], nil
}
