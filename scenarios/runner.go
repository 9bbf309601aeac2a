package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// RunOptions are the runner's settings beyond the scenario itself.
type RunOptions struct {
	// Out is the directory for result.json, report.md and report.html.
	Out string
	// Runtime overrides the scenario's runtime when set.
	Runtime string
	// Topologies, when set, runs only these (in this order).
	Topologies []scenario.Topology
	// Bootstrap is the Kafka-protocol cluster of kafka-external.
	Bootstrap []string
	// KeepData keeps node data directories under Out/data after the run.
	KeepData bool
	// Progress receives a live progress line per second; nil for none.
	Progress io.Writer
	Logger   *slog.Logger
	// History chooses where each run's history goes: HistoryAuto (the
	// default) keeps it in memory when the estimate fits HistoryMemory and
	// streams it to Out/history-<topology>-<step>.blh otherwise;
	// HistoryMemory and HistoryFile force one.
	History string
	// HistoryMemory is the memory budget of an in-memory history in bytes;
	// 0 means DefaultHistoryMemory.
	HistoryMemory int64
	// HeapProfiles, when set, writes two heap profiles per run,
	// Out/heap-<topology>-<step>-sending.pprof at 90% of the sending phase
	// and ...-verified.pprof after the verification read, while the
	// cluster still runs: the split of live memory between the nodes and
	// the runner (go tool pprof -top). The history's table lives outside
	// the Go heap; the runner logs its size.
	HeapProfiles bool
}

// History modes of RunOptions.
const (
	HistoryAuto   = "auto"
	HistoryMemory = "memory"
	HistoryFile   = "file"
)

// DefaultHistoryMemory is the in-memory history budget: about 7 million
// messages at history.MessageSize bytes each.
const DefaultHistoryMemory = 512 << 20

// UnboundedRateEstimate is the rate assumed for an unbounded (rate: max)
// run when estimating its history: above what one in-process broker on
// two cores has been measured to take (about 190,000 msgs/s).
const UnboundedRateEstimate = 250_000

// historyPlan is the estimate and the mode chosen for one run.
type historyPlan struct {
	messages int64
	bytes    int64
	mode     string
}

// planHistory estimates a run's history from rate × duration (the
// verification read and re-reads add no slots) and picks the mode.
func planHistory(opts RunOptions, rate float64, d time.Duration) (historyPlan, error) {
	if rate <= 0 {
		rate = UnboundedRateEstimate
	}
	p := historyPlan{messages: int64(math.Ceil(rate * d.Seconds()))}
	p.bytes = p.messages * history.MessageSize
	budget := opts.HistoryMemory
	if budget <= 0 {
		budget = DefaultHistoryMemory
	}
	switch opts.History {
	case "", HistoryAuto:
		p.mode = HistoryMemory
		if p.bytes > budget {
			p.mode = HistoryFile
		}
	case HistoryMemory, HistoryFile:
		p.mode = opts.History
	default:
		return p, fmt.Errorf("%w: history mode %q (want auto, memory or file)", analysis.ErrInvalidConfig, opts.History)
	}
	return p, nil
}

