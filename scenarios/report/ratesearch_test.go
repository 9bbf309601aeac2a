package report

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func TestSearchReport(t *testing.T) {
	rs := &scenario.RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000}
	full := rs.WithDefaults()
	probe := func(_ int, rate float64) analysis.TopologyResult {
		tr := analysis.TopologyResult{Summary: analysis.Summary{PublishRate: rate, PublishP99Ms: 10}}
		if rate > 23000 {
			tr.Summary.PublishRate, tr.Summary.PublishP99Ms = 23000, 900
		}
		return tr
	}
	res := Result{Scenario: scenario.DefaultSpec(), Searches: []analysis.SearchResult{analysis.Search(context.Background(), full, probe)}}
	res.Scenario.Workload.RateSearch = &full
	res.Searches[0].Topology = "coordinator"
	md := RenderMarkdown(res)
	for _, want := range []string{"## Rate search", "a searched rate (5000/s to 200k/s, p99 below 50ms)", "| coordinator", "stayed below 50ms", "✗ kept up"} {
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

// A repeated search lists each repeat and each topology's knee spread.
func TestRepeatedSearchReport(t *testing.T) {
	full := (&scenario.RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000}).WithDefaults()
	knee := 23000.0
	probe := func(_ int, rate float64) analysis.TopologyResult {
		tr := analysis.TopologyResult{Summary: analysis.Summary{PublishRate: rate, PublishP99Ms: 10}}
		if rate > knee {
			tr.Summary.PublishRate, tr.Summary.PublishP99Ms = knee, 900
		}
		return tr
	}
	res := Result{Scenario: scenario.DefaultSpec()}
	res.Scenario.Workload.RateSearch = &full
	res.Scenario.Repeat = 3
	var knees []float64
	for r := range 3 {
		knee = []float64{23000, 12000, 40000}[r]
		sr := analysis.Search(context.Background(), full, probe)
		sr.Topology, sr.Repeat = "coordinator", r
		knees = append(knees, sr.Knee)
		res.Searches = append(res.Searches, sr)
	}
	if AggregateRepeats(res) != nil {
		t.Error("probes of a repeated search were aggregated as repeats of one run")
	}
	s := NewSpread(knees)
	md := RenderMarkdown(res)
	for _, want := range []string{"| coordinator (repeat 1)", "| coordinator (repeat 3)", "| coordinator over 3 searches",
		fmtRate(s.Median) + " (" + fmtRate(s.Min) + "–" + fmtRate(s.Max) + ")"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}
