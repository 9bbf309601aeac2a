package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/history"
)

// RunOptions are the runner's settings beyond the scenario itself.
type RunOptions struct {
	// Out is the directory for result.json, report.md and report.html.
	Out string
	// Runtime overrides the scenario's runtime when set.
	Runtime string
	// Topologies, when set, runs only these (in this order).
	Topologies []Topology
	// Bootstrap is the Kafka-protocol cluster of kafka-external.
	Bootstrap []string
	// KeepData keeps node data directories under Out/data after the run.
	KeepData bool
	// Progress receives a live progress line per second; nil for none.
	Progress io.Writer
	Logger   *slog.Logger
}

// RunScenario runs every topology (and every rate of a sweep) of spec back
// to back, analyses each and writes the three outputs to opts.Out. A
// topology that fails is reported in its result (Error) and the others still
// run; the returned error is only about the run as a whole.
func RunScenario(ctx context.Context, spec Spec, opts RunOptions) (Result, error) {
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
		return Result{}, errors.New("scenarios: no output directory")
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return Result{}, fmt.Errorf("scenarios: %w", err)
	}
	started := time.Now()
	res := Result{Version: ResultVersion, Scenario: spec, Runtime: runtime, Environment: CaptureEnvironment(ctx, started)}
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
		for i, rate := range spec.Workload.Rates {
			if ctx.Err() != nil {
				break
			}
			step := stepRun{spec: spec, topology: top, runtime: runtime, rate: rate, opts: opts,
				dataDir: filepath.Join(opts.Out, "data", fmt.Sprintf("%s-%d", top, i))}
			run := step.execute(ctx)
			tr := Analyze(run, DefaultAnalysisConfig())
			res.Topologies = append(res.Topologies, tr)
			if !opts.KeepData {
				_ = os.RemoveAll(step.dataDir)
			}
		}
	}
	if !opts.KeepData {
		_ = os.Remove(filepath.Join(opts.Out, "data"))
	}
	if err := WriteAll(opts.Out, res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// stepRun is one topology at one rate.
type stepRun struct {
	spec     Spec
	topology Topology
	runtime  string
	rate     float64
	opts     RunOptions
	dataDir  string
}

// recorder collects the history of a run from every client goroutine. It
// appends to fixed-size chunks: growing one slice copied the whole history
// while holding the lock every client waits on (a profile at unbounded rate
// showed 5% of the process's CPU in that copy), so clients stalled on the
// recorder instead of the cluster.
type recorder struct {
	mu       sync.Mutex
	sends    chunks[history.Send]
	receives chunks[history.Receive]
	acked    atomic.Int64
	failed   atomic.Int64
	consumed atomic.Int64
}

func (r *recorder) send(s history.Send) {
	if s.Outcome == history.Acked {
		r.acked.Add(1)
	} else {
		r.failed.Add(1)
	}
	r.mu.Lock()
	r.sends.add(s)
	r.mu.Unlock()
}

func (r *recorder) receive(m history.Receive) {
	r.consumed.Add(1)
	r.mu.Lock()
	r.receives.add(m)
	r.mu.Unlock()
}

// chunkLen is the length of one recorder chunk (a few MB of history).
const chunkLen = 1 << 15

// chunks is an append-only list that never moves what it holds.
type chunks[T any] struct {
	full [][]T
	cur  []T
	n    int
}

func (c *chunks[T]) add(v T) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]T, 0, chunkLen)
	}
	c.cur = append(c.cur, v)
	c.n++
}

// all returns everything added, in order, as one slice (nil when empty).
func (c *chunks[T]) all() []T {
	if c.n == 0 {
		return nil
	}
	out := make([]T, 0, c.n)
	for _, f := range c.full {
		out = append(out, f...)
	}
	return append(out, c.cur...)
}

