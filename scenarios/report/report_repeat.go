package report

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The parts of the reports for a repeated scenario: figures as medians
// with their range, the distribution per fault kind, which differences are
// significant, and charts of the spread. Per-run tables stay below them,
// each run labelled with its repeat ("coordinator #2").

// repeatNote introduces the spread tables.
func repeatNote(s *RepeatSummary) string {
	return fmt.Sprintf("Each topology ran %d times, "+s.how()+". "+
		"Cells give the median over the repeats and, in brackets, the range from the lowest to the highest. "+
		"A difference between two topologies is called significant only when their ranges do not overlap: every repeat of one is better than every repeat of the other. "+
		"Were the two alike, that would happen by chance with probability p = 2/C(n+m, n) for n and m repeats (%s for %d and %d); "+
		"differences whose ranges overlap lie within the spread and are not significant.",
		s.Count, fmtP(2/binomial(2*s.Count, s.Count)), s.Count, s.Count)
}

// how says how the repeats ran.
func (s *RepeatSummary) how() string {
	if s.Reused {
		return "back to back on one cluster (reuse: each repeat on a topic of its own, after the cluster was healed and in sync)"
	}
	return "interleaved (repeat 1 of every topology, then repeat 2, ...), on a fresh cluster each time"
}

func fmtP(p float64) string {
	switch {
	case p >= 0.01:
		return strconv.FormatFloat(p, 'f', 2, 64)
	case p >= 0.001:
		return strconv.FormatFloat(p, 'f', 3, 64)
	}
	return strconv.FormatFloat(p, 'g', 1, 64)
}

// rates lists the distinct target rates of the summary's groups in
// sweep order.
func (s *RepeatSummary) rates() []float64 {
	var out []float64
	for _, g := range s.Groups {
		if !slices.Contains(out, g.TargetRate) {
			out = append(out, g.TargetRate)
		}
	}
	slices.SortFunc(out, cmpRate)
	return out
}

// groupsAt returns the groups at one rate in registry order.
func (s *RepeatSummary) groupsAt(rate float64) []RepeatGroup {
	var out []RepeatGroup
	for _, g := range s.Groups {
		if g.TargetRate == rate {
			out = append(out, g)
		}
	}
	ranked := make([]RepeatGroup, 0, len(out))
	for _, t := range sortedTopologies(groupResults(out)) {
		for _, g := range out {
			if g.Topology == t {
				ranked = append(ranked, g)
			}
		}
	}
	return ranked
}

// groupResults stands in results for sortedTopologies.
func groupResults(gs []RepeatGroup) []analysis.TopologyResult {
	out := make([]analysis.TopologyResult, len(gs))
	for i, g := range gs {
		out[i] = analysis.TopologyResult{Topology: g.Topology, TargetRate: g.TargetRate}
	}
	return out
}

// significance writes the significant differences of a figure at a rate
// ("coordinator < nameserver (p 0.1)"), "none" when the topologies'
// ranges all overlap, "–" when nothing was compared.
func (s *RepeatSummary) significance(figure string, rate float64, higher bool) string {
	compared := false
	for _, c := range s.Comparisons {
		compared = compared || (c.Figure == figure && c.TargetRate == rate)
	}
	if !compared {
		return "–"
	}
	sig := s.significant(figure, rate)
	if len(sig) == 0 {
		return "none (within the spread)"
	}
	op := " < "
	if higher {
		op = " > "
	}
	parts := make([]string, len(sig))
	for i, c := range sig {
		parts[i] = c.Better + op + c.other() + " (p " + fmtP(c.P) + ")"
	}
	return strings.Join(parts, "; ")
}

