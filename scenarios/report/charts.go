package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/brokerlab/brokerlab/topology"
)

// Charts are drawn with gonum/plot into SVG and inlined into report.html,
// so the page needs no network and no JavaScript.

// topologyColor is a topology's colour in every chart, as its descriptor
// registers it; false for an unregistered topology or one without a colour.
func topologyColor(name string) (color.RGBA, bool) {
	d, ok := topology.Lookup(name)
	return d.Color, ok && d.Color != (color.RGBA{})
}

var extraColors = []color.RGBA{
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff},
	{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}

// palette assigns colours to column labels: known topologies keep theirs,
// rate steps of a sweep get darker or lighter shades of their topology's.
func palette(all []analysis.TopologyResult) []color.RGBA {
	out := make([]color.RGBA, len(all))
	step := map[string]int{}
	extra := 0
	for i, tr := range all {
		c, ok := topologyColor(tr.Topology)
		if !ok {
			c = extraColors[extra%len(extraColors)]
			extra++
		}
		n := step[tr.Topology]
		step[tr.Topology]++
		out[i] = shade(c, n)
	}
	return out
}

func shade(c color.RGBA, n int) color.RGBA {
	f := 1 - 0.18*float64(n%4)
	return color.RGBA{R: uint8(float64(c.R) * f), G: uint8(float64(c.G) * f), B: uint8(float64(c.B) * f), A: 0xff}
}

// legendItem is one entry of a chart's legend. Legends are drawn in HTML
// under the chart, outside the plot area, so they never cover a line.
type legendItem struct {
	Name   string
	Color  string // CSS colour
	Dashed bool
	Band   bool // a shaded band rather than a line
}

func cssColor(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// faultColors tell faults apart in the throughput bands and the fault table.
var faultColors = []color.RGBA{
	{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff}, // pink: not the red of failed sends
	{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff},
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

func faultColor(i int) color.RGBA { return faultColors[i%len(faultColors)] }

var (
	red  = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	grey = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
)

// newPlot returns a plot with sans-serif text and a grid.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	for _, s := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle,
		&p.X.Tick.Label, &p.Y.Tick.Label} {
		s.Font.Variant = "Sans"
	}
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.TextStyle.Font.Size = vg.Points(9)
	p.Y.Label.TextStyle.Font.Size = vg.Points(9)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 0xe0}
	g.Horizontal.Color = color.Gray{Y: 0xe0}
	p.Add(g)
	return p
}

// renderSVG draws p into an SVG string without the XML prolog, ready to
// inline. gonum/plot panics on some degenerate input; that becomes an error
// so a bad result.json never crashes `brokerlab report`.
func renderSVG(p *plot.Plot, w, h vg.Length) (svg string, err error) {
	defer func() {
		if r := recover(); r != nil {
			svg, err = "", fmt.Errorf("scenarios: chart %q: %v", p.Title.Text, r)
		}
	}()
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("scenarios: chart %q: %w", p.Title.Text, err)
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return s, nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func line(xys plotter.XYs, c color.Color, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
	}
	return l, nil
}

// seriesXY turns a per-second series into points at the middle of each second.
func seriesXY(xs []int64) plotter.XYs {
	out := make(plotter.XYs, len(xs))
	for i, v := range xs {
		out[i] = plotter.XY{X: float64(i) + 0.5, Y: float64(v)}
	}
	return out
}

// throughputChart draws one topology's acked, failed and consumed messages
// per second, with a shaded, labelled band per fault from the fault to the
// topology's recovery (in the fault's colour, as in the fault table) and a
// dotted line at the end of the warm-up. yMax is shared by panels whose
// heights are meant to be compared.
func throughputChart(tr analysis.TopologyResult, title string, c color.Color, yMax float64, faultIdx []int) (string, []legendItem, error) {
	p := newPlot(title, "seconds since start", "messages/s")
	type named struct {
		name   string
		xs     []int64
		c      color.Color
		dashed bool
	}
	var legend []legendItem
	top := max(yMax, 1) * 1.15 // headroom for the band labels
	for i, f := range tr.Faults {
		k := i
		if i < len(faultIdx) {
			k = faultIdx[i]
		}
		band, lab, err := faultBand(f, k, top)
		if err != nil {
			return "", nil, err
		}
		p.Add(band, lab)
	}
	for _, s := range []named{
		{"acked", tr.Series.Acked, c, false},
		{"consumed", tr.Series.Consumed, grey, true},
		{"failed", tr.Series.Failed, red, false},
	} {
		l, err := line(seriesXY(s.xs), s.c, s.dashed)
		if err != nil {
			return "", nil, err
		}
		p.Add(l)
		legend = append(legend, legendItem{Name: s.name, Color: cssColor(s.c), Dashed: s.dashed})
	}
	if w := tr.WarmupEnd.Sub(tr.Start).Seconds(); w > 0 {
		if err := marker(p, w, top, "warm-up", true); err != nil {
			return "", nil, err
		}
	}
	p.Y.Min, p.Y.Max = 0, top
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(linearTicks)
	svg, err := renderSVG(p, 5.2*vg.Inch, 2.6*vg.Inch)
	return svg, legend, err
}

