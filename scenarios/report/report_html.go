package report

import (
	"bytes"
	"fmt"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"html/template"
	"strings"
)

// htmlChart is one inlined SVG chart with its legend, or the reason it is
// missing.
type htmlChart struct {
	Caption string
	SVG     template.HTML // produced by gonum/plot's SVG backend, text escaped
	Legend  []legendItem
	Err     string
}

type htmlTable struct {
	Title  string
	Header []string
	Rows   [][]string
	Right  []bool   // numeric columns, aligned right
	Swatch []string // per row: a CSS colour shown before the first cell, or ""
}

type htmlFinding struct {
	Text   string
	Anchor string
}

type htmlPage struct {
	Title       string
	Description string
	Setup       string
	Runtime     string
	Environment string
	Errors      []string
	Findings    []htmlFinding
	Verdict     htmlTable
	SideBySide  []htmlTable
	SweepTable  htmlTable
	Search      htmlTable
	SearchNote  string
	Throughput  []htmlChart
	Latency     []htmlChart
	Sweep       []htmlChart
	Unavailable []htmlChart
	Faults      htmlTable
	// A repeated scenario's spread: the note, charts of the headline
	// figures, and the distribution per kind of fault.
	RepeatNote  string
	Spread      []htmlChart
	FaultKinds  htmlTable
	KindNote    string
	KindCharts  []htmlChart
	FirstRepeat bool // per-run charts show repeat 1 only
	Unreadable  htmlTable
	UnreadNote  string
	ControlPl   htmlTable
	Resources   htmlTable
	Samples     htmlTable
}

func toHTML(t table) htmlTable {
	return htmlTable{Header: t.header, Rows: t.rows, Right: t.numericColumns()}
}

func chart(caption string, svg string, legend []legendItem, err error) htmlChart {
	if err != nil {
		return htmlChart{Caption: caption, Err: err.Error()}
	}
	return htmlChart{Caption: caption, SVG: template.HTML(svg), Legend: legend}
}

// RenderHTML renders report.html: one self-contained page (inline CSS and
// SVG, no scripts, no network): the summary first, then the side-by-side
// tables, throughput over time per topology with a band per fault, the
// latency spectra, unavailability per fault, and the fault, control-plane
// and checker tables.
func RenderHTML(r Result) ([]byte, error) {
	all := r.Topologies
	heads := labels(all)
	page := htmlPage{
		Title:       "brokerlab: " + r.Scenario.Name,
		Description: strings.TrimSpace(r.Scenario.Description),
		Setup:       scenarioLine(r.Scenario),
		Runtime:     orDash(r.Runtime),
		Environment: environmentLine(r.Environment),
		Verdict:     toHTML(verdictTable(all, heads)),
		SweepTable:  toHTML(sweepTable(medianRuns(r.Topologies, r.Repeats))),
		Search:      toHTML(searchTable(r.Searches)),
		SearchNote:  searchNote(r.Scenario.Workload.RateSearch),
		Faults:      faultHTMLTable(all),
		Unreadable:  toHTML(unreadableTable(all)),
		UnreadNote:  unreadableNote,
		ControlPl:   toHTML(cpTable(all)),
		Resources:   toHTML(resourceTable(all)),
		Samples:     toHTML(sampleTable(all)),
	}
	fs := findings(all)
	if r.Repeats != nil {
		fs = repeatFindings(all, r.Repeats)
	}
	if len(all) > 0 {
		for _, f := range fs {
			page.Findings = append(page.Findings, htmlFinding(f))
		}
	}
	for i, tr := range all {
		if tr.Error != "" {
			page.Errors = append(page.Errors, heads[i]+": "+tr.Error)
		}
	}
	if r.Repeats != nil {
		page.repeated(r.Repeats)
		all = firstRepeat(all) // per-run charts: repeat 1
		heads = labels(all)
	} else {
		for _, g := range sideBySideGroups(all) {
			t := toHTML(summaryTable(g.results, labels(g.results)))
			t.Title = g.title
			page.SideBySide = append(page.SideBySide, t)
		}
	}
	page.Throughput = throughputCharts(all, heads)
	for _, m := range []struct {
		title string
		pick  func(analysis.Latencies) analysis.LatencyStats
	}{
		{"publish latency (from intended send time)", func(l analysis.Latencies) analysis.LatencyStats { return l.Publish }},
		{"end-to-end latency (intended send to first receive)", func(l analysis.Latencies) analysis.LatencyStats { return l.EndToEnd }},
	} {
		// A sweep gets small multiples, one chart per rate, so no chart
		// holds more than one line per topology.
		for _, g := range sideBySideGroups(all) {
			title := m.title
			if g.title != "" {
				title += " " + g.title
			}
			svg, legend, err := latencyChart(g.results, labels(g.results), title, m.pick)
			if svg != "" || err != nil {
				page.Latency = append(page.Latency, chart(title, svg, legend, err))
			}
		}
	}
	if svg, legend, err := sweepChart(medianRuns(r.Topologies, r.Repeats)); svg != "" || err != nil {
		page.Sweep = append(page.Sweep, chart("rate sweep", svg, legend, err))
	}
	if r.Repeats != nil {
		// The distribution per kind of fault stands in for the bars of
		// every run's every fault.
	} else if svg, legend, err := unavailabilityChart(all, heads); svg != "" || err != nil {
		page.Unavailable = append(page.Unavailable, chart("write unavailability per fault", svg, legend, err))
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("scenarios: render report.html: %w", err)
	}
	return b.Bytes(), nil
}

