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