func (s *stepRun) execute(ctx context.Context) Run {
	run := Run{Topology: s.topology, TargetRate: s.rate, Partitions: s.spec.Topic.Partitions}
	logger := s.opts.Logger.With("topology", s.topology)
	fail := func(err error) Run {
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
	dep, err := starter(setupCtx, Env{Spec: s.spec, Runtime: s.runtime, DataDir: s.dataDir, Logger: logger, Bootstrap: s.opts.Bootstrap})
	if err != nil {
		return fail(fmt.Errorf("start %s: %w", s.topology, err))
	}
	defer func() {
		if err := dep.Close(); err != nil {
			logger.Warn("close deployment", "error", err)
		}
	}()
	if err := dep.CreateTopic(setupCtx, s.spec.Topic); err != nil {
		return fail(fmt.Errorf("create topic: %w", err))
	}
	rec := &recorder{}
	w := s.spec.Workload
	timings := s.spec.Timings()

	// Consumers split the partitions between them, like a consumer group.
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var consumers []Consumer
	var cwg sync.WaitGroup
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
			return fail(fmt.Errorf("consumer %d: %w", i, err))
		}
		consumers = append(consumers, c)
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := c.Run(consumeCtx, rec.receive); err != nil && consumeCtx.Err() == nil {
				logger.Warn("consumer stopped", "consumer", i, "error", err)
			}
		}()
	}

	resources := startResources(ctx, s.runtime, dep)
	defer resources.stop()
	cpuBefore := ReadCPU()
	start := time.Now().Add(200 * time.Millisecond)
	run.Start, run.WarmupEnd, run.End = start, start.Add(w.Warmup), start.Add(w.Duration)
	var pwg sync.WaitGroup
	var perr atomic.Pointer[error]
	producers := max(w.Producers, 1)
	for i := range producers {
		p, err := dep.NewProducer(ProducerConfig{
			ID: int32(i), Topic: s.spec.Topic.Name, Rate: s.rate / float64(producers),
			Start: start, Duration: w.Duration, Workload: w, Timings: timings,
		})
		if err != nil {
			return fail(fmt.Errorf("producer %d: %w", i, err))
		}
		if rr, ok := p.(RetryReporter); ok {
			run.ProducerRetries = rr.RetryOrder()
		}
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			if err := p.Run(ctx, rec.send); err != nil {
				perr.Store(&err)
			}
		}()
	}
	producersDone := make(chan struct{})
	go func() { pwg.Wait(); close(producersDone) }()

	faults := s.fireFaults(ctx, dep, start, logger)
	samples := s.sampleControlPlane(ctx, dep, producersDone)
	s.progress(rec, start, producersDone, faults)
	<-producersDone
	run.Noise = NoiseBetween(cpuBefore, ReadCPU())
	if p := perr.Load(); p != nil {
		logger.Warn("producer error", "error", *p)
	}
	events := faults.wait()

	// Drain: consumers read until caught up, and past every acknowledged
	// offset where they can tell (a slave's high watermark may lag its
	// master's by a fetch), within the drain budget.
	rec.mu.Lock()
	ends := ackedEnds(rec.sends.all())
	rec.mu.Unlock()
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
	rec.mu.Lock()
	sends := rec.sends.all()
	rec.mu.Unlock()
	v := s.verify(ctx, dep, logger, sends)
	run.Final, run.FinalReads, run.FinalStart, run.FinalEnd = v.receives, v.reads, v.start, v.end

	for i := range events {
		ev := &events[i]
		if ev.Err != "" || ev.Node == "" {
			continue
		}
		switch ev.Action {
		case ActionKill, ActionPause, ActionIsolate, ActionCut:
			ev.Detected = dep.Detected(ev.Node, ev.At)
			ev.Converged = dep.Converged(ev.Node, ev.At)
		}
	}
	run.Faults = events
	rec.mu.Lock()
	run.Sends, run.Receives = rec.sends.all(), rec.receives.all()
	rec.mu.Unlock()
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, "\r[%s] done: %d acked, %d failed or unknown, %d consumed, %d faults%s\n",
			s.topology, rec.acked.Load(), rec.failed.Load(), rec.consumed.Load(), len(events), spaces(20))
	}
	return run
}