// repeated fills the parts of a repeated scenario: the verdict and the
// side-by-side tables with spreads, their charts and the fault kinds.
func (page *htmlPage) repeated(s *RepeatSummary) {
	page.Verdict = toHTML(repeatVerdictTable(s))
	page.RepeatNote = repeatNote(s)
	page.FirstRepeat = true
	for _, rt := range spreadTables(s) {
		t := toHTML(rt.t)
		t.Title = rt.title
		page.SideBySide = append(page.SideBySide, t)
	}
	for _, key := range []string{"publish_rate", "publish_p99_ms", "max_unavailability_s", "detection_s", "convergence_s"} {
		f, _ := lookupFigure(key)
		if svg, legend, err := spreadChart(s, key); svg != "" || err != nil {
			page.Spread = append(page.Spread, chart(f.Name, svg, legend, err))
		}
	}
	page.FaultKinds = toHTML(faultKindTable(s))
	page.KindNote = faultKindNote
	if svg, legend, err := faultKindChart(s); svg != "" || err != nil {
		page.KindCharts = append(page.KindCharts, chart("write unavailability per kind of fault", svg, legend, err))
	}
}

// faultHTMLTable is the fault table with each row marked in its fault's
// colour, the colour of its band in the throughput charts.
func faultHTMLTable(all []analysis.TopologyResult) htmlTable {
	t := toHTML(faultTable(all))
	for _, tr := range all {
		for _, k := range faultIndexes(all, tr) {
			t.Swatch = append(t.Swatch, cssColor(faultColor(k)))
		}
	}
	return t
}

// faultIndexes numbers a result's faults as the fault table and the
// unavailability chart do: the n-th occurrence of an action on a target is
// the same fault F<k+1> in every topology.
func faultIndexes(all []analysis.TopologyResult, tr analysis.TopologyResult) []int {
	keys, _ := faultGroups(all, labels(all))
	idx := map[faultKey]int{}
	for i, k := range keys {
		idx[k] = i
	}
	out := make([]int, len(tr.Faults))
	seen := map[faultKey]int{}
	for i, f := range tr.Faults {
		k := faultKey{f.Action, f.Target, 0}
		k.n = seen[k]
		seen[faultKey{f.Action, f.Target, 0}]++
		out[i] = idx[k]
	}
	return out
}

