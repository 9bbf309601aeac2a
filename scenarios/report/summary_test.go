package report

import (
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"strings"
	"testing"
)

func TestFindingsSampleResult(t *testing.T) {
	r := sampleResult(t)
	fs := findings(r.Topologies)
	var text []string
	for _, f := range fs {
		text = append(text, f.Text+" #"+f.Anchor)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{
		"After F1 (kill leader-of bench/0 at 8.00 s), coordinator recovered first: 2.00 s of write unavailability, against nameserver 5.00 s (2.5× as long for the next). Detection: coordinator 2.00 s and nameserver 2.00 s. #faults",
		"nameserver: 1 acknowledged message lost. #checker-findings",
		"coordinator lost, duplicated and reordered nothing. #checker-findings",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("findings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "F2") {
		t.Errorf("the restart, which stopped no writes, is called out:\n%s", all)
	}
}

func TestFindingsSweepSaturation(t *testing.T) {
	var all []analysis.TopologyResult
	for _, c := range []struct {
		topo      scenario.Topology
		rate, got float64
		p99       float64
	}{
		{"coordinator", 1000, 1000, 3}, {"coordinator", 10000, 9900, 8}, {"coordinator", 50000, 31000, 2100},
		{"nameserver", 1000, 999, 2}, {"nameserver", 10000, 9990, 4}, {"nameserver", 50000, 49500, 40},
	} {
		all = append(all, analysis.TopologyResult{Topology: c.topo, TargetRate: c.rate, Summary: analysis.Summary{PublishRate: c.got, PublishP99Ms: c.p99, Sent: 1}})
	}
	var text []string
	for _, f := range findings(all) {
		text = append(text, f.Text)
	}
	got := strings.Join(text, "\n")
	for _, want := range []string{
		"No topology lost, duplicated or reordered a message: coordinator and nameserver delivered every acknowledged message once, in order.",
		"coordinator kept up to 10k/s (p99 8.00 ms); at 50k/s it acked 31k/s with p99 2.10 s: saturated.",
		"nameserver kept up with every swept rate, up to 50k/s (p99 40.0 ms).",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}
	groups := sideBySideGroups(all)
	if len(groups) != 3 || len(groups[0].results) != 2 || groups[0].title != "at 1000/s" || groups[2].title != "at 50k/s" {
		t.Fatalf("groups %+v: want one per rate with both topologies", groups)
	}
	st := sweepTable(all)
	if len(st.rows) != 3 || len(st.header) != 3 || st.rows[2][1] != "31k/s, p99 2.10 s" {
		t.Errorf("sweep table %v %v", st.header, st.rows)
	}
}

func TestHumanNumbers(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{humanNumber(1941), "1941"}, {humanNumber(44400), "44.4k"}, {humanNumber(50000), "50k"}, {humanNumber(1.25e6), "1.2M"},
		{humanSeconds(0.09), "90.0 ms"}, {humanSeconds(1.92), "1.92 s"}, {humanSeconds(300), "5.00 min"}, {humanSeconds(0), "0 s"},
		{humanMs(2100), "2.10 s"}, {humanMs(5.5), "5.50 ms"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
