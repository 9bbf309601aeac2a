package scenarios

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
)

// htmlChart is one inlined SVG chart, or the reason it is missing.
type htmlChart struct {
	Caption string
	SVG     template.HTML // produced by gonum/plot's SVG backend, text escaped
	Err     string
}

type htmlTable struct {
	Header []string
	Rows   [][]string
	Right  []bool // numeric columns, aligned right
}

type htmlPage struct {
	Title       string
	Description string
	Setup       string
	Runtime     string
	Environment string
	Errors      []string
	Summary     htmlTable
	Throughput  []htmlChart
	Latency     []htmlChart
	Sweep       []htmlChart
	Unavailable []htmlChart
	Faults      htmlTable
	ControlPl   htmlTable
	Resources   htmlTable
	Samples     htmlTable
}

func toHTML(t table) htmlTable {
	return htmlTable{Header: t.header, Rows: t.rows, Right: t.numericColumns()}
}

func chart(caption string, svg string, err error) htmlChart {
	if err != nil {
		return htmlChart{Caption: caption, Err: err.Error()}
	}
	return htmlChart{Caption: caption, SVG: template.HTML(svg)}
}

// RenderHTML renders report.html: one self-contained page (inline CSS and
// SVG, no scripts, no network) with the side-by-side table, throughput over
// time per topology with fault markers, the latency spectra, unavailability
// per fault, and the fault, control-plane and checker tables.
func RenderHTML(r Result) ([]byte, error) {
	all := r.Topologies
	heads := labels(all)
	page := htmlPage{
		Title:       "brokerlab: " + r.Scenario.Name,
		Description: strings.TrimSpace(r.Scenario.Description),
		Setup:       scenarioLine(r.Scenario),
		Runtime:     orDash(r.Runtime),
		Environment: environmentLine(r.Environment),
		Summary:     toHTML(summaryTable(all, heads)),
		Faults:      toHTML(faultTable(all)),
		ControlPl:   toHTML(cpTable(all)),
		Resources:   toHTML(resourceTable(all)),
		Samples:     toHTML(sampleTable(all)),
	}
	for i, tr := range all {
		if tr.Error != "" {
			page.Errors = append(page.Errors, heads[i]+": "+tr.Error)
		}
	}
	page.Throughput = throughputCharts(all, heads)
	for _, m := range []struct {
		title string
		pick  func(Latencies) LatencyStats
	}{
		{"publish latency (from intended send time)", func(l Latencies) LatencyStats { return l.Publish }},
		{"end-to-end latency (intended send to first receive)", func(l Latencies) LatencyStats { return l.EndToEnd }},
	} {
		svg, err := latencyChart(all, heads, m.title, m.pick)
		if svg != "" || err != nil {
			page.Latency = append(page.Latency, chart(m.title, svg, err))
		}
	}
	if svg, err := sweepChart(all); svg != "" || err != nil {
		page.Sweep = append(page.Sweep, chart("rate sweep", svg, err))
	}
	if svg, err := unavailabilityChart(all, heads); svg != "" || err != nil {
		page.Unavailable = append(page.Unavailable, chart("write unavailability per fault", svg, err))
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, page); err != nil {
		return nil, fmt.Errorf("scenarios: render report.html: %w", err)
	}
	return b.Bytes(), nil
}

// throughputCharts draws one chart per topology result with a shared y axis.
func throughputCharts(all []TopologyResult, heads []string) []htmlChart {
	var yMax float64
	for _, tr := range all {
		for _, xs := range [][]int64{tr.Series.Acked, tr.Series.Consumed, tr.Series.Failed} {
			for _, v := range xs {
				yMax = max(yMax, float64(v))
			}
		}
	}
	colors := palette(all)
	out := make([]htmlChart, 0, len(all))
	for i, tr := range all {
		svg, err := throughputChart(tr, heads[i], colors[i], yMax)
		out = append(out, chart(heads[i], svg, err))
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
p.desc { white-space: pre-wrap; color: #444; }
ul.meta { color: #444; font-size: .92em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; }
th { background: #f4f4f4; }
td, th { text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .85em; color: #555; text-align: center; }
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

<h2>Side by side</h2>
<p class="note">Latency is measured from each message's intended send time (open loop, no coordinated omission). Rates and latencies exclude the warm-up; counts cover the whole run. Acked-but-lost, duplicated and reordered should be 0; indeterminate (not acked but delivered) is allowed.</p>
{{template "table" .Summary}}

<h2>Throughput over time</h2>
<p class="note">Acked, consumed (distinct messages first received) and failed sends per second. Dashed lines mark faults (F1, F2… as in the fault table), the dotted line the end of the warm-up.</p>
<div class="charts">{{range .Throughput}}{{template "chart" .}}{{end}}</div>

<h2>Latency</h2>
<p class="note">Latency by percentile, log scale; each line ends at the largest value.</p>
<div class="charts">{{range .Latency}}{{template "chart" .}}{{end}}{{range .Sweep}}{{template "chart" .}}{{end}}</div>

{{if .Faults.Rows}}
<h2>Faults</h2>
<p class="note">Write unavailability: from the first failed send after the fault to the first acked send after it, per partition, spanned over the partitions hit. Detection: until the control plane marked the node dead. Convergence: until every client used the new route.</p>
<div class="charts">{{range .Unavailable}}{{template "chart" .}}{{end}}</div>
{{template "table" .Faults}}
{{end}}

{{if .ControlPl.Rows}}
<h2>Control-plane cost</h2>
<p class="note">Requests and bytes to etcd or to the name servers, after warm-up.</p>
{{template "table" .ControlPl}}
{{end}}

{{if .Resources.Rows}}
<h2>CPU and memory</h2>
<p class="note">From the producers' start to the end of the drain. In-process, every node, the runner and its clients share one process.</p>
{{template "table" .Resources}}
{{end}}

{{if .Samples.Rows}}
<h2>Checker findings (first samples)</h2>
{{template "table" .Samples}}
{{end}}

<p class="note">Generated by brokerlab from result.json; <code>brokerlab report DIR</code> renders it again.</p>
</body>
</html>
{{define "table"}}<table>
<thead><tr>{{range $i, $h := .Header}}<th{{if index $.Right $i}} class="num"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if and (lt $i (len $.Right)) (index $.Right $i)}} class="num"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody>
</table>{{end}}
{{define "chart"}}<figure>{{if .Err}}<p class="error">{{.Caption}}: chart unavailable: {{.Err}}</p>{{else}}{{.SVG}}{{end}}</figure>{{end}}
`))