// faultRecoveryS is how long after it a fault's effect lasted: until the end
// of the write gaps charged to it (a gap shared with another fault is
// charged to one of them only), or its detection or convergence if later.
func faultRecoveryS(f analysis.FaultResult) float64 {
	d := 0.0
	if f.UnavailableS > 0 {
		d = finite(f.GapStartS + f.UnavailableS - f.AtS)
	}
	for _, v := range []*float64{f.DetectionS, f.ConvergenceS} {
		if v != nil {
			d = max(d, finite(*v))
		}
	}
	return d
}

// faultBand is a translucent band from the fault to its recovery (at least
// a sliver, so an instant fault still shows) labelled "F<k+1>".
func faultBand(f analysis.FaultResult, k int, top float64) (*plotter.Polygon, *plotter.Labels, error) {
	x0 := finite(f.AtS)
	x1 := x0 + max(faultRecoveryS(f), 0.25)
	c := faultColor(k)
	fill := color.NRGBA{R: c.R, G: c.G, B: c.B, A: 0x30}
	band, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: top}, {X: x0, Y: top}})
	if err != nil {
		return nil, nil, err
	}
	band.Color = fill
	band.LineStyle.Width = 0
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x0, Y: top * 0.94}}, Labels: []string{"F" + strconv.Itoa(k+1)}})
	if err != nil {
		return nil, nil, err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Variant = "Sans"
		lab.TextStyle[i].Font.Size = vg.Points(7)
		lab.TextStyle[i].Color = c
	}
	return band, lab, nil
}

// marker draws a vertical line at x with a label near the top.
func marker(p *plot.Plot, x, top float64, name string, dotted bool) error {
	x = finite(x)
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: top * 0.7}})
	if err != nil {
		return err
	}
	l.Color = grey
	l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	if dotted {
		l.Dashes = []vg.Length{vg.Points(1), vg.Points(2)}
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: top * 0.71}}, Labels: []string{name}})
	if err != nil {
		return err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Variant = "Sans"
		lab.TextStyle[i].Font.Size = vg.Points(7)
		lab.TextStyle[i].Color = color.Gray{Y: 0x55}
		lab.TextStyle[i].XAlign = text.XCenter
	}
	p.Add(l, lab)
	return nil
}

// spectrumPercentiles are where the latency spectrum is sampled.
var spectrumPercentiles = []float64{0, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.975, 99.99, 99.995, 99.999, 99.9995, 99.9999}

// spectrumX maps a percentile to the x axis: -log10(1 - p), so 90% is 1,
// 99% is 2, 99.9% is 3.
func spectrumX(p float64) float64 { return -math.Log10(1 - p/100) }

// spectrumXY samples a latency distribution for the spectrum chart, up to the
// finest percentile its sample count supports, ending with the maximum.
func spectrumXY(l analysis.LatencyStats) plotter.XYs {
	if l.Count == 0 {
		return nil
	}
	xMax := math.Log10(float64(max(l.Count, 10)))
	var out plotter.XYs
	if h, err := l.Histogram(); err == nil && h.TotalCount() > 0 {
		for _, p := range spectrumPercentiles {
			if x := spectrumX(p); x < xMax {
				out = append(out, plotter.XY{X: x, Y: analysis.UsToMs(h.ValueAtQuantile(p))})
			}
		}
	} else {
		for _, pt := range []struct{ p, v float64 }{{0, l.MinMs}, {50, l.P50Ms}, {90, l.P90Ms}, {99, l.P99Ms}, {99.9, l.P999Ms}} {
			if x := spectrumX(pt.p); x < xMax {
				out = append(out, plotter.XY{X: x, Y: pt.v})
			}
		}
	}
	out = append(out, plotter.XY{X: xMax, Y: l.MaxMs})
	for i := range out {
		out[i].Y = max(finite(out[i].Y), 0.001) // log axis: at least 1µs
	}
	return out
}

// spectrumTicks label the percentile axis.
func spectrumTicks(_, hi float64) []plot.Tick {
	var ts []plot.Tick
	for i, l := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"} {
		if float64(i) <= hi+0.01 {
			ts = append(ts, plot.Tick{Value: float64(i), Label: l})
		}
	}
	return ts
}

// latencyChart draws the latency-by-percentile spectrum of one measure for
// every topology result, log scale, so p50 and a 2 s stall both show.
func latencyChart(all []analysis.TopologyResult, heads []string, title string, pick func(analysis.Latencies) analysis.LatencyStats) (string, []legendItem, error) {
	p := newPlot(title, "percentile", "latency (ms, log)")
	colors := palette(all)
	lo, hi, drawn := math.Inf(1), 0.0, false
	var legend []legendItem
	for i, tr := range all {
		xys := spectrumXY(pick(tr.Latency))
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return "", nil, err
		}
		l.Color, l.Width = colors[i], vg.Points(1.4)
		pts.Color, pts.Radius = colors[i], vg.Points(1.5)
		p.Add(l, pts)
		legend = append(legend, legendItem{Name: heads[i], Color: cssColor(colors[i])})
		for _, xy := range xys {
			lo, hi = min(lo, xy.Y), max(hi, xy.Y)
		}
		drawn = true
	}
	if !drawn {
		return "", nil, nil
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(logTicks)
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(spectrumTicks)
	svg, err := renderSVG(p, 5.2*vg.Inch, 3*vg.Inch)
	return svg, legend, err
}