// RunScenario runs every topology (and every rate of a sweep) of spec back
// to back, analyses each and writes the three outputs to opts.Out. A
// topology that fails is reported in its result (Error) and the others still
// run; the returned error is only about the run as a whole.
func RunScenario(ctx context.Context, spec scenario.Spec, opts RunOptions) (report.Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	runtime := spec.Runtime
	if opts.Runtime != "" {
		runtime = opts.Runtime
	}
	tops := spec.Topologies
	if len(opts.Topologies) > 0 {
		tops = opts.Topologies
	}
	if opts.Out == "" {
		return report.Result{}, errors.New("scenarios: no output directory")
	}
	if _, err := planHistory(opts, 0, 0); err != nil {
		return report.Result{}, err
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return report.Result{}, fmt.Errorf("scenarios: %w", err)
	}
	started := time.Now()
	res := report.Result{Version: report.ResultVersion, Scenario: spec, Runtime: runtime, Environment: report.CaptureEnvironment(ctx, started)}
	var runnable []scenario.Topology
	for _, top := range tops {
		if _, err := lookupDriver(runtime, top); err != nil {
			// JetStream has no docker driver, for one: say so and go on.
			opts.Logger.Warn("topology skipped", "topology", top, "runtime", runtime, "error", err)
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "[%s] skipped: no driver for runtime %s\n", top, runtime)
			}
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: no driver for runtime %s", top, runtime))
			continue
		}
		runnable = append(runnable, top)
	}
	if prepare := lookupPreparer(runtime); prepare != nil && len(runnable) > 0 {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "preparing the %s runtime\n", runtime)
		}
		if err := prepare(ctx, opts.Logger); err != nil {
			return report.Result{}, fmt.Errorf("scenarios: prepare runtime %s: %w", runtime, err)
		}
	}
	reuse := spec.Reuse && spec.Repeats() > 1
	shared := &sharedDeployment{} // reuse: the deployment the repeats share
	runStep := func(top scenario.Topology, i, repeat int, st sweepStep) analysis.TopologyResult {
		rate := st.rate
		name := fmt.Sprintf("%s-%d", top, i)
		if spec.Repeats() > 1 {
			name += fmt.Sprintf("-r%d", repeat+1)
		}
		step := stepRun{spec: st.spec, topology: top, runtime: runtime, rate: rate, opts: opts, repeat: repeat,
			dataDir:     filepath.Join(opts.Out, "data", name),
			historyFile: filepath.Join(opts.Out, "history-"+name+analysis.HistoryExt)}
		if reuse {
			step.spec = st.spec.ForRepeat(repeat)
			step.shared = shared
			step.dataDir = filepath.Join(opts.Out, "data", fmt.Sprintf("%s-%d-reused", top, i))
		}
		run := step.execute(ctx)
		tr := analysis.Analyze(run, analysis.DefaultAnalysisConfig())
		if run.History != nil {
			run.History.Release() // now, not when the collector gets to it
		}
		// Hand this step's heap back to the system: the next step's
		// peak then does not sit on top of this one's garbage.
		debug.FreeOSMemory()
		res.Topologies = append(res.Topologies, tr)
		if !opts.KeepData && !reuse {
			_ = os.RemoveAll(step.dataDir)
		}
		return tr
	}
	if rs := spec.Workload.RateSearch; rs != nil {
		// Repeats interleave: every topology's first search, then every
		// topology's second.
		for _, pr := range RunOrder(runnable, 1, spec.Repeats()) {
			if ctx.Err() != nil {
				break
			}
			top, repeat := pr.Topology, pr.Repeat
			sr := analysis.Search(ctx, *rs, func(i int, rate float64) analysis.TopologyResult {
				return runStep(top, i, repeat, sweepStep{spec: spec, rate: rate})
			})
			sr.Topology, sr.Repeat = top, repeat
			res.Searches = append(res.Searches, sr)
			if opts.Progress != nil {
				fmt.Fprintf(opts.Progress, "[%s] rate search: knee %s after %d probes (%s)\n", top, scenario.FormatRate(sr.Knee), len(sr.Steps), sr.End)
			}
		}
	}
	steps := sweepSteps(spec)
	order := RunOrder(runnable, len(steps), spec.Repeats())
	if reuse {
		order = ReuseOrder(runnable, len(steps), spec.Repeats())
	}
	for _, pr := range order {
		if ctx.Err() != nil || spec.Workload.RateSearch != nil {
			break
		}
		if spec.Repeats() > 1 && opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "[%s] repeat %d of %d\n", pr.Topology, pr.Repeat+1, spec.Repeats())
		}
		runStep(pr.Topology, pr.Step, pr.Repeat, steps[pr.Step])
		if reuse && pr.Repeat == spec.Repeats()-1 {
			shared.close(opts.Logger)
			if !opts.KeepData {
				_ = os.RemoveAll(filepath.Join(opts.Out, "data", fmt.Sprintf("%s-%d-reused", pr.Topology, pr.Step)))
			}
		}
	}
	shared.close(opts.Logger) // after a cancelled run
	res.Repeats = report.AggregateRepeats(res)
	if !opts.KeepData {
		_ = os.Remove(filepath.Join(opts.Out, "data"))
	}
	if err := report.WriteAll(opts.Out, res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// sweepStep is one step of a topology's runs: a rate, and the spec with the
// step's acks.
type sweepStep struct {
	spec scenario.Spec
	rate float64
}

// sweepSteps are the steps every topology runs: each acks setting of an
// acks sweep (or the one), and within it each rate.
func sweepSteps(spec scenario.Spec) []sweepStep {
	acks := spec.Workload.AcksSweep
	if len(acks) == 0 {
		acks = []int{spec.Workload.Acks}
	}
	var out []sweepStep
	for _, a := range acks {
		s := spec
		s.Workload.Acks = a
		for _, r := range spec.Workload.Rates {
			out = append(out, sweepStep{spec: s, rate: r})
		}
	}
	return out
}

// stepRun is one topology at one rate (and one acks setting of a sweep).
type stepRun struct {
	spec     scenario.Spec
	topology scenario.Topology
	runtime  string
	rate     float64
	opts     RunOptions
	dataDir  string
	// historyFile is where a streamed history goes.
	historyFile string
	// repeat is the 0-based repeat this step is (Spec.Repeat).
	repeat int
	// shared, under reuse, holds the deployment the repeats share: the
	// first repeat starts it, the later ones settle and use it.
	shared *sharedDeployment
}

// newRecorder plans the run's history and opens its recorder.
func (s *stepRun) newRecorder(logger *slog.Logger) (*history.Recorder, error) {
	plan, err := planHistory(s.opts, s.rate, s.spec.Workload.Duration)
	if err != nil {
		return nil, err
	}
	logger.Info("history", "mode", plan.mode, "estimated-messages", plan.messages, "estimated-bytes", plan.bytes)
	if s.opts.Progress != nil {
		where := "in memory"
		if plan.mode == HistoryFile {
			where = "streamed to " + s.historyFile
		}
		fmt.Fprintf(s.opts.Progress, "[%s] history %s (estimate %d messages, %.0f MB in memory)\n",
			s.topology, where, plan.messages, float64(plan.bytes)/1e6)
	}
	now := time.Now()
	if plan.mode == HistoryFile {
		return history.NewFileRecorder(s.historyFile, now)
	}
	return history.NewRecorder(now), nil
}

func (s *stepRun) execute(ctx context.Context) analysis.Run {
	run := analysis.Run{Topology: s.topology, TargetRate: s.rate, Partitions: s.spec.Topic.Partitions}
	s.label(&run)
	if len(s.spec.Workload.AcksSweep) > 0 {
		acks := s.spec.Workload.Acks
		run.Acks = &acks
	}
	logger := s.opts.Logger.With("topology", s.topology)
	fail := func(err error) analysis.Run {
		run.Error = err.Error()
		logger.Error("run failed", "error", err)
		if s.opts.Progress != nil {
			fmt.Fprintf(s.opts.Progress, "[%s] failed: %v\n", s.topology, err)
		}
		return run
	}
	starter, err := lookupDriver(s.runtime, s.topology)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return fail(err)
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelSetup()
	dep := s.shared.get()
	if dep != nil {
		if err := settle(setupCtx, dep, logger); err != nil {
			return fail(fmt.Errorf("reused cluster: %w", err))
		}
	} else {
		dep, err = starter(setupCtx, Env{Spec: s.spec, Runtime: s.runtime, DataDir: s.dataDir, Logger: logger, Bootstrap: s.opts.Bootstrap})
		if err != nil {
			return fail(fmt.Errorf("start %s: %w", s.topology, err))
		}
		if s.shared != nil {
			s.shared.set(dep)
		} else {
			defer func() {
				if err := dep.Close(); err != nil {
					logger.Warn("close deployment", "error", err)
				}
			}()
		}
	}
	if err := dep.CreateTopic(setupCtx, s.spec.Topic); err != nil {
		return fail(fmt.Errorf("create topic: %w", err))
	}
	rec, err := s.newRecorder(logger)
	if err != nil {
		return fail(err)
	}
	recorded := false
	defer func() {
		if !recorded { // a failed start: close a history file
			_ = rec.Close()
		}
	}()
	w := s.spec.Workload
	timings := s.spec.Timings()

	// Every client goroutine is waited for before the deployment closes:
	// abort, on a client that cannot be built, stops and waits for those
	// already running (the deferred Close then closes an idle cluster).
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	produceCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	var cwg, pwg sync.WaitGroup
	abort := func(err error) analysis.Run {
		stopProducers()
		pwg.Wait()
		stopConsumers()
		cwg.Wait()
		return fail(err)
	}

	// Consumers split the partitions between them, like a consumer group.
	var consumers []Consumer
	for i := range max(w.Consumers, 1) {
		var parts []int32
		for p := i; p < s.spec.Topic.Partitions; p += max(w.Consumers, 1) {
			parts = append(parts, int32(p))
		}
		if len(parts) == 0 {
			continue
		}
		c, err := dep.NewConsumer(ConsumerConfig{ID: i, Topic: s.spec.Topic.Name, Partitions: parts, Timings: timings})
		if err != nil {
			return abort(fmt.Errorf("consumer %d: %w", i, err))
		}
		consumers = append(consumers, c)
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := c.Run(consumeCtx, rec.Receive); err != nil && consumeCtx.Err() == nil {
				logger.Warn("consumer stopped", "consumer", i, "error", err)
			}
		}()
	}

	resources := startResources(ctx, s.runtime, dep)
	defer resources.stop()
	cpuBefore := analysis.ReadCPU()
	start := time.Now().Add(200 * time.Millisecond)
	run.Start, run.WarmupEnd, run.End = start, start.Add(w.Warmup), start.Add(w.Duration)
	var perr atomic.Pointer[error]
	producers := max(w.Producers, 1)
	for i := range producers {
		p, err := dep.NewProducer(ProducerConfig{
			ID: int32(i), Topic: s.spec.Topic.Name, Rate: s.rate / float64(producers),
			Start: start, Duration: w.Duration, Workload: w, Timings: timings,
		})
		if err != nil {
			return abort(fmt.Errorf("producer %d: %w", i, err))
		}
		if rr, ok := p.(RetryReporter); ok {
			run.ProducerRetries = rr.RetryOrder()
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			if err := p.Run(produceCtx, rec.Send); err != nil {
				perr.Store(&err)
			}
		}()
	}
	producersDone := make(chan struct{})
	go func() { pwg.Wait(); close(producersDone) }()

	if s.opts.HeapProfiles {
		// Near the end of sending, when clients and brokers hold the most.
		t := time.AfterFunc(time.Until(start.Add(w.Duration*9/10)), func() { s.writeHeapProfile("sending", logger) })
		defer t.Stop()
	}
	faults := s.fireFaults(ctx, dep, start, logger)
	samples := s.sampleControlPlane(ctx, dep, producersDone)
	s.progress(rec, start, producersDone, faults)
	<-producersDone
	run.Noise = analysis.NoiseBetween(cpuBefore, analysis.ReadCPU())
	if p := perr.Load(); p != nil {
		logger.Warn("producer error", "error", *p)
	}
	events := faults.wait()

	// Drain: consumers read until caught up, and past every acknowledged
	// offset where they can tell (a slave's high watermark may lag its
	// master's by a fetch), within the drain budget.
	ends := rec.AckedEnds()
	drainCtx, cancelDrain := context.WithTimeout(ctx, w.Drain)
	for drainCtx.Err() == nil {
		all := true
		for _, c := range consumers {
			if ok, err := c.CaughtUp(drainCtx); err != nil || !ok {
				all = false
				break
			}
			if _, ok := readPast(drainCtx, c, ends); !ok {
				all = false
				break
			}
		}
		if all {
			break
		}
		select {
		case <-drainCtx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancelDrain()
	run.DrainEnd = time.Now()
	stopConsumers()
	cwg.Wait()
	run.ControlPlane = samples.stop()
	run.Resources = resources.stop()
	v := s.verify(ctx, dep, rec, logger)
	run.FinalReads, run.FinalStart, run.FinalEnd = v.reads, v.start, v.end
	if s.opts.HeapProfiles {
		s.writeHeapProfile("verified", logger)
	}

	for i := range events {
		ev := &events[i]
		if ev.Err != "" || ev.Node == "" {
			continue
		}
		switch ev.Action {
		case scenario.ActionKill, scenario.ActionPause, scenario.ActionIsolate, scenario.ActionCut, scenario.ActionPowerLoss, scenario.ActionStop:
			ev.Detected = dep.Detected(ev.Node, ev.At)
			ev.Converged = dep.Converged(ev.Node, ev.At)
		}
	}
	run.Faults = events
	recorded = true
	meta, err := json.Marshal(run)
	if err != nil {
		return fail(fmt.Errorf("history metadata: %w", err))
	}
	if run.History, err = rec.Finish(meta); err != nil {
		return fail(err)
	}
	where := fmt.Sprintf("%.0f MB in memory", float64(run.History.Bytes())/1e6)
	if sp, ok := run.History.(*history.Split); ok {
		if st, err := os.Stat(sp.Path()); err == nil {
			where = fmt.Sprintf("%.0f MB on disk, checked in %d shards", float64(st.Size())/1e6, sp.ShardCount())
		}
	}
	logger.Info("history recorded", "bytes", run.History.Bytes(), "file", rec.Path(), "where", where)
	if s.opts.Progress != nil {
		acked, failed, consumed := rec.Counts()
		fmt.Fprintf(s.opts.Progress, "\r[%s] done: %d acked, %d failed or unknown, %d consumed, %d faults; history %s%s\n",
			s.topology, acked, failed, consumed, len(events), where, spaces(20))
	}
	return run
}

// verification is what the verification read got.
type verification struct {
	reads      []analysis.PartitionRead // how far it got per partition, when the consumer tells
	start, end time.Time
}

// verify reads the whole topic again with a fresh consumer after the drain:
// the checker judges durability on the log as it finally stands, not on
// what live consumers happened to see before a truncation. It reads until
// every partition is read up to a high watermark that covers every offset
// an ack reported (a leader whose high watermark lags behind its log must
// not pass for an empty partition), or until the drain budget runs out.
// A consumer that reports its partitions (PartitionReader) returns what it
// read either way, and the checker calls what it did not reach unreadable;
// another one that did not catch up returns nil receives.
func (s *stepRun) verify(ctx context.Context, dep Deployment, rec *history.Recorder, logger *slog.Logger) verification {
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := verification{start: time.Now()}
	c, err := dep.NewConsumer(ConsumerConfig{ID: 1000, Topic: s.spec.Topic.Name, Timings: s.spec.Timings()})
	if err != nil {
		logger.Warn("verification read", "error", err)
		return v
	}
	ends := rec.AckedEnds()
	pr, tells := c.(PartitionReader)
	var reads []analysis.PartitionRead
	complete := func() bool {
		if ok, _ := c.CaughtUp(vctx); !ok {
			return false
		}
		var ok bool
		reads, ok = readPast(vctx, c, ends)
		return ok
	}
	rec.BeginFinal()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(vctx, rec.Final)
	}()
	deadline := time.Now().Add(max(s.spec.Workload.Drain, 10*time.Second))
	ok := false
	for !ok && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond) // polling the consumer's position
		ok = complete()
	}
	cancel()
	<-done
	v.end = time.Now()
	if tells {
		v.reads = pr.Reads()
		for _, r := range reads { // the last check's findings
			if i := slices.IndexFunc(v.reads, func(x analysis.PartitionRead) bool { return x.Partition == r.Partition }); i >= 0 && r.LogEnded {
				v.reads[i].LogEnded = v.reads[i].HighWatermark == r.HighWatermark && v.reads[i].Position == r.Position
			}
		}
		if len(v.reads) == 0 { // it never learned the route
			for p := range s.spec.Topic.Partitions {
				v.reads = append(v.reads, analysis.PartitionRead{Partition: int32(p), HighWatermark: -1, LastErr: "no route"})
			}
		}
	}
	if !ok {
		logger.Warn("verification read did not read every partition to its end", "reports-partitions", tells)
		if !tells {
			rec.DropFinal() // the checker falls back to live receives
		}
	}
	return v
}

