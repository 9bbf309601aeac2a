package report

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

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
	spec := scenario.DefaultSpec()
	spec.Name, spec.Repeat, spec.Topologies = "rep", 3, []scenario.Topology{"coordinator", "nameserver"}
	det := 0.5
	mk := func(top scenario.Topology, rep int, rate, unav float64) analysis.TopologyResult {
		return analysis.TopologyResult{Topology: top, Repeat: rep, TargetRate: 1000,
			Summary: analysis.Summary{PublishRate: rate, PublishP99Ms: 10, MaxUnavailabilityS: unav, Sent: 100, Acked: 100},
			Faults: []analysis.FaultResult{
				{Action: scenario.ActionKill, Target: "leader-of bench/0", UnavailableS: unav, Recovered: true, DetectionS: &det},
				{Action: scenario.ActionRestart, Target: "leader-of bench/0", Recovered: true},
				{Action: scenario.ActionKill, Target: "controller", Err: "skipped: target does not exist"},
			}}
	}
	return Result{Version: ResultVersion, Scenario: spec, Topologies: []analysis.TopologyResult{
		mk("coordinator", 1, 900, 2), mk("nameserver", 1, 950, 10),
		mk("coordinator", 2, 1000, 3), mk("nameserver", 2, 960, 12),
		mk("coordinator", 3, 980, 2.5), mk("nameserver", 3, 940, 11),
	}}
}

func TestAggregateRepeats(t *testing.T) {
	if AggregateRepeats(Result{Topologies: []analysis.TopologyResult{{Topology: "coordinator"}}}) != nil {
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

// TestRepeatedSweep: a repeated rate sweep groups runs by topology and
// rate, labels each run with rate and repeat, and its sweep table reads
// medians.
func TestRepeatedSweep(t *testing.T) {
	spec := scenario.DefaultSpec()
	spec.Name, spec.Repeat, spec.Topologies, spec.Workload.Rates = "sweep", 2, []scenario.Topology{"coordinator", "nameserver"}, []float64{1000, 2000}
	var runs []analysis.TopologyResult
	for rep := range 2 { // the runner's order: repeat, topology, rate
		for _, top := range spec.Topologies {
			for _, rate := range spec.Workload.Rates {
				runs = append(runs, analysis.TopologyResult{Topology: top, TargetRate: rate, Repeat: rep + 1,
					Summary: analysis.Summary{PublishRate: rate - float64(10*rep), PublishP99Ms: float64(5 + rep)}})
			}
		}
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
