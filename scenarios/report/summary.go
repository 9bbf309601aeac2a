package report

import (
	"fmt"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The summary opens both reports: a few sentences that say what the run
// found, generated from the figures, and one compact table. Each sentence
// links to the table or chart it comes from, so a reader can check it.

// Anchors of the report sections a finding can point at (report.html ids;
// GitHub derives the same ones from report.md's headings).
const (
	anchorSideBySide = "side-by-side"
	anchorFaults     = "faults"
	anchorChecker    = "checker-findings"
	anchorSweep      = "rate-sweep"
	anchorUnreadable = "unreadable-partitions"
)

// finding is one sentence of the summary and the section it is read from.
type finding struct {
	Text   string
	Anchor string
}

// findings derives the summary sentences from the results, in reading
// order: failures to run, recovery after each fault, data safety,
// saturation in a rate sweep.
func findings(all []analysis.TopologyResult) []finding {
	var out []finding
	heads := labels(all)
	for i, tr := range all {
		if tr.Error != "" {
			out = append(out, finding{fmt.Sprintf("%s did not complete: %s.", heads[i], strings.TrimSuffix(tr.Error, ".")), anchorSideBySide})
		}
	}
	out = append(out, faultFindings(all, heads)...)
	out = append(out, rollFindings(all, heads)...)
	out = append(out, safetyFindings(all, heads)...)
	out = append(out, saturationFindings(all)...)
	out = append(out, noiseFindings(all, heads)...)
	if len(out) == 0 {
		out = append(out, finding{"No fault was injected and no topology lost, duplicated or reordered a message.", anchorSideBySide})
	}
	return out
}

// faultOutcome is one topology's figure for one fault.
type faultOutcome struct {
	head string
	f    analysis.FaultResult
}

// faultGroups matches faults across topologies (the n-th occurrence of an
// action on a target) and keeps the ones that stopped writes somewhere or
// that a control plane had to detect, in timeline order.
func faultGroups(all []analysis.TopologyResult, heads []string) ([]faultKey, map[faultKey][]faultOutcome) {
	var keys []faultKey
	by := map[faultKey][]faultOutcome{}
	for i, tr := range all {
		seen := map[faultKey]int{}
		for _, f := range tr.Faults {
			k := faultKey{f.Action, f.Target, 0}
			k.n = seen[k]
			seen[faultKey{f.Action, f.Target, 0}]++
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], faultOutcome{heads[i], f})
		}
	}
	return keys, by
}

func faultFindings(all []analysis.TopologyResult, heads []string) []finding {
	keys, by := faultGroups(all, heads)
	var out []finding
	for j, k := range keys {
		os := slices.Clone(by[k])
		name := fmt.Sprintf("F%d (%s %s at %s)", j+1, k.action, k.target, humanSeconds(os[0].f.AtS))
		hit := 0
		for _, o := range os {
			if o.f.UnavailableS > 0 || !o.f.Recovered {
				hit++
			}
		}
		if hit == 0 {
			if len(os) > 0 && isNodeLoss(k.action) {
				out = append(out, finding{fmt.Sprintf("After %s no topology stopped taking writes.", name), anchorFaults})
			}
			continue
		}
		slices.SortStableFunc(os, func(a, b faultOutcome) int { return cmpOutcome(a.f, b.f) })
		best := os[0]
		var s strings.Builder
		switch {
		case len(os) == 1:
			fmt.Fprintf(&s, "After %s, %s was unwritable for %s", name, best.head, outage(best.f))
		case best.f.UnavailableS == 0 && best.f.Recovered:
			fmt.Fprintf(&s, "After %s, %s kept taking writes", name, best.head)
		default:
			fmt.Fprintf(&s, "After %s, %s recovered first: %s of write unavailability", name, best.head, outage(best.f))
		}
		if len(os) > 1 {
			others := make([]string, 0, len(os)-1)
			for _, o := range os[1:] {
				others = append(others, fmt.Sprintf("%s %s", o.head, outage(o.f)))
			}
			s.WriteString(", against " + joinAnd(others))
			if second := os[1].f; best.f.UnavailableS > 0 && second.Recovered && second.UnavailableS >= 1.5*best.f.UnavailableS {
				fmt.Fprintf(&s, " (%s as long for the next)", ratio(second.UnavailableS/best.f.UnavailableS))
			}
		}
		s.WriteString(".")
		if d := detectionNote(os); d != "" {
			s.WriteString(" " + d)
		}
		out = append(out, finding{s.String(), anchorFaults})
	}
	return out
}

func isNodeLoss(a scenario.Action) bool {
	switch a {
	case scenario.ActionRestart:
		return false
	}
	return !strings.HasPrefix(string(a), "heal") && !strings.HasPrefix(string(a), "resume") && !strings.HasPrefix(string(a), "rejoin")
}