// readPast reports whether c has read every partition as far as the
// acknowledged ends go: the high watermark it was last served reaches the
// end, or the log itself ends before it (then the missing messages are
// gone, and waiting longer changes nothing). With CaughtUp, c has then read
// every acknowledged offset the log still holds. It marks the reads whose
// log ended. A consumer that cannot tell (not a PartitionReader) passes.
func readPast(ctx context.Context, c Consumer, ends map[int32]int64) ([]analysis.PartitionRead, bool) {
	pr, ok := c.(PartitionReader)
	if !ok {
		return nil, true
	}
	reads := pr.Reads()
	all := true
	for i, r := range reads {
		end := ends[r.Partition]
		if r.HighWatermark >= end {
			continue
		}
		if r.HighWatermark >= 0 && r.Position >= r.HighWatermark {
			reaches, err := pr.LogReaches(ctx, r.Partition, end)
			if err == nil && !reaches {
				reads[i].LogEnded = true
				continue
			}
		}
		all = false
	}
	return reads, all
}

// writeHeapProfile writes the live heap (after a collection) next to the
// history, as heap-<topology>-<step>-<when>.pprof.
func (s *stepRun) writeHeapProfile(when string, logger *slog.Logger) {
	path := strings.TrimSuffix(s.historyFile, analysis.HistoryExt) + "-" + when + ".pprof"
	path = filepath.Join(filepath.Dir(path), "heap-"+strings.TrimPrefix(filepath.Base(path), "history-"))
	f, err := os.Create(path)
	if err != nil {
		logger.Warn("heap profile", "error", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		logger.Warn("heap profile", "error", err)
	}
}

func spaces(n int) string { return fmt.Sprintf("%*s", n, "") }

// faultRunner fires the timeline and collects what happened.
type faultRunner struct {
	done   chan struct{}
	mu     sync.Mutex
	events []analysis.FaultEvent
	fired  atomic.Int32
	total  int
}

func (f *faultRunner) wait() []analysis.FaultEvent {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events
}

func (s *stepRun) fireFaults(ctx context.Context, dep Deployment, start time.Time, logger *slog.Logger) *faultRunner {
	steps := s.spec.TimelineFor(s.repeat)
	fr := &faultRunner{done: make(chan struct{}), total: len(steps)}
	go func() {
		defer close(fr.done)
		resolved := make([]string, len(steps))
		for i, st := range steps {
			if st.At >= s.spec.Workload.Duration {
				break // past the end of sending: nothing would observe it
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(st.At))):
			}
			ev := analysis.FaultEvent{At: time.Now(), Action: st.Action, Target: st.Target.String()}
			node := ""
			if st.Revert >= 0 {
				node = resolved[st.Revert]
			}
			switch {
			case !st.Fault.AppliesTo(s.topology):
				ev.Err = "skipped: target does not exist in " + s.topology
			case st.Revert >= 0 && node == "":
				ev.Err = "skipped: the fault it undoes was not applied"
			case st.Action == scenario.ActionRoll:
				evs := s.roll(ctx, dep, st, logger)
				fr.mu.Lock()
				fr.events = append(fr.events, evs...)
				fr.mu.Unlock()
				fr.fired.Add(1)
				continue
			default:
				if pl, ok := dep.(Placer); ok {
					ev.Placement = pl.Placement()
				}
				actx, cancel := context.WithTimeout(ctx, 30*time.Second)
				r, err := dep.Apply(actx, st, node)
				cancel()
				ev.Node = r
				resolved[i] = r
				if err != nil {
					ev.Err = err.Error()
					resolved[i] = ""
				}
			}
			logger.Info("fault", "action", st.Action, "target", ev.Target, "node", ev.Node, "error", ev.Err)
			fr.mu.Lock()
			fr.events = append(fr.events, ev)
			fr.mu.Unlock()
			fr.fired.Add(1)
		}
	}()
	return fr
}