// verification is what the verification read got.
type verification struct {
	receives   []history.Receive // nil: it could not run or cannot tell (check live receives)
	reads      []PartitionRead   // how far it got per partition, when the consumer tells
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
func (s *stepRun) verify(ctx context.Context, dep Deployment, logger *slog.Logger, sends []history.Send) verification {
	rec := &recorder{}
	vctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := verification{start: time.Now()}
	c, err := dep.NewConsumer(ConsumerConfig{ID: 1000, Topic: s.spec.Topic.Name, Timings: s.spec.Timings()})
	if err != nil {
		logger.Warn("verification read", "error", err)
		return v
	}
	ends := ackedEnds(sends)
	pr, tells := c.(PartitionReader)
	var reads []PartitionRead
	complete := func() bool {
		if ok, _ := c.CaughtUp(vctx); !ok {
			return false
		}
		var ok bool
		reads, ok = readPast(vctx, c, ends)
		return ok
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(vctx, rec.receive)
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
			if i := slices.IndexFunc(v.reads, func(x PartitionRead) bool { return x.Partition == r.Partition }); i >= 0 && r.LogEnded {
				v.reads[i].LogEnded = v.reads[i].HighWatermark == r.HighWatermark && v.reads[i].Position == r.Position
			}
		}
		if len(v.reads) == 0 { // it never learned the route
			for p := range s.spec.Topic.Partitions {
				v.reads = append(v.reads, PartitionRead{Partition: int32(p), HighWatermark: -1, LastErr: "no route"})
			}
		}
	}
	if !ok {
		logger.Warn("verification read did not read every partition to its end", "reports-partitions", tells)
		if !tells {
			return v
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	v.receives = rec.receives.all()
	if v.receives == nil {
		v.receives = []history.Receive{}
	}
	return v
}

// ackedEnds returns, by partition, one past the highest offset an ack
// reported.
func ackedEnds(sends []history.Send) map[int32]int64 {
	ends := map[int32]int64{}
	for _, m := range sends {
		if m.Outcome == history.Acked {
			ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
		}
	}
	return ends
}

// readPast reports whether c has read every partition as far as the
// acknowledged ends go: the high watermark it was last served reaches the
// end, or the log itself ends before it (then the missing messages are
// gone, and waiting longer changes nothing). With CaughtUp, c has then read
// every acknowledged offset the log still holds. It marks the reads whose
// log ended. A consumer that cannot tell (not a PartitionReader) passes.
func readPast(ctx context.Context, c Consumer, ends map[int32]int64) ([]PartitionRead, bool) {
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

func spaces(n int) string { return fmt.Sprintf("%*s", n, "") }

// faultRunner fires the timeline and collects what happened.
type faultRunner struct {
	done   chan struct{}
	mu     sync.Mutex
	events []FaultEvent
	fired  atomic.Int32
	total  int
}

func (f *faultRunner) wait() []FaultEvent {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events
}

func (s *stepRun) fireFaults(ctx context.Context, dep Deployment, start time.Time, logger *slog.Logger) *faultRunner {
	steps := s.spec.Timeline()
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
			ev := FaultEvent{At: time.Now(), Action: st.Action, Target: st.Target.String()}
			node := ""
			if st.Revert >= 0 {
				node = resolved[st.Revert]
			}
			switch {
			case !st.Fault.AppliesTo(s.topology):
				ev.Err = "skipped: target does not exist in " + s.topology
			case st.Revert >= 0 && node == "":
				ev.Err = "skipped: the fault it undoes was not applied"
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
	samples []CPSample
}

func (c *cpSampler) stop() []CPSample {
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
func (s *stepRun) progress(rec *recorder, start time.Time, done <-chan struct{}, faults *faultRunner) {
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
				acked := rec.acked.Load()
				elapsed := time.Since(start).Truncate(time.Second)
				fmt.Fprintf(s.opts.Progress, "\r[%s] %v/%v  rate %d/s  acked %d  failed %d  consumed %d  faults %d/%d   ",
					s.topology, max(elapsed, 0), s.spec.Workload.Duration, acked-last, acked, rec.failed.Load(), rec.consumed.Load(), faults.fired.Load(), faults.total)
				last = acked
			}
		}
	}()
}