// cmpOutcome orders recovered before unrecovered, then shorter outages.
func cmpOutcome(a, b analysis.FaultResult) int {
	if a.Recovered != b.Recovered {
		if a.Recovered {
			return -1
		}
		return 1
	}
	switch {
	case a.UnavailableS < b.UnavailableS:
		return -1
	case a.UnavailableS > b.UnavailableS:
		return 1
	}
	return 0
}

func outage(f analysis.FaultResult) string {
	if !f.Recovered {
		return "until the end of the run (never recovered)"
	}
	return humanSeconds(f.UnavailableS)
}

// detectionNote says how fast each control plane noticed, when it did.
func detectionNote(os []faultOutcome) string {
	var parts []string
	for _, o := range os {
		if o.f.DetectionS != nil {
			parts = append(parts, fmt.Sprintf("%s %s", o.head, humanSeconds(*o.f.DetectionS)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Detection: " + joinAnd(parts) + "."
}

func safetyFindings(all []analysis.TopologyResult, heads []string) []finding {
	var out []finding
	dirty := map[string]bool{}
	for i, tr := range all {
		s := tr.Summary
		var bad []string
		if s.Lost > 0 {
			bad = append(bad, plural(s.Lost, "acknowledged message")+" lost")
		}
		if s.Duplicated > 0 {
			bad = append(bad, plural(s.Duplicated, "message")+" delivered twice")
		}
		if s.Reordered > 0 {
			bad = append(bad, plural(s.Reordered, "message")+" out of order within a producer's partition")
		}
		if s.Unexpected > 0 {
			bad = append(bad, plural(s.Unexpected, "message")+" nobody sent")
		}
		if us := tr.Check.UnreadablePartitions; len(us) > 0 {
			// Not loss: the verification read could not tell.
			dirty[tr.Topology] = true
			parts := make([]string, len(us))
			for j, u := range us {
				parts[j] = strconv.Itoa(int(u.Partition))
			}
			out = append(out, finding{fmt.Sprintf("%s: %s could not be read back (partition %s not read to its end in %s); not counted as lost.",
				heads[i], plural(s.Unreadable, "acknowledged message"), strings.Join(parts, ", "), humanSeconds(us[0].ForS)), anchorUnreadable})
		}
		if len(bad) == 0 {
			if tr.Error != "" || s.Sent == 0 {
				dirty[tr.Topology] = true
			}
			continue
		}
		dirty[tr.Topology] = true
		out = append(out, finding{fmt.Sprintf("%s: %s.", heads[i], joinAnd(bad)), anchorChecker})
	}
	// A topology is named clean once, however many rate steps it ran.
	var clean []string
	for _, t := range sortedTopologies(all) {
		if !dirty[t] {
			clean = append(clean, t)
		}
	}
	switch {
	case len(clean) == 0:
	case len(out) == 0 && len(clean) > 1:
		out = append(out, finding{"No topology lost, duplicated or reordered a message: " + joinAnd(clean) + " delivered every acknowledged message once, in order.", anchorChecker})
	default:
		out = append(out, finding{joinAnd(clean) + " lost, duplicated and reordered nothing.", anchorChecker})
	}
	return out
}

// saturationFindings name, per topology of a rate sweep, the highest rate it
// kept up with (acked at least 95 % of the target) and what happened above.
func saturationFindings(all []analysis.TopologyResult) []finding {
	var out []finding
	for _, t := range sortedTopologies(all) {
		var steps []analysis.TopologyResult
		for _, tr := range all {
			if tr.Topology == t && tr.Error == "" {
				steps = append(steps, tr)
			}
		}
		if len(steps) < 2 {
			continue
		}
		slices.SortStableFunc(steps, func(a, b analysis.TopologyResult) int { return cmpRate(a.TargetRate, b.TargetRate) })
		var kept, first *analysis.TopologyResult
		for i := range steps {
			s := &steps[i]
			if keptUp(*s) {
				kept = s
			} else if first == nil {
				first = s
			}
		}
		var text string
		switch {
		case kept == nil:
			text = fmt.Sprintf("%s kept up with none of the swept rates (at %s it acked %s/s).", t, scenario.FormatRate(steps[0].TargetRate), humanNumber(steps[0].Summary.PublishRate))
		case first == nil:
			text = fmt.Sprintf("%s kept up with every swept rate, up to %s (p99 %s).", t, scenario.FormatRate(kept.TargetRate), humanMs(kept.Summary.PublishP99Ms))
		default:
			text = fmt.Sprintf("%s kept up to %s (p99 %s); at %s it acked %s/s with p99 %s: saturated.", t,
				scenario.FormatRate(kept.TargetRate), humanMs(kept.Summary.PublishP99Ms),
				scenario.FormatRate(first.TargetRate), humanNumber(first.Summary.PublishRate), humanMs(first.Summary.PublishP99Ms))
		}
		out = append(out, finding{text, anchorSweep})
	}
	return out
}

// keptUp: an unbounded step always counts as kept up (it has no target).
func keptUp(t analysis.TopologyResult) bool {
	return t.TargetRate <= 0 || t.Summary.PublishRate >= 0.95*t.TargetRate
}

// cmpRate sorts unbounded (0) last.
func cmpRate(a, b float64) int {
	if a == 0 {
		a = math.Inf(1)
	}
	if b == 0 {
		b = math.Inf(1)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// verdictTable is the compact table under the summary: one row per topology
// result, the figures a reader chooses by.
func verdictTable(all []analysis.TopologyResult, heads []string) table {
	t := table{header: []string{"topology", "acked/s", "publish p99", "max unavailable", "detection", "convergence", "lost", "dup", "reordered"}}
	for i, tr := range all {
		s := tr.Summary
		det, conv := "–", "–"
		if s.DetectionS != nil {
			det = humanSeconds(*s.DetectionS)
		}
		if s.ConvergenceS != nil {
			conv = humanSeconds(*s.ConvergenceS)
		}
		t.rows = append(t.rows, []string{heads[i], humanNumber(s.PublishRate), humanMs(s.PublishP99Ms),
			humanSeconds(s.MaxUnavailabilityS), det, conv, fmtCount(s.Lost), fmtCount(s.Duplicated), fmtCount(s.Reordered)})
	}
	return t
}

// humanNumber writes 1941 as "1941", 44400 as "44.4k", 1.2e6 as "1.2M".
func humanNumber(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case a >= 1e6:
		return trimZero(strconv.FormatFloat(v/1e6, 'f', 1, 64)) + "M"
	case a >= 1e4:
		return trimZero(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// humanSeconds writes 0.09 as "90 ms", 1.92 as "1.92 s", 120 as "2 min".
func humanSeconds(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v == 0:
		return "0 s"
	case v < 1:
		return fmtSig(v*1000) + " ms"
	case v >= 120:
		return fmtSig(v/60) + " min"
	}
	return fmtSig(v) + " s"
}

// humanMs writes a latency in milliseconds as ms or s.
func humanMs(v float64) string {
	if v >= 1000 {
		return humanSeconds(v / 1000)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmtSig(v) + " ms"
}

func ratio(r float64) string {
	if r >= 10 {
		return strconv.FormatFloat(r, 'f', 0, 64) + "×"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "×"
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	// "acknowledged message" -> "acknowledged messages"
	return strconv.FormatInt(n, 10) + " " + what + "s"
}

// joinAnd writes a, b and c.
func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// resultGroup is a titled subset of the results.
type resultGroup struct {
	title   string
	results []analysis.TopologyResult
}

// sideBySideGroups splits a rate sweep into one side-by-side table per
// target rate, so a table has one column per topology however many rates
// were swept; without a sweep it is one untitled group.
func sideBySideGroups(all []analysis.TopologyResult) []resultGroup {
	if !isSweep(all) {
		return []resultGroup{{results: all}}
	}
	var rates []float64
	for _, tr := range all {
		if !slices.Contains(rates, tr.TargetRate) {
			rates = append(rates, tr.TargetRate)
		}
	}
	slices.SortFunc(rates, cmpRate)
	out := make([]resultGroup, 0, len(rates))
	for _, r := range rates {
		g := resultGroup{title: "at " + scenario.FormatRate(r)}
		for _, tr := range all {
			if tr.TargetRate == r {
				g.results = append(g.results, tr)
			}
		}
		out = append(out, g)
	}
	return out
}

// isSweep reports whether some topology ran more than one rate.
func isSweep(all []analysis.TopologyResult) bool {
	for _, tr := range all {
		if rateSteps(all, tr.Topology) > 1 {
			return true
		}
	}
	return false
}

// sweepTable pivots a rate sweep: target rates as rows, topologies as
// columns, each cell the acked rate and publish p99.
func sweepTable(all []analysis.TopologyResult) table {
	if !isSweep(all) {
		return table{}
	}
	topos := sortedTopologies(all)
	t := table{header: append([]string{"target rate"}, topos...)}
	for _, g := range sideBySideGroups(all) {
		row := []string{strings.TrimPrefix(g.title, "at ")}
		for _, topo := range topos {
			cell := "–"
			for _, tr := range g.results {
				if tr.Topology == topo {
					cell = humanNumber(tr.Summary.PublishRate) + "/s, p99 " + humanMs(tr.Summary.PublishP99Ms)
					if tr.Error != "" {
						cell = "failed"
					}
				}
			}
			row = append(row, cell)
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// noiseFindings warns about every topology whose run shared the machine
// with enough other work to move its figures.
func noiseFindings(all []analysis.TopologyResult, heads []string) []finding {
	var parts []string
	for i, tr := range all {
		if tr.Noise == nil || len(tr.Noise.Warnings) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("while %s ran, %s", heads[i], joinAnd(tr.Noise.Warnings)))
	}
	if len(parts) == 0 {
		return nil
	}
	// One sentence for the whole run: noise is a property of the machine.
	return []finding{{"Noise: " + strings.Join(parts, "; ") + ". Figures taken under such load may be off.", anchorSideBySide}}
}
