// Package scenarios runs experiments: [RunScenario] drives every topology of
// a scenario through its runtime's driver, fires the fault timeline, records
// the history and hands it to the analysis; the result goes to the report.
//
// The experiment layer is split by role, each package importing only those
// below it:
//
//	scenarios/scenario  the YAML format, faults and timing profiles
//	scenarios/analysis  figures and the checker, from a recorded run
//	scenarios/report    result.json, report.md, report.html
//	scenarios           the runner and the driver contract (this package)
//	scenarios/nodes     the runtime-neutral node layer and fault dispatcher
//	scenarios/inprocess, docker, scenarios/jetstream, scenarios/external
//	                    drivers, registered with [RegisterDriver]
//
// A driver implements [Deployment] for one topology on one runtime; optional
// interfaces ([Placer], [RetryReporter], [MetricsTargets]) let it say more.
//
//	spec, err := scenario.Load("scenarios/quickstart.yaml")
//	if err != nil {
//		return err
//	}
//	// writes results/x/result.json, report.md and report.html as it goes
//	res, err := scenarios.RunScenario(ctx, spec, scenarios.RunOptions{Out: "results/x"})
//	fmt.Print(report.Compare([]report.Result{res}))
//	return err
package scenarios
