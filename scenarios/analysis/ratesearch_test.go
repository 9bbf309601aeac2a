package analysis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

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
	base := scenario.RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000}.WithDefaults()
	for _, tt := range []struct {
		name       string
		rs         scenario.RateSearch
		knee       float64
		wantKnee   func(k float64) bool
		wantEnd    string
		wantProbes int // at most
	}{
		{"knee between", base, 23000, func(k float64) bool { return k <= 23000 && k >= 23000/1.1 }, "knee within 10 %", 8},
		{"above max", base, 1e6, func(k float64) bool { return k == 200000 }, "passed at max", 7},
		{"below min", base, 100, func(k float64) bool { return k == 0 }, "failed at min", 6},
		{"step budget", func() scenario.RateSearch { r := base; r.Steps = 2; return r }(), 23000, func(k float64) bool { return k == 10000 }, "step budget (2 probes) spent", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Search(context.Background(), tt.rs, fakeCluster(tt.knee))
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
	r := scenario.RateSearch{P99Below: 50 * time.Millisecond, KeepUp: 0.95}
	for _, tt := range []struct {
		tr   TopologyResult
		pass bool
		why  string
	}{
		{TopologyResult{Summary: Summary{PublishRate: 960, PublishP99Ms: 49}}, true, ""},
		{TopologyResult{Summary: Summary{PublishRate: 940, PublishP99Ms: 10}}, false, "kept up 94 %"},
		{TopologyResult{Summary: Summary{PublishRate: 1000, PublishP99Ms: 50}}, false, "p99 50 ms ≥ 50 ms"},
		{TopologyResult{Error: "boom", Summary: Summary{PublishRate: 1000}}, false, "failed: boom"},
	} {
		s := Judge(r, 1000, tt.tr)
		if s.Pass != tt.pass || !strings.Contains(s.Reason, tt.why) {
			t.Errorf("%+v: pass %v reason %q, want %v %q", tt.tr.Summary, s.Pass, s.Reason, tt.pass, tt.why)
		}
	}
}