// spreadTables are the side-by-side tables of a repeated scenario, one per
// rate: a row per figure, a column per topology (median and range), and
// the significant differences.
func spreadTables(s *RepeatSummary) []resultTable {
	var out []resultTable
	rates := s.rates()
	for _, rate := range rates {
		gs := s.groupsAt(rate)
		t := table{header: []string{"metric"}}
		for _, g := range gs {
			t.header = append(t.header, g.Topology)
		}
		t.header = append(t.header, "significant differences")
		for _, f := range RepeatFigures {
			row := []string{f.Name}
			any := false
			for _, g := range gs {
				sp := g.Figures[f.Key]
				any = any || sp.N > 0
				row = append(row, spreadCell(sp, f.format))
			}
			if !any {
				continue
			}
			t.rows = append(t.rows, append(row, s.significance(f.Key, rate, f.Higher)))
		}
		row := []string{"runs (failed)"}
		for _, g := range gs {
			row = append(row, fmt.Sprintf("%d (%d)", len(g.Runs), g.Failed))
		}
		t.rows = append(t.rows, append(row, ""))
		title := ""
		if len(rates) > 1 {
			title = "at " + scenario.FormatRate(rate)
		}
		out = append(out, resultTable{title: title, t: t})
	}
	return out
}

// resultTable is a titled table.
type resultTable struct {
	title string
	t     table
}

// repeatVerdictTable is the compact table under the summary of a repeated
// scenario: one row per topology and rate, medians with ranges.
func repeatVerdictTable(s *RepeatSummary) table {
	t := table{header: []string{"topology", "runs", "acked/s", "publish p99", "max unavailable", "detection", "convergence", "lost", "dup", "reordered"}}
	rates := s.rates()
	for _, rate := range rates {
		for _, g := range s.groupsAt(rate) {
			name := g.Topology
			if len(rates) > 1 {
				name += " @ " + scenario.FormatRate(rate)
			}
			cell := func(key string) string {
				f, _ := lookupFigure(key)
				return spreadCell(g.Figures[key], f.format)
			}
			t.rows = append(t.rows, []string{name, strconv.Itoa(len(g.Runs) - g.Failed), cell("publish_rate"), cell("publish_p99_ms"),
				cell("max_unavailability_s"), cell("detection_s"), cell("convergence_s"), cell("lost"), cell("duplicated"), cell("reordered")})
		}
	}
	return t
}

// faultKindNote introduces faultKindTable.
const faultKindNote = "Every occurrence of a kind of fault (its action and the kind of its target) in every repeat is one sample. " +
	"Write unavailability as in the fault table; detection and convergence as median (range) over the occurrences that reported them."

// faultKindTable gives per topology and kind of fault the distribution of
// write unavailability, detection and convergence over every occurrence.
func faultKindTable(s *RepeatSummary) table {
	t := table{header: []string{"fault", "topology", "n", "unavailable min", "p50", "p90", "max", "detection p50 (range)", "convergence p50 (range)", "not recovered"}}
	rates := s.rates()
	for _, kind := range s.kinds() {
		for _, rate := range rates {
			for _, g := range s.groupsAt(rate) {
				for _, k := range g.FaultKinds {
					if k.Kind != kind {
						continue
					}
					name := g.Topology
					if len(rates) > 1 {
						name += " @ " + scenario.FormatRate(rate)
					}
					u := k.Unavailable
					t.rows = append(t.rows, []string{kind, name, strconv.Itoa(u.N), humanSeconds(u.Min), humanSeconds(u.Median), humanSeconds(u.P90), humanSeconds(u.Max),
						spreadCell(k.Detection, humanSeconds), spreadCell(k.Convergence, humanSeconds), strconv.Itoa(k.Unrecovered)})
				}
			}
		}
	}
	return t
}

// kinds lists the fault kinds in the order they first occur.
func (s *RepeatSummary) kinds() []string {
	var out []string
	for _, g := range s.Groups {
		for _, k := range g.FaultKinds {
			if !slices.Contains(out, k.Kind) {
				out = append(out, k.Kind)
			}
		}
	}
	return out
}

