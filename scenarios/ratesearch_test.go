package scenarios

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRateSearch(t *testing.T) {
	s, err := Parse("s.yaml", []byte("workload:\n  rate_search: {p99_below: 50ms, start: 5k, max: 200000, keep_up: 90%}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000, Min: 5000.0 / 16,
		Steps: defaultSearchSteps, KeepUp: 0.9, Precision: defaultSearchPrecision}
	if got := s.Workload.RateSearch; got == nil || *got != want {
		t.Fatalf("rate_search %+v, want %+v", got, want)
	}
	if line := scenarioLine(s); !strings.Contains(line, "a searched rate (5000/s to 200k/s, p99 below 50ms)") {
		t.Errorf("setup line: %s", line)
	}
}

func TestParseRateSearchErrors(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"both", "workload:\n  rate: 1000\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000}", "bad.yaml:3: workload.rate_search: set workload.rate or workload.rate_search, not both"},
		{"no bound", "workload:\n  rate_search:\n    start: 1000\n    max: 2000", "bad.yaml:2: workload.rate_search.p99_below: 0s out of range"},
		{"max below start", "workload:\n  rate_search:\n    p99_below: 50ms\n    start: 1000\n    max: 500", "bad.yaml:5: workload.rate_search.max: 500 out of range [start 1000"},
		{"unbounded start", "workload:\n  rate_search:\n    p99_below: 50ms\n    start: max", `bad.yaml:4: workload.rate_search.start: "max": want a bounded rate here`},
		{"too many steps", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, steps: 50}", "bad.yaml:2: workload.rate_search.steps: 50 out of range [1, 20]"},
		{"keep_up above 1", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, keep_up: 1.5}", "workload.rate_search.keep_up: 1.5 out of range (0, 1]"},
		{"bad fraction", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, precision: some}", `workload.rate_search.precision: "some" is not a fraction`},
		{"min above start", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, min: 3000}", "workload.rate_search.min: 3000 out of range (0, start 1000]"},
		{"unknown field", "workload:\n  rate_search:\n    p99: 50ms", "bad.yaml:3: workload.rate_search.p99: unknown field"},
		{"not a mapping", "workload:\n  rate_search: 5000", "bad.yaml:2: workload.rate_search: want a mapping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// fakeCluster sustains rates up to knee: above it the producers fall
// behind and p99 grows.
func fakeCluster(knee float64) func(int, float64) TopologyResult {
	return func(_ int, rate float64) TopologyResult {
		tr := TopologyResult{Summary: Summary{PublishRate: rate, PublishP99Ms: 10}}
		if rate > knee {
			tr.Summary.PublishRate, tr.Summary.PublishP99Ms = knee, 900
		}
		return tr
	}
}

func TestRateSearchConverges(t *testing.T) {
	base := RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000}.withDefaults()
	for _, tt := range []struct {
		name       string
		rs         RateSearch
		knee       float64
		wantKnee   func(k float64) bool
		wantEnd    string
		wantProbes int // at most
	}{
		{"knee between", base, 23000, func(k float64) bool { return k <= 23000 && k >= 23000/1.1 }, "knee within 10 %", 8},
		{"above max", base, 1e6, func(k float64) bool { return k == 200000 }, "passed at max", 7},
		{"below min", base, 100, func(k float64) bool { return k == 0 }, "failed at min", 6},
		{"step budget", func() RateSearch { r := base; r.Steps = 2; return r }(), 23000, func(k float64) bool { return k == 10000 }, "step budget (2 probes) spent", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rs.search(context.Background(), fakeCluster(tt.knee))
			if !tt.wantKnee(r.Knee) || !strings.HasPrefix(r.End, tt.wantEnd) || len(r.Steps) > tt.wantProbes {
				t.Fatalf("knee %v after %d probes (%s): %+v", r.Knee, len(r.Steps), r.End, r.Steps)
			}
			for _, s := range r.Steps {
				if s.Rate < tt.rs.Min || s.Rate > tt.rs.Max {
					t.Errorf("probe at %v outside [%v, %v]", s.Rate, tt.rs.Min, tt.rs.Max)
				}
				if s.Pass != (s.Rate <= tt.knee) {
					t.Errorf("probe %+v judged wrongly for a knee at %v", s, tt.knee)
				}
			}
			if r.Below != 0 && r.Below <= r.Knee {
				t.Errorf("first failure %v not above the knee %v", r.Below, r.Knee)
			}
		})
	}
}

func TestRateSearchJudge(t *testing.T) {
	r := RateSearch{P99Below: 50 * time.Millisecond, KeepUp: 0.95}
	for _, tt := range []struct {
		tr   TopologyResult
		pass bool
		why  string
	}{
		{TopologyResult{Summary: Summary{PublishRate: 960, PublishP99Ms: 49}}, true, ""},
		{TopologyResult{Summary: Summary{PublishRate: 940, PublishP99Ms: 10}}, false, "kept up 94 %"},
		{TopologyResult{Summary: Summary{PublishRate: 1000, PublishP99Ms: 50}}, false, "p99 50.0 ms ≥ 50.0 ms"},
		{TopologyResult{Error: "boom", Summary: Summary{PublishRate: 1000}}, false, "failed: boom"},
	} {
		s := r.judge(1000, tt.tr)
		if s.Pass != tt.pass || !strings.Contains(s.Reason, tt.why) {
			t.Errorf("%+v: pass %v reason %q, want %v %q", tt.tr.Summary, s.Pass, s.Reason, tt.pass, tt.why)
		}
	}
}

func TestSearchReport(t *testing.T) {
	rs := &RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000}
	full := rs.withDefaults()
	res := Result{Scenario: DefaultSpec(), Searches: []SearchResult{full.search(context.Background(), fakeCluster(23000))}}
	res.Scenario.Workload.RateSearch = &full
	res.Searches[0].Topology = "coordinator"
	md := RenderMarkdown(res)
	for _, want := range []string{"## Rate search", "| coordinator", "stayed below 50ms", "✗ kept up"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	html, err := RenderHTML(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `id="rate-search"`) {
		t.Errorf("report.html lacks the rate search section")
	}
}
