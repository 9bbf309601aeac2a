package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// sampleResult is a two-topology result: coordinator fails over cleanly,
// nameserver loses one acked message and is unwritable for longer.
func sampleResult(t *testing.T) Result {
	t.Helper()
	spec, err := scenario.Load("../scenario/testdata/design-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(topo scenario.Topology, gap time.Duration, lose int64) analysis.TopologyResult {
		run := analysis.Synthetic{Rate: 500, Duration: 20 * time.Second, Warmup: 3 * time.Second, Partitions: 3,
			AckLatency: 2 * time.Millisecond, RecvDelay: 3 * time.Millisecond,
			Edit: func(s *history.Send) bool {
				if off := s.Intended.Sub(analysis.SyntheticStart); s.Partition == 0 && off >= 8*time.Second && off < 8*time.Second+gap {
					s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
				}
				return s.Seq != lose
			}}.Run()
		run.Topology = topo
		run.Faults = []analysis.FaultEvent{
			{At: analysis.SyntheticAt(8 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 0", Detected: analysis.SyntheticAt(10 * time.Second)},
			{At: analysis.SyntheticAt(14 * time.Second), Action: scenario.ActionRestart, Target: "killed", Node: "broker 0"},
		}
		for i := range 21 {
			run.ControlPlane = append(run.ControlPlane, analysis.CPSample{At: analysis.SyntheticAt(time.Duration(i) * time.Second), Kind: topo + "/heartbeat", Requests: int64(3 * i), Bytes: int64(300 * i)})
		}
		return analysis.Analyze(run, analysis.DefaultAnalysisConfig())
	}
	return Result{
		Scenario: spec,
		Environment: Environment{CPUModel: "Test CPU", Cores: 2, GoVersion: "go1.26", OS: "linux", Arch: "amd64",
			Commit: "0123456789abcdef", Start: analysis.SyntheticStart},
		Runtime:    scenario.RuntimeInProcess,
		Topologies: []analysis.TopologyResult{mk("coordinator", 2*time.Second, -1), mk("nameserver", 5*time.Second, 1234)},
	}
}

// row finds the markdown table row whose first cell is name.
func row(t *testing.T, md, name string) []string {
	t.Helper()
	for _, l := range strings.Split(md, "\n") {
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) > 1 && strings.TrimSpace(cells[0]) == name {
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			return cells
		}
	}
	t.Fatalf("no row %q in:\n%s", name, md)
	return nil
}

func TestRenderMarkdown(t *testing.T) {
	r := sampleResult(t)
	md := RenderMarkdown(r)
	if h := row(t, md, "metric"); !reflect.DeepEqual(h, []string{"metric", "coordinator", "nameserver"}) {
		t.Errorf("header %v", h)
	}
	if got := row(t, md, "acked but lost"); got[1] != "0" || got[2] != "1" {
		t.Errorf("lost row %v", got)
	}
	got := row(t, md, "max write unavailability (s)")
	if got[1] != fmtSec(r.Topologies[0].Summary.MaxUnavailabilityS) || got[1] == got[2] {
		t.Errorf("unavailability row %v", got)
	}
	if got := row(t, md, "failure detection (s)"); got[1] != "2.00" {
		t.Errorf("detection row %v", got)
	}
	if got := row(t, md, "route convergence (s)"); got[1] != "–" {
		t.Errorf("convergence row %v (unknown must show a dash)", got)
	}
	if got := row(t, md, "control-plane requests/s"); got[1] != "3.00" {
		t.Errorf("control-plane row %v", got)
	}
	// The fault table has a row per fault and topology.
	if n := strings.Count(md, "| F1 kill leader-of bench/0"); n != 2 {
		t.Errorf("%d kill rows, want 2:\n%s", n, md)
	}
	for _, want := range []string{"# brokerlab: leader-failover", "Test CPU, 2 cores", "commit 0123456789ab", "## Faults",
		"## Checker findings", "| nameserver | lost ", "acked, never received"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestMarkdownTableEscapes(t *testing.T) {
	md := table{header: []string{"a", "b"}, rows: [][]string{{"x|y", "line\nbreak"}}}.markdown()
	if !strings.Contains(md, `x\|y`) || strings.Count(md, "\n") != 3 {
		t.Errorf("table:\n%s", md)
	}
}

func TestRenderHTML(t *testing.T) {
	r := sampleResult(t)
	page, err := RenderHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			counts[n.Data]++
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("external reference <%s %s=%q>: the page must be self-contained", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if counts["script"] != 0 || counts["link"] != 0 || counts["img"] != 0 {
		t.Errorf("page uses script/link/img: %v", counts)
	}
	// 2 throughput + 2 latency spectra + 1 unavailability chart.
	if counts["svg"] != 5 {
		t.Errorf("%d svg charts, want 5", counts["svg"])
	}
	if counts["table"] != 5 {
		t.Errorf("%d tables, want 5 (verdict, side by side, faults, control plane, checker)", counts["table"])
	}
	svgs := extractSVGs(string(page))
	if len(svgs) != 5 {
		t.Fatalf("%d svg fragments", len(svgs))
	}
	for i, s := range svgs {
		if err := wellFormedXML(s); err != nil {
			t.Errorf("svg %d is not well-formed XML: %v", i, err)
		}
	}
	text := string(page)
	for _, want := range []string{"F1 kill", "warm-up", "coordinator", "nameserver", "write unavailability per fault", "99.9%",
		`<h2 id="summary">`, "coordinator recovered first: 2.00 s", `href="#faults"`, `href="#checker-findings"`, `id="checker-findings"`} {
		if !strings.Contains(text, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

func extractSVGs(page string) []string {
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		if j < 0 {
			return append(out, page[i:])
		}
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j+len("</svg>"):]
	}
}

func wellFormedXML(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func TestRenderHTMLEscapesAndEdgeCases(t *testing.T) {
	r := sampleResult(t)
	r.Scenario.Description = `<script>alert("x")</script> & co`
	r.Topologies[1].Error = "broker <2> crashed"
	page, err := RenderHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(page), "<script>") || !strings.Contains(string(page), "broker &lt;2&gt; crashed") {
		t.Error("text is not escaped")
	}
	// Degenerate results render without panicking: nothing at all, no
	// samples, negative and huge values.
	odd := []Result{
		{},
		{Topologies: []analysis.TopologyResult{{Topology: "gossip"}}},
		{Topologies: []analysis.TopologyResult{{Topology: "coordinator", Series: analysis.Series{Acked: []int64{-5, 1 << 60}},
			Latency: analysis.Latencies{Publish: analysis.LatencyStats{Count: 3, P50Ms: -1, MaxMs: 1e12, HDR: "garbage"}},
			Faults:  []analysis.FaultResult{{AtS: -3, UnavailableS: -1}, {AtS: 1e9}},
			Summary: analysis.Summary{PublishRate: 1e9},
		}}},
	}
	for i, o := range odd {
		if _, err := RenderHTML(o); err != nil {
			t.Errorf("result %d: %v", i, err)
		}
		_ = RenderMarkdown(o)
	}
}

func TestSweepChart(t *testing.T) {
	var all []analysis.TopologyResult
	for _, topo := range []scenario.Topology{"coordinator", "nameserver"} {
		for i, rate := range []float64{1000, 2000, 0} {
			all = append(all, analysis.TopologyResult{Topology: topo, TargetRate: rate,
				Summary: analysis.Summary{PublishRate: float64(1000 * (i + 1)), PublishP99Ms: float64(i*i + 1)}})
		}
	}
	svg, legend, err := sweepChart(all)
	if err != nil || svg == "" {
		t.Fatalf("sweep chart: %q, %v", svg, err)
	}
	if len(legend) != 2 || legend[0].Name != "coordinator" || legend[1].Name != "nameserver" {
		t.Errorf("legend %+v, want one entry per topology", legend)
	}
	if err := wellFormedXML(svg); err != nil {
		t.Error(err)
	}
	if got := labels(all); got[2] != "coordinator @ max" || got[4] != "nameserver @ 2000/s" {
		t.Errorf("labels %v", got)
	}
	if svg, _, _ := sweepChart(all[:1]); svg != "" {
		t.Error("a single step drew a sweep chart")
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := sampleResult(t)
	b, err := MarshalResult(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalResult(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := MarshalResult(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Error("result.json changes when read and written again")
	}
	// Times are compared with Equal (the location pointer differs).
	if !back.Environment.Start.Equal(r.Environment.Start) || !back.Topologies[1].WarmupEnd.Equal(r.Topologies[1].WarmupEnd) {
		t.Error("times differ")
	}
	if !sameJSON(t, back.Scenario, r.Scenario) || !reflect.DeepEqual(back.Topologies[1].Check, r.Topologies[1].Check) ||
		!reflect.DeepEqual(back.Topologies[0].Latency, r.Topologies[0].Latency) || !reflect.DeepEqual(back.Topologies[1].Faults, r.Topologies[1].Faults) {
		t.Error("round trip differs")
	}
	// The documented keys are there.
	var raw struct {
		Topologies []struct {
			Summary map[string]any `json:"summary"`
		} `json:"topologies"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"acked", "lost", "duplicated", "reordered", "indeterminate", "failed", "publish_rate",
		"publish_p50_ms", "publish_p99_ms", "publish_p999_ms", "e2e_p99_ms", "max_unavailability_s", "detection_s",
		"convergence_s", "cp_requests_per_s", "cp_bytes_per_s"} {
		if _, ok := raw.Topologies[0].Summary[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	if !strings.Contains(string(b), `"target": "leader-of bench/0"`) {
		t.Error("fault targets are not written in their text form")
	}
}

func TestReadResultErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage.json": "{not json",
		"future.json":  `{"version": 99}`,
		"old.json":     `{"version": 0}`,
		"target.json":  `{"version": 1, "scenario": {"faults": [{"target": "the leader"}]}}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadResult(path); err == nil {
			t.Errorf("%s: no error", name)
		} else if !errors.Is(err, analysis.ErrResult) {
			t.Errorf("%s: %v does not wrap ErrResult", name, err)
		}
	}
	if _, err := ReadResult(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestWriteAllAndRerender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	r := sampleResult(t)
	if err := WriteAll(dir, r); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	md, page := read(ReportMarkdownFile), read(ReportHTMLFile)
	for _, name := range []string{ReportMarkdownFile, ReportHTMLFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Rerender(dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(ReportMarkdownFile), md) || !bytes.Equal(read(ReportHTMLFile), page) {
		t.Error("re-rendered reports differ from the originals")
	}
	back, err := ReadResult(dir)
	if err != nil || back.Scenario.Name != r.Scenario.Name {
		t.Errorf("ReadResult(dir): %v %q", err, back.Scenario.Name)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("output dir holds %d files, want 3 (no temporaries left)", len(entries))
	}
}

func TestCompare(t *testing.T) {
	a := sampleResult(t)
	b := sampleResult(t)
	b.Topologies = b.Topologies[:1]
	b.Topologies[0].Summary.PublishP99Ms = 42.5
	out := Compare([]Result{a, b})
	if h := row(t, out, "metric"); !reflect.DeepEqual(h, []string{"metric", "#1 coordinator", "#1 nameserver", "#2 coordinator"}) {
		t.Errorf("header %v", h)
	}
	if got := row(t, out, "publish p99 (ms)"); got[3] != "42.5" {
		t.Errorf("p99 row %v", got)
	}
	if !strings.HasPrefix(out, "#1 leader-failover: inprocess; Test CPU") {
		t.Errorf("legend:\n%s", out)
	}
	if out := Compare(nil); !strings.Contains(out, "no topology results") {
		t.Errorf("empty compare: %q", out)
	}
}

func TestCaptureEnvironment(t *testing.T) {
	env := CaptureEnvironment(t.Context(), analysis.SyntheticStart)
	if env.Cores < 1 || env.GoVersion == "" || env.OS == "" || env.CPUModel == "" || !env.Start.Equal(analysis.SyntheticStart) {
		t.Errorf("environment %+v", env)
	}
}

// TestSampleReport renders a three-topology report with realistic latency
// spread. Set BROKERLAB_SAMPLE_REPORT=DIR to keep it for a look in a browser.
func TestSampleReport(t *testing.T) {
	r := sampleResult(t)
	r.Topologies = nil
	for i, topo := range []scenario.Topology{"coordinator", "nameserver", "jetstream"} {
		x := uint64(i + 1)
		run := analysis.Synthetic{Rate: 2000, Duration: 20 * time.Second, Warmup: 3 * time.Second, Partitions: 3,
			AckLatency: 2 * time.Millisecond, RecvDelay: 3 * time.Millisecond,
			Edit: func(s *history.Send) bool {
				x ^= x << 13 // xorshift: deterministic spread
				x ^= x >> 7
				x ^= x << 17
				u := float64(x%1_000_000)/1_000_000 + 1e-6
				s.Done = s.Done.Add(time.Duration(-math.Log(u) * float64(time.Millisecond) * float64(i+1)))
				if off := s.Intended.Sub(analysis.SyntheticStart); s.Partition == 0 && off >= 8*time.Second && off < 8*time.Second+time.Duration(i+1)*time.Second {
					s.Outcome, s.Err = history.Failed, "NOT_LEADER_OR_FOLLOWER"
				}
				return true
			}}.Run()
		run.Topology = topo
		run.Faults = []analysis.FaultEvent{
			{At: analysis.SyntheticAt(8 * time.Second), Action: scenario.ActionKill, Target: "leader-of bench/0", Node: "broker 0", Detected: analysis.SyntheticAt(10 * time.Second), Converged: analysis.SyntheticAt(10*time.Second + time.Duration(i)*time.Second)},
			{At: analysis.SyntheticAt(14 * time.Second), Action: scenario.ActionRestart, Target: "killed", Node: "broker 0"},
		}
		r.Topologies = append(r.Topologies, analysis.Analyze(run, analysis.DefaultAnalysisConfig()))
	}
	dir := os.Getenv("BROKERLAB_SAMPLE_REPORT")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := WriteAll(dir, r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	got := row(t, string(md), "max write unavailability (s)")
	if want := []string{"max write unavailability (s)", "1.00", "2.00", "3.00"}; !reflect.DeepEqual(got, want) {
		t.Errorf("unavailability row %v, want %v", got, want)
	}
}

// FuzzUnmarshalResult feeds arbitrary result.json content through the reader
// and both renderers, as `brokerlab report` and `compare` would: errors are
// fine, panics are not.
func FuzzUnmarshalResult(f *testing.F) {
	f.Add([]byte(`{"version": 1}`))
	f.Add([]byte(`{"version": 1, "topologies": [{"topology": "coordinator", "series": {"acked": [1, -2, 3]},
		"latency": {"publish": {"count": 5, "max_ms": -1, "hdr": "HISTFAAAACl4nJNpmSzMwMDAxQABzFCaEUzOmNZg/wEi0NzIyPSYlWmpg5mxKQA"}},
		"faults": [{"at_s": 1e308, "action": "kill", "unavailable_s": -5, "detection_s": null}]}]}`))
	f.Add([]byte(`{"version": 1, "scenario": {"faults": [{"target": "leader-of bench/0 - broker 1"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalResult(data)
		if err != nil {
			if !errors.Is(err, analysis.ErrResult) {
				t.Fatalf("error does not wrap ErrResult: %v", err)
			}
			return
		}
		_ = RenderMarkdown(r)
		_ = Compare([]Result{r, r})
		if _, err := RenderHTML(r); err != nil {
			t.Fatalf("render: %v", err)
		}
	})
}

// A partition the verification read could not read to its end has its own
// section in both reports.
func TestUnreadablePartitionsInReport(t *testing.T) {
	run := analysis.Synthetic{Rate: 100, Duration: 10 * time.Second, Partitions: 2, AckLatency: 5 * time.Millisecond}.Run()
	run.FinalStart, run.FinalEnd = analysis.SyntheticAt(20*time.Second), analysis.SyntheticAt(50*time.Second)
	run.Final = []history.Receive{}
	for _, r := range run.Receives {
		if r.Partition == 1 {
			run.Final = append(run.Final, r)
		}
	}
	run.FinalReads = []analysis.PartitionRead{{Partition: 0, Position: 0, HighWatermark: 0}, {Partition: 1, Position: 500, HighWatermark: 500}}
	r := Result{Topologies: []analysis.TopologyResult{analysis.Analyze(run, analysis.DefaultAnalysisConfig())}}
	if r.Topologies[0].Check.Unreadable == 0 {
		t.Fatalf("no unreadable messages: %+v", r.Topologies[0].Check)
	}
	md := RenderMarkdown(r)
	for _, want := range []string{"## Unreadable partitions", "acked, unreadable", "consumed (live, distinct)", "high watermark 0 below the acknowledged end"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	page, err := RenderHTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "Unreadable partitions") {
		t.Error("report.html lacks the unreadable partitions")
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