// cpSampler samples control-plane counters once a second.
type cpSampler struct {
	stopCh  chan struct{}
	done    chan struct{}
	samples []analysis.CPSample
}

func (c *cpSampler) stop() []analysis.CPSample {
	close(c.stopCh)
	<-c.done
	return c.samples
}

func (s *stepRun) sampleControlPlane(ctx context.Context, dep Deployment, _ <-chan struct{}) *cpSampler {
	c := &cpSampler{stopCh: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		c.samples = append(c.samples, dep.ControlPlane()...)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.stopCh:
				c.samples = append(c.samples, dep.ControlPlane()...)
				return
			case <-t.C:
				c.samples = append(c.samples, dep.ControlPlane()...)
			}
		}
	}()
	return c
}

// progress prints a live line until the producers finish.
func (s *stepRun) progress(rec *history.Recorder, start time.Time, done <-chan struct{}, faults *faultRunner) {
	if s.opts.Progress == nil {
		return
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				acked, failed, consumed := rec.Counts()
				elapsed := time.Since(start).Truncate(time.Second)
				fmt.Fprintf(s.opts.Progress, "\r[%s] %v/%v  rate %d/s  acked %d  failed %d  consumed %d  faults %d/%d   ",
					s.topology, max(elapsed, 0), s.spec.Workload.Duration, acked-last, acked, failed, consumed, faults.fired.Load(), faults.total)
				last = acked
			}
		}
	}()
}
