package scenarios

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
)

const randomBase = "name: r\ntopologies: [coordinator, nameserver]\n" +
	"cluster: {brokers: 3, nameservers: 2, etcd: 1, timings: fast}\n" +
	"topic: {name: bench, partitions: 6, replication: 3}\n" +
	"workload: {duration: 60s, warmup: 5s}\n"

func TestParseRepeatAndRandom(t *testing.T) {
	s, err := Parse("r.yaml", []byte(randomBase+"repeat: 3\nrandom:\n  seed: 42\n  every: 10s\n  faults: [kill leader, isolate leader, pause broker, kill nameserver 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeat != 3 || s.Repeats() != 3 {
		t.Errorf("repeat %d, Repeats() %d, want 3", s.Repeat, s.Repeats())
	}
	r := s.Random
	if r == nil || r.Seed != 42 || r.Every != 10*time.Second || r.Start != 10*time.Second || r.For != 5*time.Second {
		t.Fatalf("random %+v, want seed 42, every 10s, start 10s (default every), for 5s (default every/2)", r)
	}
	want := []RandomFault{{ActionKill, "leader", 10}, {ActionIsolate, "leader", 10}, {ActionPause, "broker", 10}, {ActionKill, "nameserver 1", 10}}
	if !reflect.DeepEqual(r.Faults, want) {
		t.Errorf("faults %+v, want %+v", r.Faults, want)
	}
	if one, err := Parse("r.yaml", []byte(randomBase)); err != nil || one.Repeats() != 1 || one.Random != nil {
		t.Errorf("without repeat: Repeats() %d, random %v, err %v; want 1, nil", one.Repeats(), one.Random, err)
	}
}

func TestParseRandomErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"negative repeat", "repeat: -1", "bad.yaml:6: repeat: -1 out of range [0, 1000]"},
		{"repeat not a number", "repeat: many", `bad.yaml:6: repeat: "many" is not an integer`},
		{"missing seed", "random:\n  every: 10s\n  faults: [kill leader]", "bad.yaml:7: random.seed: missing"},
		{"bad seed", "random: {seed: -3, every: 10s, faults: [kill leader]}", `bad.yaml:6: random.seed: "-3" is not a non-negative integer`},
		{"missing every", "random: {seed: 1, faults: [kill leader]}", "bad.yaml:6: random.every: missing"},
		{"for not shorter than every", "random:\n  seed: 1\n  every: 10s\n  for: 10s\n  faults: [kill leader]", "bad.yaml:9: random.for: 10s: want more than 0 and less than every"},
		{"nothing fits", "random: {seed: 1, every: 10s, start: 58s, faults: [kill leader]}", "random.start: 58s: no fault fits"},
		{"unknown field", "random:\n  seed: 1\n  every: 10s\n  count: 3", "bad.yaml:9: random.count: unknown field"},
		{"no faults", "random: {seed: 1, every: 10s, faults: []}", "random.faults: want 1 to 100 faults"},
		{"action without target", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill", `bad.yaml:10: random.faults[0]: "kill": want ACTION TARGET`},
		{"action with no undo", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - restart leader", `bad.yaml:10: random.faults[0]: "restart": a random schedule draws kill, pause, isolate`},
		{"unknown target", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill somebody", `bad.yaml:10: random.faults[0]: "somebody": unknown target`},
		{"fixed broker out of range", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill broker 7", "bad.yaml:10: random.faults[0]: broker 7: cluster has brokers 0 to 2"},
		{"killed", "random: {seed: 1, every: 10s, faults: [restart killed]}", `"restart": a random schedule draws`},
		{"faults not a list", "random: {seed: 1, every: 10s, faults: kill leader}", "random.faults: want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(randomBase+tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
	_, err := Parse("bad.yaml", []byte(strings.Replace(randomBase, "[coordinator, nameserver]", "[nameserver]", 1)+"random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill controller"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:10: random.faults[0]: kill controller applies to none of the topologies nameserver") {
		t.Errorf("kill controller without coordinator: %v", err)
	}
	// follower needs replicas.
	_, err = Parse("bad.yaml", []byte(strings.Replace(randomBase, "replication: 3", "replication: 1", 1)+"random: {seed: 1, every: 10s, faults: [kill follower]}"))
	if err == nil || !strings.Contains(err.Error(), "replication 1 has no followers") {
		t.Errorf("kill follower at replication 1: %v", err)
	}
}

// TestRandomScheduleReproducible: the same seed draws the same schedule,
// also after the spec goes through result.json; another seed draws another
// one; every drawn fault is valid, inside the run and undone before the
// next one fires.
func TestRandomScheduleReproducible(t *testing.T) {
	yaml := randomBase + "random: {seed: 42, every: 10s, faults: [kill leader, isolate follower, pause broker, kill nameserver 1]}\n"
	a, err := Parse("r.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse("r.yaml", []byte(yaml))
	first := a.Draw(0)
	if len(first) != 5 { // at 10, 20, 30, 40, 50 s; each lasts 5 s
		t.Fatalf("drew %d faults, want 5: %v", len(first), first)
	}
	if !reflect.DeepEqual(first, b.Draw(0)) {
		t.Fatalf("same seed, different schedules:\n%v\n%v", first, b.Draw(0))
	}
	// Replay from result.json: the recorded seed gives the same schedule.
	data, err := MarshalResult(Result{Scenario: a})
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalResult(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Scenario.Random == nil || back.Scenario.Random.Seed != 42 || !reflect.DeepEqual(back.Scenario.Draw(0), first) {
		t.Fatalf("schedule from result.json differs:\n%v\n%v", back.Scenario.Draw(0), first)
	}
	// The schedule does not depend on Go's generators: pinned values.
	var got []string
	for _, f := range first {
		got = append(got, f.String())
	}
	t.Logf("seed 42: %v", got)
	if again := a.Draw(0); !reflect.DeepEqual(again, first) {
		t.Fatal("Draw is not a function of the spec")
	}
	if reflect.DeepEqual(a.Draw(1), first) {
		t.Error("repeat 1 (seed 43) drew the same schedule as repeat 0")
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		s := a
		r := *a.Random
		r.Seed = seed
		s.Random = &r
		fs := s.Draw(0)
		key := ""
		for i, f := range fs {
			key += f.String() + ";"
			if err := f.check(); err != nil {
				t.Fatalf("seed %d: drawn fault %v invalid: %v", seed, f, err)
			}
			v := &validator{s: &s}
			s.validateTargetRefs(v, "x", f.Target)
			if len(v.errs) > 0 {
				t.Fatalf("seed %d: drawn fault %v: %v", seed, f, v.errs)
			}
			if f.At+f.For > s.Workload.Duration {
				t.Errorf("seed %d: %v not undone before sending ends", seed, f)
			}
			if i > 0 && fs[i-1].At+fs[i-1].For >= f.At {
				t.Errorf("seed %d: %v fires before %v is undone", seed, f, fs[i-1])
			}
		}
		seen[key] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 seeds drew only %d distinct schedules", len(seen))
	}
}

// TestTimelineForMergesDrawnFaults: the runner's timeline holds the fixed
// faults and the drawn ones with their reverts, each revert pointing at
// its fault.
func TestTimelineForMergesDrawnFaults(t *testing.T) {
	s, err := Parse("r.yaml", []byte(randomBase+"faults:\n  - {at: 15s, kill: etcd, for: 2s}\n"+
		"random: {seed: 7, every: 20s, start: 10s, for: 4s, faults: [pause broker]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	steps := s.TimelineFor(0)
	var got []string
	for _, st := range steps {
		got = append(got, st.At.String()+" "+string(st.Action))
		if st.Revert >= 0 && steps[st.Revert].Target.String() != st.Target.String() {
			t.Errorf("%v reverts %v", st, steps[st.Revert])
		}
	}
	want := []string{"10s pause", "14s resume", "15s kill", "17s restart", "30s pause", "34s resume", "50s pause", "54s resume"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
	if len(s.Timeline()) != 2 {
		t.Errorf("Timeline() without the draw has %d steps, want 2", len(s.Timeline()))
	}
}

func TestRunOrderInterleaves(t *testing.T) {
	var got []string
	for _, p := range RunOrder([]Topology{"a", "b", "c"}, 2, 2) {
		got = append(got, p.Topology+string(rune('0'+p.Step))+string(rune('1'+p.Repeat)))
	}
	// topology, rate step, repeat: every topology's repeat 1 before any repeat 2.
	want := []string{"a01", "a11", "b01", "b11", "c01", "c11", "a02", "a12", "b02", "b12", "c02", "c12"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if n := len(RunOrder([]Topology{"a"}, 1, 0)); n != 1 {
		t.Errorf("repeat 0 runs %d times, want 1", n)
	}
}

func TestNewSpread(t *testing.T) {
	s := NewSpread([]float64{3, 1, math.NaN(), 2, 10})
	want := Spread{N: 4, Min: 1, Median: 2.5, P90: 7.9, Max: 10, Values: []float64{3, 1, 2, 10}}
	if s.N != want.N || s.Min != want.Min || s.Median != want.Median || math.Abs(s.P90-want.P90) > 1e-9 || s.Max != want.Max || !reflect.DeepEqual(s.Values, want.Values) {
		t.Errorf("spread %+v, want %+v", s, want)
	}
	if s := NewSpread([]float64{5}); s.Min != 5 || s.Median != 5 || s.P90 != 5 || s.Max != 5 {
		t.Errorf("one value: %+v", s)
	}
	if s := NewSpread(nil); s.N != 0 {
		t.Errorf("no values: %+v", s)
	}
	// 1..10: p50 5.5, p90 9.1.
	var xs []float64
	for i := 10; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	if s := NewSpread(xs); s.Median != 5.5 || math.Abs(s.P90-9.1) > 1e-9 {
		t.Errorf("1..10: median %v p90 %v, want 5.5 and 9.1", s.Median, s.P90)
	}
}

func TestCompareSpreads(t *testing.T) {
	lo, hi := NewSpread([]float64{1, 2, 3}), NewSpread([]float64{4, 5, 6})
	c, ok := compareSpreads("lat", false, "a", hi, "b", lo)
	if !ok || !c.Significant || c.Better != "b" || math.Abs(c.P-0.1) > 1e-12 {
		t.Errorf("disjoint, lower better: %+v, want significant, b better, p 0.1", c)
	}
	c, _ = compareSpreads("rate", true, "a", hi, "b", lo)
	if !c.Significant || c.Better != "a" {
		t.Errorf("disjoint, higher better: %+v, want a better", c)
	}
	c, _ = compareSpreads("rate", true, "a", NewSpread([]float64{1, 4}), "b", NewSpread([]float64{3, 6}))
	if c.Significant || c.P != 1 || c.Better != "" {
		t.Errorf("overlapping: %+v, want not significant", c)
	}
	if _, ok := compareSpreads("x", true, "a", NewSpread([]float64{1}), "b", lo); ok {
		t.Error("one repeat compared")
	}
	ten := func(base float64) Spread {
		var v []float64
		for i := range 10 {
			v = append(v, base+float64(i))
		}
		return NewSpread(v)
	}
	if c, _ := compareSpreads("x", false, "a", ten(0), "b", ten(100)); math.Abs(c.P-2/184756.0) > 1e-15 {
		t.Errorf("10 against 10: p %v, want 2/C(20,10)", c.P)
	}
}

// repeatedResult builds a result of two topologies × three repeats in
// interleaved order, with a kill per run.
func repeatedResult() Result {
	spec := DefaultSpec()
	spec.Name, spec.Repeat, spec.Topologies = "rep", 3, []Topology{"coordinator", "nameserver"}
	det := 0.5
	mk := func(top Topology, rep int, rate, unav float64) TopologyResult {
		return TopologyResult{Topology: top, Repeat: rep, TargetRate: 1000,
			Summary: Summary{PublishRate: rate, PublishP99Ms: 10, MaxUnavailabilityS: unav, Sent: 100, Acked: 100},
			Faults: []FaultResult{
				{Action: ActionKill, Target: "leader-of bench/0", UnavailableS: unav, Recovered: true, DetectionS: &det},
				{Action: ActionRestart, Target: "leader-of bench/0", Recovered: true},
				{Action: ActionKill, Target: "controller", Err: "skipped: target does not exist"},
			}}
	}
	return Result{Version: ResultVersion, Scenario: spec, Topologies: []TopologyResult{
		mk("coordinator", 1, 900, 2), mk("nameserver", 1, 950, 10),
		mk("coordinator", 2, 1000, 3), mk("nameserver", 2, 960, 12),
		mk("coordinator", 3, 980, 2.5), mk("nameserver", 3, 940, 11),
	}}
}

func TestAggregateRepeats(t *testing.T) {
	if AggregateRepeats(Result{Topologies: []TopologyResult{{Topology: "coordinator"}}}) != nil {
		t.Error("an unrepeated result has a repeat summary")
	}
	s := AggregateRepeats(repeatedResult())
	if s == nil || s.Count != 3 || len(s.Groups) != 2 {
		t.Fatalf("summary %+v, want 3 repeats, 2 groups", s)
	}
	c, n := s.Groups[0], s.Groups[1]
	if c.Topology != "coordinator" || !reflect.DeepEqual(c.Runs, []int{0, 2, 4}) || !reflect.DeepEqual(n.Runs, []int{1, 3, 5}) {
		t.Fatalf("groups %+v %+v", c, n)
	}
	if r := c.Figures["publish_rate"]; r.Min != 900 || r.Median != 980 || r.Max != 1000 || !reflect.DeepEqual(r.Values, []float64{900, 1000, 980}) {
		t.Errorf("coordinator publish rate %+v", r)
	}
	if len(c.FaultKinds) != 2 || c.FaultKinds[0].Kind != "kill leader" || c.FaultKinds[1].Kind != "restart leader" {
		t.Fatalf("fault kinds %+v, want kill leader and restart leader (the skipped kill left out)", c.FaultKinds)
	}
	k := c.FaultKinds[0]
	if u := k.Unavailable; u.N != 3 || u.Min != 2 || u.Median != 2.5 || math.Abs(u.P90-2.9) > 1e-9 || u.Max != 3 {
		t.Errorf("kill leader unavailability %+v, want 2, 2.5, p90 2.9, 3", u)
	}
	if k.Detection.N != 3 || k.Detection.Median != 0.5 || k.Convergence.N != 0 {
		t.Errorf("detection %+v convergence %+v", k.Detection, k.Convergence)
	}
	sig := func(fig string) *Comparison {
		for _, x := range s.Comparisons {
			if x.Figure == fig {
				return &x
			}
		}
		return nil
	}
	// Rates overlap (900–1000 against 940–960): not significant.
	if x := sig("publish_rate"); x == nil || x.Significant {
		t.Errorf("publish rate comparison %+v, want not significant", x)
	}
	// Unavailability 2–3 s against 10–12 s: significant, coordinator better.
	for _, fig := range []string{"max_unavailability_s", "unavailable_s[kill leader]"} {
		if x := sig(fig); x == nil || !x.Significant || x.Better != "coordinator" || math.Abs(x.P-0.1) > 1e-12 {
			t.Errorf("%s comparison %+v, want significant, coordinator better, p 0.1", fig, x)
		}
	}
	// Equal values everywhere: compared, not significant.
	if x := sig("publish_p99_ms"); x == nil || x.Significant {
		t.Errorf("p99 comparison %+v", x)
	}
}

// TestRepeatReportMarksSignificance: the reports of a repeated result give
// medians with ranges, call overlapping differences not significant and
// disjoint ones significant, and list the fault-kind distribution.
func TestRepeatReportMarksSignificance(t *testing.T) {
	r := repeatedResult()
	r.Repeats = AggregateRepeats(r)
	md := RenderMarkdown(r)
	for _, want := range []string{
		"|       980 (900–1000) |        950 (940–960) | none (within the spread)          |",
		"coordinator < nameserver (p 0.10)",
		"publish rate (acked/s): coordinator 980 (900–1000) and nameserver 950 (940–960); the difference lies within the spread (not significant).",
		"After kill leader, write unavailability: coordinator p50 2.50 s (min 2.00 s, p90 2.90 s, max 3.00 s) and nameserver p50 11.0 s (min 10.0 s, p90 11.8 s, max 12.0 s); significant: coordinator < nameserver (p 0.10).",
		"| kill leader    | coordinator |   3 |",
		"coordinator #2",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
	page, err := RenderHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"publish rate (acked/s) over the repeats", "write unavailability per kind of fault", "none (within the spread)", "The first repeat of each topology."} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// FuzzParseRandom: any random section either fails with a SpecError or
// draws only valid faults inside the run.
func FuzzParseRandom(f *testing.F) {
	f.Add("seed: 1\nevery: 10s\nfaults: [kill leader, isolate leader, pause broker]")
	f.Add("{seed: 18446744073709551615, every: 1ms, for: 999us, faults: [stop follower, power-loss broker, kill nameserver 1]}")
	f.Add("{seed: 3, every: 59s, start: 0s, faults: [kill etcd, pause controller]}")
	f.Fuzz(func(t *testing.T, random string) {
		yaml := randomBase + "random:\n" + indent(random)
		s, err := Parse("fuzz.yaml", []byte(yaml))
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		for _, fl := range s.Draw(0) {
			if err := fl.check(); err != nil || fl.At+fl.For > s.Workload.Duration {
				t.Fatalf("drawn %v: %v", fl, err)
			}
		}
	})
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// repeatRuntime is a runtime of this file's test: a deployment per start
// that records the faults applied to it; clients send nothing.
const repeatRuntime = "runner-test-repeat"

var (
	repeatMu   sync.Mutex
	repeatDeps []*recordingDeployment
)

func init() {
	RegisterDriver(repeatRuntime, "kafka-external", func(_ context.Context, env Env) (Deployment, error) {
		repeatMu.Lock()
		defer repeatMu.Unlock()
		d := &recordingDeployment{dataDir: env.DataDir}
		repeatDeps = append(repeatDeps, d)
		return d, nil
	})
}

type recordingDeployment struct {
	stubDeployment
	dataDir string
	mu      sync.Mutex
	applied []string
}

type idleProducer struct{}

func (idleProducer) Run(context.Context, func(history.Send)) error { return nil }

func (d *recordingDeployment) NewProducer(ProducerConfig) (Producer, error) {
	return idleProducer{}, nil
}
func (d *recordingDeployment) NewConsumer(ConsumerConfig) (Consumer, error) {
	d.running.Add(1)
	return blockingConsumer{blockingClient{&d.stubDeployment}}, nil
}
func (d *recordingDeployment) Apply(_ context.Context, st Step, node string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = append(d.applied, string(st.Action)+" "+st.Target.String())
	if node != "" {
		return node, nil
	}
	return st.Target.String(), nil
}

// TestRunnerFiresEachRepeatsSchedule: with repeat: 2 and a random
// schedule, the runner starts a deployment per run (fresh data directory)
// and applies to each exactly the faults its repeat's seed draws, each
// followed by its undo; results record the seed.
func TestRunnerFiresEachRepeatsSchedule(t *testing.T) {
	spec, err := Parse("rep.yaml", []byte("name: rep\ntopologies: [kafka-external]\n"+
		"topic: {partitions: 3, replication: 1, min_insync: 1}\n"+
		"workload: {producers: 1, consumers: 1, duration: 2s, warmup: 1s, drain: 1s}\n"+
		"repeat: 2\nrandom: {seed: 5, every: 500ms, start: 200ms, for: 200ms, faults: [kill leader, pause broker]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	repeatMu.Lock()
	repeatDeps = nil
	repeatMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := RunScenario(ctx, spec, RunOptions{Out: t.TempDir(), Runtime: repeatRuntime})
	if err != nil {
		t.Fatal(err)
	}
	repeatMu.Lock()
	deps := repeatDeps
	repeatMu.Unlock()
	if len(deps) != 2 || len(res.Topologies) != 2 || deps[0].dataDir == deps[1].dataDir {
		t.Fatalf("%d deployments, %d results, want 2 each with their own data directories", len(deps), len(res.Topologies))
	}
	for r, d := range deps {
		var want []string
		for _, st := range spec.TimelineFor(r) {
			want = append(want, string(st.Action)+" "+st.Target.String())
		}
		d.mu.Lock()
		got := d.applied
		d.mu.Unlock()
		if len(want) != 8 || !reflect.DeepEqual(got, want) {
			t.Errorf("repeat %d applied %v, its seed draws %v", r+1, got, want)
		}
		tr := res.Topologies[r]
		if tr.Repeat != r+1 || tr.FaultSeed == nil || *tr.FaultSeed != 5+uint64(r) {
			t.Errorf("result %d: repeat %d, seed %v; want %d and %d", r, tr.Repeat, tr.FaultSeed, r+1, 5+r)
		}
	}
}

// TestRepeatedSweep: a repeated rate sweep groups runs by topology and
// rate, labels each run with rate and repeat, and its sweep table reads
// medians.
func TestRepeatedSweep(t *testing.T) {
	spec := DefaultSpec()
	spec.Name, spec.Repeat, spec.Topologies, spec.Workload.Rates = "sweep", 2, []Topology{"coordinator", "nameserver"}, []float64{1000, 2000}
	var runs []TopologyResult
	for _, p := range RunOrder(spec.Topologies, 2, 2) {
		rate := spec.Workload.Rates[p.Step]
		runs = append(runs, TopologyResult{Topology: p.Topology, TargetRate: rate, Repeat: p.Repeat + 1,
			Summary: Summary{PublishRate: rate - float64(10*p.Repeat), PublishP99Ms: float64(5 + p.Repeat)}})
	}
	r := Result{Version: ResultVersion, Scenario: spec, Topologies: runs}
	r.Repeats = AggregateRepeats(r)
	if len(r.Repeats.Groups) != 4 {
		t.Fatalf("%d groups, want 4 (2 topologies × 2 rates)", len(r.Repeats.Groups))
	}
	if got := label(runs, 1); got != "coordinator @ 2000/s #1" {
		t.Errorf("label of run 1 %q, want coordinator @ 2000/s #1", got)
	}
	md := RenderMarkdown(r)
	for _, want := range []string{"medians over the repeats", "995/s, p99 5.50 ms", "1995/s, p99 5.50 ms", "### at 2000/s"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
	if _, err := RenderHTML(r); err != nil {
		t.Fatal(err)
	}
}