// repeatFindings are the summary sentences of a repeated scenario: how it
// ran, the headline figures with their ranges and which differences are
// significant, each kind of fault's distribution, then the per-run
// failures, data-safety findings and noise.
func repeatFindings(all []analysis.TopologyResult, s *RepeatSummary) []finding {
	heads := labels(all)
	var out []finding
	for i, tr := range all {
		if tr.Error != "" {
			out = append(out, finding{fmt.Sprintf("%s did not complete: %s.", heads[i], strings.TrimSuffix(tr.Error, ".")), anchorSideBySide})
		}
	}
	out = append(out, finding{fmt.Sprintf("Each topology ran %d times, "+s.how()+"; figures are medians with the range over the repeats. "+
		"A difference is significant only when the ranges do not overlap (p = %s for %d against %d repeats when there is no difference).",
		s.Count, fmtP(2/binomial(2*s.Count, s.Count)), s.Count, s.Count), anchorSideBySide})
	rates := s.rates()
	for _, rate := range rates {
		at := ""
		if len(rates) > 1 {
			at = " at " + scenario.FormatRate(rate)
		}
		gs := s.groupsAt(rate)
		for _, key := range []string{"publish_rate", "publish_p99_ms", "max_unavailability_s"} {
			f, _ := lookupFigure(key)
			if text := figureSentence(s, gs, f.Name+at, key, rate, f.format, f.Higher); text != "" {
				out = append(out, finding{text, anchorSideBySide})
			}
		}
		for _, kind := range s.kinds() {
			if text := kindSentence(s, gs, kind, at, rate); text != "" {
				out = append(out, finding{text, anchorFaults})
			}
		}
	}
	out = append(out, safetyFindings(all, heads)...)
	out = append(out, saturationFindings(medianRuns(all, s))...)
	out = append(out, repeatNoiseFindings(all)...)
	return out
}