// throughputCharts draws one chart per topology result. Panels of the same
// target rate share a y axis, so their heights compare; panels of different
// rates (a sweep) each get their own, so a 5k/s run is not flattened by a
// 200k/s one.
func throughputCharts(all []analysis.TopologyResult, heads []string) []htmlChart {
	yMax := map[float64]float64{}
	for _, tr := range all {
		for _, xs := range [][]int64{tr.Series.Acked, tr.Series.Consumed, tr.Series.Failed} {
			for _, v := range xs {
				yMax[tr.TargetRate] = max(yMax[tr.TargetRate], float64(v))
			}
		}
	}
	colors := palette(all)
	out := make([]htmlChart, 0, len(all))
	for i, tr := range all {
		svg, legend, err := throughputChart(tr, heads[i], colors[i], yMax[tr.TargetRate], faultIndexes(all, tr))
		out = append(out, chart(heads[i], svg, legend, err))
	}
	return out
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", "Liberation Sans", sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
h3 { margin: 1em 0 .2em; font-size: 1em; }
p.desc { white-space: pre-wrap; color: #444; }
ul.meta { color: #444; font-size: .92em; }
ul.findings { font-size: 1.05em; line-height: 1.5; }
ul.findings a { font-size: .85em; color: #555; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f4f4f4; }
td, th { text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
i.sw { display: inline-block; width: .8em; height: .8em; margin-right: .4em; vertical-align: -.05em; border-radius: 2px; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; display: block; }
.legend { font-size: .8em; color: #333; text-align: center; }
.legend span { margin: 0 .6em; white-space: nowrap; }
.legend i { display: inline-block; width: 1.6em; height: 0; border-top: 2px solid; vertical-align: middle; margin-right: .3em; }
.legend i.dashed { border-top-style: dashed; }
.legend i.band { height: .8em; border-top: 0; opacity: .7; }
.error { color: #a00; }
.note { color: #555; font-size: .9em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{if .Description}}<p class="desc">{{.Description}}</p>{{end}}
<ul class="meta">
<li><b>Setup:</b> {{.Setup}}</li>
<li><b>Runtime:</b> {{.Runtime}}</li>
<li><b>Environment:</b> {{.Environment}}</li>
</ul>
{{range .Errors}}<p class="error"><b>Run failed:</b> {{.}}</p>{{end}}

{{if .Findings}}
<h2 id="summary">Summary</h2>
<ul class="findings">{{range .Findings}}<li>{{.Text}} <a href="#{{.Anchor}}">details</a></li>{{end}}</ul>
{{template "table" .Verdict}}
{{end}}

<h2 id="side-by-side">Side by side</h2>
<p class="note">Latency is measured from each message's intended send time (open loop, no coordinated omission). Rates and latencies exclude the warm-up; counts cover the whole run. Acked-but-lost, duplicated and reordered should be 0; indeterminate (not acked but delivered) is allowed; acked-unreadable messages sit in partitions the verification read could not read to their end (see Unreadable partitions).</p>
{{if .RepeatNote}}<p class="note">{{.RepeatNote}} Every run's own figures are in result.json.</p>{{end}}
{{range .SideBySide}}{{if .Title}}<h3>{{.Title}}</h3>{{end}}{{template "table" .}}{{end}}
{{if .Spread}}<p class="note">Each chart: a ring per repeat, the whisker from the lowest to the highest, the bar at the median.</p>
<div class="charts">{{range .Spread}}{{template "chart" .}}{{end}}</div>{{end}}

{{if .SweepTable.Rows}}
<h2 id="rate-sweep">Rate sweep</h2>
<p class="note">Acked messages per second and publish p99 at each target rate; the chart plots p99 against the achieved rate: where a line turns up, that topology saturated.</p>
{{template "table" .SweepTable}}
<div class="charts">{{range .Sweep}}{{template "chart" .}}{{end}}</div>
{{end}}

{{if .Search.Rows}}
<h2 id="rate-search">Rate search</h2>
<p class="note">{{.SearchNote}}</p>
{{template "table" .Search}}
{{end}}

<h2 id="throughput-over-time">Throughput over time</h2>
<p class="note">{{if .FirstRepeat}}The first repeat of each topology. {{end}}Acked, consumed (distinct messages first received) and failed sends per second. A shaded band per fault runs from the fault to the end of the write gaps charged to it, or to detection and convergence when later (F1, F2… in the fault table's colours; a fault charged with no gap is a sliver); the dotted line marks the end of the warm-up. Panels of the same target rate share their y axis.</p>
<div class="charts">{{range .Throughput}}{{template "chart" .}}{{end}}</div>

<h2 id="latency">Latency</h2>
<p class="note">{{if .FirstRepeat}}The first repeat of each topology. {{end}}Latency by percentile, log scale; each line ends at the largest value.</p>
<div class="charts">{{range .Latency}}{{template "chart" .}}{{end}}</div>

{{if .FaultKinds.Rows}}
<h2 id="fault-kinds">Faults by kind over the repeats</h2>
<p class="note">{{.KindNote}} In the chart: a ring per occurrence, the whisker from the lowest to the highest, the solid bar at p50, the dashed one at p90.</p>
<div class="charts">{{range .KindCharts}}{{template "chart" .}}{{end}}</div>
{{template "table" .FaultKinds}}
{{end}}

{{if .Faults.Rows}}
<h2 id="faults">Faults</h2>
<p class="note">Write unavailability: from the first failed send after the fault to the first acked send after it, per partition, spanned over the partitions hit. Each partition's gap is charged once, to the latest fault before it that can affect the partition (a broker fault the partitions the broker led or replicated, a control-plane fault all of them); faults that share a gap say so (&ldquo;overlaps F2&rdquo;) instead of both being charged. The gap column is when the charged gaps were: the band of the same F in the throughput charts. Detection: until the control plane marked the node dead. Convergence: until every client used the new route.</p>
<div class="charts">{{range .Unavailable}}{{template "chart" .}}{{end}}</div>
{{template "table" .Faults}}
{{end}}

{{if .Unreadable.Rows}}
<h2 id="unreadable-partitions">Unreadable partitions</h2>
<p class="note">{{.UnreadNote}}</p>
{{template "table" .Unreadable}}
{{end}}

{{if .ControlPl.Rows}}
<h2 id="control-plane-cost">Control-plane cost</h2>
<p class="note">Requests and bytes to etcd or to the name servers, after warm-up.</p>
{{template "table" .ControlPl}}
{{end}}

{{if .Resources.Rows}}
<h2>CPU and memory</h2>
<p class="note">From the producers' start to the end of the drain. In-process, every node, the runner and its clients share one process.</p>
{{template "table" .Resources}}
{{end}}

{{if .Samples.Rows}}
<h2 id="checker-findings">Checker findings</h2>
<p class="note">The first samples of each finding.</p>
{{template "table" .Samples}}
{{end}}

<p class="note">Generated by brokerlab from result.json; <code>brokerlab report DIR</code> renders it again.</p>
</body>
</html>
{{define "table"}}<table>
<thead><tr>{{range $i, $h := .Header}}<th{{if index $.Right $i}} class="num"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>{{range $r, $row := .Rows}}<tr>{{range $i, $c := $row}}<td{{if and (lt $i (len $.Right)) (index $.Right $i)}} class="num"{{end}}>{{if and (eq $i 0) (lt $r (len $.Swatch))}}<i class="sw" style="background: {{index $.Swatch $r}}"></i>{{end}}{{$c}}</td>{{end}}</tr>
{{end}}</tbody>
</table>{{end}}
{{define "chart"}}<figure>{{if .Err}}<p class="error">{{.Caption}}: chart unavailable: {{.Err}}</p>{{else}}{{.SVG}}{{if .Legend}}<figcaption class="legend">{{range .Legend}}<span><i class="{{if .Dashed}}dashed{{end}}{{if .Band}} band{{end}}" style="{{if .Band}}background{{else}}border-color{{end}}: {{.Color}}"></i>{{.Name}}</span>{{end}}</figcaption>{{end}}{{end}}</figure>{{end}}
`))
