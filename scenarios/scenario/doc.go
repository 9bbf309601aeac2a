// Package scenario is the scenario format: the YAML a user writes ([Parse],
// [Load]) into a validated [Spec] with file:line errors, the fault language
// ([Fault], [Target], [Spec.Timeline]), units and the timing profiles. It is
// the lowest layer of the experiment packages: analysis, report and the
// runner (package scenarios) build on it, and it imports none of them.
//
//	spec, err := scenario.Load("scenarios/quickstart.yaml")
//	if err != nil {
//		return err // "scenarios/quickstart.yaml:12: workload.rate: ..."
//	}
//	for _, step := range spec.Timeline() { ... }
package scenario
