package scale

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteAll writes result.json, report.md and report.html into dir.
func WriteAll(dir string, r Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("scale: encode result: %w", err)
	}
	page, err := RenderHTML(r)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"result.json": append(js, '\n'), "report.md": []byte(RenderMarkdown(r)), "report.html": page} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("scale: %w", err)
		}
	}
	return nil
}

// column is one figure of the table and the charts.
type column struct {
	head  string
	value func(Point) (float64, bool) // false: not applicable
	text  func(float64) string
}

func secs(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

var columns = []column{
	{"propagation p50 (s)", func(p Point) (float64, bool) { return p.Propagation.P50, p.Propagation.N > 0 }, secs},
	{"propagation p99 (s)", func(p Point) (float64, bool) { return p.Propagation.P99, p.Propagation.N > 0 }, secs},
	{"propagation max (s)", func(p Point) (float64, bool) { return p.Propagation.Max, p.Propagation.N > 0 }, secs},
	{"detection (s)", func(p Point) (float64, bool) { return p.DetectionS, p.DetectionS >= 0 }, secs},
	{"removed everywhere (s)", func(p Point) (float64, bool) { return p.RemovedS, p.DetectionS >= 0 }, secs},
	{"re-election p50 (s)", func(p Point) (float64, bool) { return p.ReElection.P50, p.ReElection.N > 0 }, secs},
	{"re-election p99 (s)", func(p Point) (float64, bool) { return p.ReElection.P99, p.ReElection.N > 0 }, secs},
	{"re-election max (s)", func(p Point) (float64, bool) { return p.ReElection.Max, p.ReElection.N > 0 }, secs},
	{"idle req/s", func(p Point) (float64, bool) { return p.IdleRequestsPerS, true }, num},
	{"idle req/s per broker", func(p Point) (float64, bool) { return p.IdleRequestsPerS / float64(p.Brokers), true }, num},
	{"idle bytes/s", func(p Point) (float64, bool) { return p.IdleBytesPerS, true }, num},
	{"idle bytes/s per broker", func(p Point) (float64, bool) { return p.IdleBytesPerS / float64(p.Brokers), true }, num},
	{"failure bytes", func(p Point) (float64, bool) { return float64(p.FailureBytes), true }, num},
	{"failure requests", func(p Point) (float64, bool) { return float64(p.FailureRequests), true }, num},
	{"CPU (s)", func(p Point) (float64, bool) { return p.CPUSeconds, true }, secs},
	{"peak RSS (MB)", func(p Point) (float64, bool) { return float64(p.PeakRSSByte) / 1e6, p.PeakRSSByte > 0 }, num},
}

func cell(c column, p Point) string {
	v, ok := c.value(p)
	if !ok {
		return "–"
	}
	return c.text(v)
}

// RenderMarkdown renders the sweep as one table row per point, then how
// each figure grows.
func RenderMarkdown(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# brokerlab scale: %s\n\n", r.Scenario.Name)
	if r.Scenario.Description != "" {
		b.WriteString(r.Scenario.Description + "\n\n")
	}
	fmt.Fprintf(&b, "Control-plane-only brokers (the real control plane, a stand-in data plane), timings %s, replication %d, idle cost over %v. Propagation: a new topic to every broker's view; detection: the first view without the killed broker (the one leading most partitions); re-election: every view on a new leader, per partition.\n\n",
		r.Scenario.Profile, r.Scenario.Replication, r.Scenario.Idle)
	head := []string{"topology", "brokers", "partitions", "victim leads"}
	for _, c := range columns {
		head = append(head, c.head)
	}
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|" + strings.Repeat(" --- |", len(head)) + "\n")
	for _, p := range r.Points {
		row := []string{p.Topology, strconv.Itoa(p.Brokers), strconv.Itoa(p.Partitions), strconv.Itoa(p.VictimLeads)}
		for _, c := range columns {
			row = append(row, cell(c, p))
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	for _, p := range r.Points {
		if p.Error != "" {
			fmt.Fprintf(&b, "\n> **%s at %d × %d:** %s\n", p.Topology, p.Brokers, p.Partitions, p.Error)
		}
	}
	for _, s := range r.Refused {
		fmt.Fprintf(&b, "\n> **Refused:** %s\n", s)
	}
	if g := growth(r.Points); len(g) > 0 {
		b.WriteString("\n## How the figures grow\n\nRatio per 10× more brokers (same partitions) and per 10× more partitions (same brokers), from the smallest to the largest completed step; an exponent k means the figure grows as size^k.\n\n")
		b.WriteString("| topology | figure | per 10× brokers | per 10× partitions |\n| --- | --- | --- | --- |\n")
		for _, l := range g {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// growth measures, per topology and figure, the growth exponent against
// brokers (at the largest partition count run at two broker counts) and
// against partitions (at the largest broker count run at two partition
// counts).
func growth(pts []Point) []string {
	var out []string
	topos := []string{}
	for _, p := range pts {
		if !slices.Contains(topos, p.Topology) {
			topos = append(topos, p.Topology)
		}
	}
	for _, t := range topos {
		for _, c := range columns {
			if strings.HasPrefix(c.head, "CPU") || strings.HasPrefix(c.head, "peak") {
				continue
			}
			kb := exponent(pts, t, c, func(p Point) (int, int) { return p.Partitions, p.Brokers })
			kp := exponent(pts, t, c, func(p Point) (int, int) { return p.Brokers, p.Partitions })
			if kb == "" && kp == "" {
				continue
			}
			out = append(out, fmt.Sprintf("| %s | %s | %s | %s |", t, c.head, orDash(kb), orDash(kp)))
		}
	}
	return out
}

// exponent fits the growth of c along the axis key picks (fixed, varied).
func exponent(pts []Point, topo string, c column, key func(Point) (fixed, varied int)) string {
	by := map[int][]Point{}
	for _, p := range pts {
		if p.Topology != topo || p.Error != "" {
			continue
		}
		f, _ := key(p)
		by[f] = append(by[f], p)
	}
	var fixed []int
	for f, ps := range by {
		if len(ps) >= 2 {
			fixed = append(fixed, f)
		}
	}
	if len(fixed) == 0 {
		return ""
	}
	ps := by[slices.Max(fixed)]
	slices.SortFunc(ps, func(a, b Point) int { _, x := key(a); _, y := key(b); return x - y })
	lo, hi := ps[0], ps[len(ps)-1]
	v0, ok0 := c.value(lo)
	v1, ok1 := c.value(hi)
	_, x0 := key(lo)
	_, x1 := key(hi)
	if !ok0 || !ok1 || v0 <= 0 || v1 <= 0 || x1 <= x0 {
		return ""
	}
	k := math.Log(v1/v0) / math.Log(float64(x1)/float64(x0))
	return fmt.Sprintf("×%.2g (k = %.2f)", math.Pow(10, k), k)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

var lineColors = []color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

type chartHTML struct {
	Title string
	SVG   template.HTML
	Err   string
}

// RenderHTML renders report.html: the table, then one chart per figure and
// partition count against the number of brokers (log-log), a line per
// topology; self-contained, no script.
func RenderHTML(r Result) ([]byte, error) {
	var charts []chartHTML
	parts := []int{}
	topos := []string{}
	for _, p := range r.Points {
		if !slices.Contains(parts, p.Partitions) {
			parts = append(parts, p.Partitions)
		}
		if !slices.Contains(topos, p.Topology) {
			topos = append(topos, p.Topology)
		}
	}
	slices.Sort(parts)
	for _, c := range columns {
		if !slices.Contains([]string{"propagation p99 (s)", "detection (s)", "re-election p99 (s)", "idle bytes/s per broker", "failure bytes", "peak RSS (MB)"}, c.head) {
			continue
		}
		for _, np := range parts {
			title := fmt.Sprintf("%s at %s partitions", c.head, num(float64(np)))
			svg, err := lineChart(title, r.Points, topos, np, c)
			switch {
			case err != nil:
				charts = append(charts, chartHTML{Title: title, Err: err.Error()})
			case svg != "":
				charts = append(charts, chartHTML{Title: title, SVG: template.HTML(svg)})
			}
		}
	}
	md := RenderMarkdown(r)
	var b bytes.Buffer
	err := pageTmpl.Execute(&b, struct {
		Name   string
		Table  string
		Charts []chartHTML
		Topos  []string
	}{r.Scenario.Name, md, charts, topos})
	if err != nil {
		return nil, fmt.Errorf("scale: render report.html: %w", err)
	}
	return b.Bytes(), nil
}

func lineChart(title string, pts []Point, topos []string, parts int, c column) (svg string, err error) {
	defer func() {
		if r := recover(); r != nil {
			svg, err = "", fmt.Errorf("chart %q: %v", title, r)
		}
	}()
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "brokers"
	p.Y.Label.Text = c.head
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	drawn := false
	for i, t := range topos {
		var xys plotter.XYs
		for _, pt := range pts {
			if pt.Topology != t || pt.Partitions != parts || pt.Error != "" {
				continue
			}
			if v, ok := c.value(pt); ok && v > 0 {
				xys = append(xys, plotter.XY{X: float64(pt.Brokers), Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		slices.SortFunc(xys, func(a, b plotter.XY) int { return int(a.X - b.X) })
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return "", err
		}
		l.Color, s.Color = lineColors[i%len(lineColors)], lineColors[i%len(lineColors)]
		p.Add(l, s)
		p.Legend.Add(t, l)
		drawn = true
	}
	if !drawn {
		return "", nil
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min = 0
	cv := vgsvg.New(5*vg.Inch, 3*vg.Inch)
	p.Draw(draw.New(cv))
	var b bytes.Buffer
	if _, err := cv.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return s, nil
}

var pageTmpl = template.Must(template.New("scale").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>brokerlab scale: {{.Name}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em}pre{white-space:pre-wrap;font-size:.85em}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure svg{max-width:100%;height:auto}.error{color:#a00}</style></head>
<body><h1>brokerlab scale: {{.Name}}</h1>
<div class="charts">{{range .Charts}}<figure>{{if .Err}}<p class="error">{{.Title}}: {{.Err}}</p>{{else}}{{.SVG}}{{end}}</figure>{{end}}</div>
<h2>Figures</h2><pre>{{.Table}}</pre></body></html>
`))