// faultKey matches one fault across topologies: the n-th occurrence of an
// action on a target.
type faultKey struct {
	action scenario.Action
	target string
	n      int
}

// unavailabilityChart draws write unavailability per fault (groups) and
// topology (bars).
func unavailabilityChart(all []analysis.TopologyResult, heads []string) (string, []legendItem, error) {
	var keys []faultKey
	at := map[faultKey]float64{}
	vals := make([]map[faultKey]float64, len(all))
	for i, tr := range all {
		vals[i] = map[faultKey]float64{}
		seen := map[faultKey]int{}
		for _, f := range tr.Faults {
			k := faultKey{f.Action, f.Target, 0}
			k.n = seen[k]
			seen[faultKey{f.Action, f.Target, 0}]++
			if _, ok := at[k]; !ok {
				keys = append(keys, k)
				at[k] = f.AtS
			}
			vals[i][k] = finite(f.UnavailableS)
		}
	}
	if len(keys) == 0 {
		return "", nil, nil
	}
	var legend []legendItem
	p := newPlot("write unavailability per fault", "", "seconds")
	colors := palette(all)
	n := float64(len(all))
	w := vg.Points(math.Max(4, math.Min(24, 300/(n*float64(len(keys))))))
	for i := range all {
		vs := make(plotter.Values, len(keys))
		for j, k := range keys {
			vs[j] = vals[i][k]
		}
		b, err := plotter.NewBarChart(vs, w)
		if err != nil {
			return "", nil, err
		}
		b.Color = colors[i]
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-(n-1)/2) * w
		p.Add(b)
		legend = append(legend, legendItem{Name: heads[i], Color: cssColor(colors[i]), Band: true})
	}
	names := make([]string, len(keys))
	for j, k := range keys {
		names[j] = fmt.Sprintf("F%d %s %s @%gs", j+1, k.action, k.target, math.Round(at[k]*10)/10)
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	width := math.Max(5.2, math.Min(10.5, 1.4*float64(len(keys))+1.5))
	svg, err := renderSVG(p, vg.Length(width)*vg.Inch, 3*vg.Inch)
	return svg, legend, err
}

// sweepChart plots publish p99 against the achieved publish rate, one line
// per topology, when a scenario swept rates: the knee is saturation.
func sweepChart(all []analysis.TopologyResult) (string, []legendItem, error) {
	by := map[string]plotter.XYs{}
	for _, tr := range all {
		by[tr.Topology] = append(by[tr.Topology], plotter.XY{X: finite(tr.Summary.PublishRate), Y: max(finite(tr.Summary.PublishP99Ms), 0.001)})
	}
	swept := false
	for _, xys := range by {
		swept = swept || len(xys) > 1
	}
	if !swept {
		return "", nil, nil
	}
	var legend []legendItem
	p := newPlot("publish p99 by achieved rate (rate sweep)", "acked messages/s", "p99 latency (ms, log)")
	lo, hi := math.Inf(1), 0.0
	for i, t := range sortedTopologies(all) {
		c, ok := topologyColor(t)
		if !ok {
			c = extraColors[i%len(extraColors)]
		}
		l, pts, err := plotter.NewLinePoints(by[t])
		if err != nil {
			return "", nil, err
		}
		l.Color, pts.Color = c, c
		p.Add(l, pts)
		legend = append(legend, legendItem{Name: t, Color: cssColor(c)})
		for _, xy := range by[t] {
			lo, hi = min(lo, xy.Y), max(hi, xy.Y)
		}
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.TickerFunc(logTicks)
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(linearTicks)
	svg, err := renderSVG(p, 5.2*vg.Inch, 3*vg.Inch)
	return svg, legend, err
}

// logTicks labels 1, 2 and 5 times each power of ten (gonum's LogTicks
// labels powers of ten only, too few for a latency axis spanning one decade,
// and panics on a non-positive range).
func logTicks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) || math.IsInf(hi, 0) {
		return nil
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)) && len(ts) < 200; e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// linearTicks labels round steps (1, 2 or 5 times a power of ten) with
// short numbers: 0, 500, 1000, 1500 or 0, 20k, 40k.
func linearTicks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	var ts []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi && len(ts) < 50; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: shortNumber(v)})
	}
	return ts
}

// shortNumber writes 1500 as "1500", 20000 as "20k", 3000000 as "3M".
func shortNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6 && math.Mod(v, 1e5) == 0:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4 && math.Mod(v, 100) == 0:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