// figureSentence: "publish rate: coordinator 4.9k (4.8k–5k), nameserver
// ...; coordinator > nameserver is significant (p 0.1), the other
// differences lie within the spread."
func figureSentence(s *RepeatSummary, gs []RepeatGroup, name, key string, rate float64, format func(float64) string, higher bool) string {
	var parts []string
	for _, g := range gs {
		if sp := g.Figures[key]; sp.N > 0 {
			parts = append(parts, g.Topology+" "+spreadCell(sp, format))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return name + ": " + joinAnd(parts) + "; " + significanceClause(s, key, rate, higher, len(parts)) + "."
}

// significanceClause says which differences of a figure are significant.
func significanceClause(s *RepeatSummary, key string, rate float64, higher bool, n int) string {
	if n < 2 {
		return "one topology, nothing to compare"
	}
	sig := s.significant(key, rate)
	pairs := n * (n - 1) / 2
	if len(sig) == 0 {
		if pairs == 1 {
			return "the difference lies within the spread (not significant)"
		}
		return "every difference lies within the spread (none significant)"
	}
	op := " < "
	if higher {
		op = " > "
	}
	var named []string
	for _, c := range sig {
		named = append(named, c.Better+op+c.other()+" (p "+fmtP(c.P)+")")
	}
	text := "significant: " + joinAnd(named)
	if len(sig) < pairs {
		text += "; the other differences lie within the spread"
	}
	return text
}

// kindSentence: "kill leader, write unavailability: coordinator p50 2.1 s
// (min 1.9, p90 2.4, max 2.5 s), ...; significant: ...".
func kindSentence(s *RepeatSummary, gs []RepeatGroup, kind, at string, rate float64) string {
	var parts []string
	hit := false
	for _, g := range gs {
		for _, k := range g.FaultKinds {
			if k.Kind != kind || k.Unavailable.N == 0 {
				continue
			}
			u := k.Unavailable
			hit = hit || u.Max > 0 || k.Unrecovered > 0
			p := fmt.Sprintf("%s p50 %s (min %s, p90 %s, max %s", g.Topology, humanSeconds(u.Median), humanSeconds(u.Min), humanSeconds(u.P90), humanSeconds(u.Max))
			if k.Unrecovered > 0 {
				p += fmt.Sprintf("; %d of %d never recovered", k.Unrecovered, u.N)
			}
			parts = append(parts, p+")")
		}
	}
	if len(parts) == 0 || !hit {
		return ""
	}
	return fmt.Sprintf("After %s%s, write unavailability: %s; %s.", kind, at, joinAnd(parts),
		significanceClause(s, unavailabilityFigure(kind), rate, false, len(parts)))
}

// repeatNoiseFindings counts the runs with noise warnings instead of
// naming each.
func repeatNoiseFindings(all []analysis.TopologyResult) []finding {
	n := 0
	var first string
	for _, tr := range all {
		if tr.Noise != nil && len(tr.Noise.Warnings) > 0 {
			n++
			if first == "" {
				first = joinAnd(tr.Noise.Warnings)
			}
		}
	}
	if n == 0 {
		return nil
	}
	return []finding{{fmt.Sprintf("Noise: %d of %d runs shared the machine with enough other work to move their figures (e.g. %s); the interleaved order spreads it over every topology, and the ranges include it.",
		n, len(all), first), anchorSideBySide}}
}

// firstRepeat keeps the runs of repeat 1 (all runs of an unrepeated
// scenario): the per-run charts show one repeat, not N overlaid.
func firstRepeat(all []analysis.TopologyResult) []analysis.TopologyResult {
	var out []analysis.TopologyResult
	for _, tr := range all {
		if tr.Repeat <= 1 {
			out = append(out, tr)
		}
	}
	return out
}

// spreadChart draws one figure per topology (and rate): a dot per repeat,
// a whisker from the lowest to the highest and a bar at the median.
func spreadChart(s *RepeatSummary, key string) (string, []legendItem, error) {
	p, legend, width, err := spreadPlot(s, key)
	if p == nil || err != nil {
		return "", nil, err
	}
	svg, err := renderSVG(p, width, 2.8*vg.Inch)
	return svg, legend, err
}

// spreadPlot builds spreadChart's plot and its width; nil when there is
// nothing to draw.
func spreadPlot(s *RepeatSummary, key string) (*plot.Plot, []legendItem, vg.Length, error) {
	f, ok := lookupFigure(key)
	if !ok {
		return nil, nil, 0, nil
	}
	var names []string
	var gs []RepeatGroup
	rates := s.rates()
	for _, rate := range rates {
		for _, g := range s.groupsAt(rate) {
			if g.Figures[key].N == 0 {
				continue
			}
			name := g.Topology
			if len(rates) > 1 {
				name += " @ " + scenario.FormatRate(rate)
			}
			names = append(names, name)
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return nil, nil, 0, nil
	}
	p := newPlot(f.Name+" over the repeats", "", axisUnit(key))
	var legend []legendItem
	seen := map[scenario.Topology]bool{}
	for i, g := range gs {
		c := topologyOrExtra(g.Topology, i)
		if err := addSpread(p, float64(i), 0.18, g.Figures[key], c); err != nil {
			return nil, nil, 0, err
		}
		if !seen[g.Topology] {
			seen[g.Topology] = true
			legend = append(legend, legendItem{Name: g.Topology, Color: cssColor(c)})
		}
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	width := math.Max(3.6, math.Min(10.5, 0.9*float64(len(gs))+1.5))
	return p, legend, vg.Length(width) * vg.Inch, nil
}

// addSpread draws a spread at x: the whisker, a bar of width 2*half at the
// median and a dot per value (spread sideways so equal values show).
func addSpread(p *plot.Plot, x, half float64, sp Spread, c color.RGBA) error {
	if sp.N == 0 {
		return nil
	}
	whisker, err := line(plotter.XYs{{X: x, Y: finite(sp.Min)}, {X: x, Y: finite(sp.Max)}}, c, false)
	if err != nil {
		return err
	}
	med, err := line(plotter.XYs{{X: x - half, Y: finite(sp.Median)}, {X: x + half, Y: finite(sp.Median)}}, c, false)
	if err != nil {
		return err
	}
	med.Width = vg.Points(2.5)
	pts := make(plotter.XYs, len(sp.Values))
	for i, v := range sp.Values {
		off := 0.0
		if len(sp.Values) > 1 {
			off = half * (2*float64(i)/float64(len(sp.Values)-1) - 1) * 0.7
		}
		pts[i] = plotter.XY{X: x + off, Y: finite(v)}
	}
	dots, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	dots.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2), Shape: draw.RingGlyph{}}
	p.Add(whisker, med, dots)
	return nil
}

// faultKindChart draws write unavailability per kind of fault (groups) and
// topology: a dot per occurrence, the min–max whisker, a bar at p50 and a
// thinner one at p90.
func faultKindChart(s *RepeatSummary) (string, []legendItem, error) {
	p, legend, width, err := faultKindPlot(s)
	if p == nil || err != nil {
		return "", nil, err
	}
	svg, err := renderSVG(p, width, 3*vg.Inch)
	return svg, legend, err
}

// faultKindPlot builds faultKindChart's plot and its width; nil when there
// is nothing to draw.
func faultKindPlot(s *RepeatSummary) (*plot.Plot, []legendItem, vg.Length, error) {
	kinds := s.kinds()
	if len(kinds) == 0 {
		return nil, nil, 0, nil
	}
	var topos []scenario.Topology
	rates := s.rates()
	rate := rates[len(rates)-1] // the faults of a sweep's last step: one chart, not one per rate
	gs := s.groupsAt(rate)
	for _, g := range gs {
		topos = append(topos, g.Topology)
	}
	p := newPlot("write unavailability per kind of fault", "", "seconds")
	var legend []legendItem
	n := float64(len(gs))
	slot := 0.8 / math.Max(n, 1)
	for i, g := range gs {
		c := topologyOrExtra(g.Topology, i)
		for j, kind := range kinds {
			for _, k := range g.FaultKinds {
				if k.Kind != kind {
					continue
				}
				x := float64(j) + (float64(i)-(n-1)/2)*slot
				if err := addSpread(p, x, slot*0.35, k.Unavailable, c); err != nil {
					return nil, nil, 0, err
				}
				p90, err := line(plotter.XYs{{X: x - slot*0.2, Y: finite(k.Unavailable.P90)}, {X: x + slot*0.2, Y: finite(k.Unavailable.P90)}}, c, true)
				if err != nil {
					return nil, nil, 0, err
				}
				p.Add(p90)
			}
		}
		legend = append(legend, legendItem{Name: topos[i], Color: cssColor(c)})
	}
	legend = append(legend, legendItem{Name: "p90", Color: cssColor(grey), Dashed: true})
	p.NominalX(kinds...)
	p.Y.Min = 0
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	width := math.Max(4.5, math.Min(10.5, 1.6*float64(len(kinds))+1.5))
	return p, legend, vg.Length(width) * vg.Inch, nil
}

// topologyOrExtra is a topology's colour, or a spare one.
func topologyOrExtra(t scenario.Topology, i int) color.RGBA {
	if c, ok := topologyColor(t); ok {
		return c
	}
	return extraColors[i%len(extraColors)]
}

// medianRuns stands in one result per topology and rate for a repeated
// scenario's runs, with the medians of the figures the rate sweep reads
// (acked rate, publish p99): the sweep table, chart and saturation
// sentences then read medians. Without repeats it returns all.
func medianRuns(all []analysis.TopologyResult, s *RepeatSummary) []analysis.TopologyResult {
	if s == nil {
		return all
	}
	out := make([]analysis.TopologyResult, 0, len(s.Groups))
	for _, g := range s.Groups {
		tr := analysis.TopologyResult{Topology: g.Topology, TargetRate: g.TargetRate}
		if g.Failed == len(g.Runs) {
			tr.Error = "every repeat failed"
		}
		tr.Summary.PublishRate = g.Figures["publish_rate"].Median
		tr.Summary.PublishP99Ms = g.Figures["publish_p99_ms"].Median
		out = append(out, tr)
	}
	return out
}

// axisUnit is the y-axis label of a figure, read from its key's suffix.
func axisUnit(key string) string {
	switch {
	case strings.HasSuffix(key, "_ms"):
		return "ms"
	case strings.HasSuffix(key, "_s"):
		return "seconds"
	case strings.HasSuffix(key, "_rate"):
		return "msgs/s"
	}
	return ""
}
