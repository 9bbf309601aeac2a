// Package scenarios is brokerlab's experiment layer: the YAML scenario format,
// the timing profiles, the analysis of a recorded run (latency histograms,
// per-second series, write unavailability per fault, control-plane cost), the
// checker that finds acked-but-lost, duplicated and reordered messages, and
// the reports (result.json, report.md, report.html, compare).
//
// Scenarios are data and checkers are code. A scenario file says what to run
// and which faults to inject ([Parse], [Load], [Spec.Timeline]); the runner
// drives each topology and records a [Run]: the history of every send and
// receive (package scenarios/history), the faults as they fired, and
// control-plane counter samples. [Analyze] turns a Run into a
// [TopologyResult]; [WriteAll] stores a [Result] as result.json and renders
// report.md and report.html; [Rerender] and [Compare] work from stored
// results.
//
//	spec, err := scenarios.Load("scenarios/quickstart.yaml")
//	if err != nil {
//		return err // "scenarios/quickstart.yaml:12: workload.rate: ..."
//	}
//	res := scenarios.Result{Scenario: spec, Runtime: spec.Runtime,
//		Environment: scenarios.CaptureEnvironment(ctx, time.Now())}
//	for _, topo := range spec.Topologies {
//		for _, rate := range spec.Workload.Rates {
//			run := drive(ctx, spec, topo, rate, spec.Timeline()) // the runner's part
//			res.Topologies = append(res.Topologies, scenarios.Analyze(run, scenarios.DefaultAnalysisConfig()))
//		}
//	}
//	return scenarios.WriteAll(outDir, res)
//
// Times in a Run are wall-clock times; fault times in a scenario are offsets
// from the run start (t=0 of the open-loop schedule). Latency and rate
// figures cover messages intended after the warm-up; the checker covers
// every message.
//
// The checker judges durability on a verification read: after the drain a
// fresh consumer reads every partition from offset 0 until the high
// watermark it is served covers every offset an ack reported. A partition it
// cannot read that far (no reader, errors, a restarted leader whose high
// watermark has not caught up) is reported in
// [CheckResult.UnreadablePartitions] with how long the read tried, and the
// acknowledged messages it did not reach count as Unreadable, not Lost.
package scenarios
