package report

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Repeated runs. A scenario with repeat: N runs every topology (and every
// rate of a sweep) N times, each on a fresh cluster, in interleaved order:
// repeat 1 of every topology, then repeat 2 of every topology, and so on
// (A B C A B C), so that drift of the machine during the session falls on
// every topology alike rather than on the one that ran last.
//
// Every figure then has a spread over the repeats (min, median, p90, max,
// and the values themselves in result.json), and two topologies differ
// significantly in a figure only when their ranges do not overlap: every
// repeat of one is better than every repeat of the other. When both really
// have the same distribution, that happens by chance with probability
// 2/C(n+m, n) for n and m repeats (the extreme of a Mann-Whitney test):
// 0.33 for 2 and 2 repeats, 0.1 for 3 and 3, 0.008 for 5 and 5, 1e-5 for
// 10 and 10. Reports state it next to each significant difference.

// Spread summarises one figure over the repeats. Quantiles interpolate
// linearly between the sorted values (the median of 1, 2, 3, 10 is 2.5).
type Spread struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Max    float64 `json:"max"`
	// Values are the figure of each repeat, in run order.
	Values []float64 `json:"values"`
}

// NewSpread summarises values (NaN and infinities left out).
func NewSpread(values []float64) Spread {
	var vs []float64
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			vs = append(vs, v)
		}
	}
	s := Spread{N: len(vs), Values: vs}
	if len(vs) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(vs))
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Median, s.P90 = quantile(sorted, 0.5), quantile(sorted, 0.9)
	return s
}

// quantile of sorted values, interpolating between closest ranks.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// RepeatSummary is result.json's "repeats": the spread of every figure per
// topology and rate step, per fault kind, and which differences between
// topologies are significant.
type RepeatSummary struct {
	// Count is the repeats per topology the scenario asked for.
	Count int `json:"count"`
	// Reused says the repeats of a topology ran back to back on one
	// cluster (Spec.Reuse) rather than interleaved, a fresh one each.
	Reused bool          `json:"reused,omitempty"`
	Groups []RepeatGroup `json:"groups"`
	// Comparisons pairs the topologies of each rate step, figure by
	// figure.
	Comparisons []Comparison `json:"comparisons,omitempty"`
}

// RepeatGroup is one topology at one rate over its repeats.
type RepeatGroup struct {
	Topology   scenario.Topology `json:"topology"`
	TargetRate float64           `json:"target_rate"`
	// Runs indexes Result.Topologies, in run order.
	Runs []int `json:"runs"`
	// Failed counts runs that ended with an error; their figures are left
	// out.
	Failed int `json:"failed"`
	// Figures maps a figure key (RepeatFigures) to its spread.
	Figures map[string]Spread `json:"figures"`
	// FaultKinds is the distribution per kind of fault (action and target
	// kind, "kill leader"), every occurrence in every repeat one sample.
	FaultKinds []FaultKindSpread `json:"fault_kinds,omitempty"`
}

// FaultKindSpread is the distribution of one kind of fault's effects.
type FaultKindSpread struct {
	Kind string `json:"kind"`
	// Unavailable is topic-level write unavailability in seconds (the
	// whole run's remainder for a fault writes never recovered from).
	Unavailable Spread `json:"unavailable_s"`
	// Detection and Convergence are in seconds, from the occurrences that
	// reported them.
	Detection   Spread `json:"detection_s"`
	Convergence Spread `json:"convergence_s"`
	// Unrecovered counts occurrences after which some partition never
	// took a write again.
	Unrecovered int `json:"unrecovered,omitempty"`
}

// Comparison says whether two topologies differ in a figure beyond the
// spread of their repeats.
type Comparison struct {
	Figure     string            `json:"figure"`
	TargetRate float64           `json:"target_rate"`
	A          scenario.Topology `json:"a"`
	B          scenario.Topology `json:"b"`
	// Significant: the ranges (min to max) do not overlap.
	Significant bool `json:"significant"`
	// Better is the topology with the better figure when Significant.
	Better scenario.Topology `json:"better,omitempty"`
	// P is the chance of ranges this far apart when the two do not
	// differ at all: 2/C(n+m, n); 1 when they overlap.
	P float64 `json:"p"`
}

// RepeatFigure is a figure reported with its spread.
type RepeatFigure struct {
	Key  string
	Name string
	// Higher is true when a higher value is better.
	Higher bool
	// format writes a value for tables.
	format func(float64) string
	get    func(analysis.TopologyResult) (float64, bool)
}

func sumF(f func(analysis.Summary) float64) func(analysis.TopologyResult) (float64, bool) {
	return func(t analysis.TopologyResult) (float64, bool) { return f(t.Summary), true }
}

func optF(f func(analysis.Summary) *float64) func(analysis.TopologyResult) (float64, bool) {
	return func(t analysis.TopologyResult) (float64, bool) {
		if p := f(t.Summary); p != nil {
			return *p, true
		}
		return 0, false
	}
}

func countF(f func(analysis.Summary) int64) func(analysis.TopologyResult) (float64, bool) {
	return func(t analysis.TopologyResult) (float64, bool) { return float64(f(t.Summary)), true }
}

// RepeatFigures are the figures given with their spread, in table order.
var RepeatFigures = []RepeatFigure{
	{"publish_rate", "publish rate (acked/s)", true, humanNumber, sumF(func(s analysis.Summary) float64 { return s.PublishRate })},
	{"consume_rate", "consume rate (msgs/s)", true, humanNumber, sumF(func(s analysis.Summary) float64 { return s.ConsumeRate })},
	{"publish_p50_ms", "publish p50", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.PublishP50Ms })},
	{"publish_p99_ms", "publish p99", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.PublishP99Ms })},
	{"publish_p999_ms", "publish p99.9", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.PublishP999Ms })},
	{"publish_max_ms", "publish max", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.PublishMaxMs })},
	{"e2e_p50_ms", "e2e p50", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.E2EP50Ms })},
	{"e2e_p99_ms", "e2e p99", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.E2EP99Ms })},
	{"send_delay_p99_ms", "send delay p99", false, humanMs, sumF(func(s analysis.Summary) float64 { return s.SendDelayP99Ms })},
	{"max_unavailability_s", "max write unavailability", false, humanSeconds, sumF(func(s analysis.Summary) float64 { return s.MaxUnavailabilityS })},
	{"detection_s", "failure detection", false, humanSeconds, optF(func(s analysis.Summary) *float64 { return s.DetectionS })},
	{"convergence_s", "route convergence", false, humanSeconds, optF(func(s analysis.Summary) *float64 { return s.ConvergenceS })},
	{"failed", "failed sends", false, humanNumber, countF(func(s analysis.Summary) int64 { return s.Failed })},
	{"lost", "acked but lost", false, humanNumber, countF(func(s analysis.Summary) int64 { return s.Lost })},
	{"duplicated", "duplicated", false, humanNumber, countF(func(s analysis.Summary) int64 { return s.Duplicated })},
	{"reordered", "reordered", false, humanNumber, countF(func(s analysis.Summary) int64 { return s.Reordered })},
	{"cp_requests_per_s", "control-plane requests/s", false, fmtSig, sumF(func(s analysis.Summary) float64 { return s.CPRequestsPerS })},
	{"cpu_per_acked_us", "CPU per acked message (µs)", false, fmtSig, func(t analysis.TopologyResult) (float64, bool) { return cpuPerAcked(t), true }},
}

// lookupFigure finds a figure by key.
func lookupFigure(key string) (RepeatFigure, bool) {
	for _, f := range RepeatFigures {
		if f.Key == key {
			return f, true
		}
	}
	return RepeatFigure{}, false
}

// AggregateRepeats computes the repeat summary of a result whose runs
// carry repeat numbers; nil when none does (an unrepeated run).
func AggregateRepeats(r Result) *RepeatSummary {
	repeated := slices.ContainsFunc(r.Topologies, func(t analysis.TopologyResult) bool { return t.Repeat > 0 })
	// A repeated rate search probes different rates each time: its spread
	// is the knee's (searchTable), not that of runs at one rate.
	if !repeated || len(r.Searches) > 0 {
		return nil
	}
	sum := &RepeatSummary{Count: r.Scenario.Repeats(), Reused: r.Scenario.Reuse}
	at := map[groupKey]int{}
	for i, tr := range r.Topologies {
		k := groupKey{tr.Topology, tr.TargetRate}
		j, ok := at[k]
		if !ok {
			j = len(sum.Groups)
			at[k] = j
			sum.Groups = append(sum.Groups, RepeatGroup{Topology: tr.Topology, TargetRate: tr.TargetRate})
		}
		sum.Groups[j].Runs = append(sum.Groups[j].Runs, i)
	}
	for i := range sum.Groups {
		sum.Groups[i].fill(r.Topologies)
	}
	sum.Comparisons = compareGroups(sum.Groups)
	return sum
}

type groupKey struct {
	topology scenario.Topology
	rate     float64
}

// fill computes a group's figures and fault kinds from its runs.
func (g *RepeatGroup) fill(all []analysis.TopologyResult) {
	vals := map[string][]float64{}
	type kindVals struct{ unav, det, conv []float64 }
	kinds := map[string]*kindVals{}
	var order []string
	unrecovered := map[string]int{}
	for _, i := range g.Runs {
		tr := all[i]
		if tr.Error != "" {
			g.Failed++
			continue
		}
		for _, f := range RepeatFigures {
			if v, ok := f.get(tr); ok {
				vals[f.Key] = append(vals[f.Key], v)
			}
		}
		for _, f := range tr.Faults {
			if f.Err != "" {
				continue // skipped or failed to apply: nothing to measure
			}
			k := FaultKind(f.Action, f.Target)
			kv, ok := kinds[k]
			if !ok {
				kv = &kindVals{}
				kinds[k] = kv
				order = append(order, k)
			}
			kv.unav = append(kv.unav, f.UnavailableS)
			if !f.Recovered {
				unrecovered[k]++
			}
			if f.DetectionS != nil {
				kv.det = append(kv.det, *f.DetectionS)
			}
			if f.ConvergenceS != nil {
				kv.conv = append(kv.conv, *f.ConvergenceS)
			}
		}
	}
	g.Figures = map[string]Spread{}
	for k, vs := range vals {
		g.Figures[k] = NewSpread(vs)
	}
	for _, k := range order {
		kv := kinds[k]
		g.FaultKinds = append(g.FaultKinds, FaultKindSpread{Kind: k, Unavailable: NewSpread(kv.unav),
			Detection: NewSpread(kv.det), Convergence: NewSpread(kv.conv), Unrecovered: unrecovered[k]})
	}
}

// FaultKind names the kind of a fault: its action and the kind of its
// target ("kill leader", "pause broker", "isolate nameserver", "cut
// link").
func FaultKind(a scenario.Action, target string) string {
	t, err := scenario.ParseTarget(target)
	if err != nil {
		return string(a) + " " + target
	}
	word := string(t.Kind)
	switch t.Kind {
	case scenario.TargetLeaderOf:
		word = "leader"
	case scenario.TargetFollowerOf:
		word = "follower"
	}
	return string(a) + " " + word
}

// unavailabilityFigure is the comparison key of a fault kind's
// unavailability ("unavailable_s[kill leader]").
func unavailabilityFigure(kind string) string { return "unavailable_s[" + kind + "]" }

// compareGroups pairs the topologies of each rate, figure by figure and
// fault kind by fault kind.
func compareGroups(groups []RepeatGroup) []Comparison {
	var out []Comparison
	for i := range groups {
		for j := i + 1; j < len(groups); j++ {
			a, b := groups[i], groups[j]
			if a.TargetRate != b.TargetRate || a.Topology == b.Topology {
				continue
			}
			for _, f := range RepeatFigures {
				if c, ok := compareSpreads(f.Key, f.Higher, a.Topology, a.Figures[f.Key], b.Topology, b.Figures[f.Key]); ok {
					c.TargetRate = a.TargetRate
					out = append(out, c)
				}
			}
			for _, ka := range a.FaultKinds {
				for _, kb := range b.FaultKinds {
					if ka.Kind != kb.Kind {
						continue
					}
					if c, ok := compareSpreads(unavailabilityFigure(ka.Kind), false, a.Topology, ka.Unavailable, b.Topology, kb.Unavailable); ok {
						c.TargetRate = a.TargetRate
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// compareSpreads compares two spreads of at least two values each.
func compareSpreads(figure string, higher bool, a scenario.Topology, sa Spread, b scenario.Topology, sb Spread) (Comparison, bool) {
	if sa.N < 2 || sb.N < 2 {
		return Comparison{}, false
	}
	c := Comparison{Figure: figure, A: a, B: b, P: 1}
	var lowT scenario.Topology
	switch {
	case sa.Max < sb.Min:
		lowT = a
	case sb.Max < sa.Min:
		lowT = b
	default:
		return c, true
	}
	c.Significant = true
	c.P = math.Min(1, 2/binomial(sa.N+sb.N, sa.N))
	c.Better = lowT
	if higher {
		c.Better = a
		if lowT == a {
			c.Better = b
		}
	}
	return c, true
}

// binomial is C(n, k) as a float.
func binomial(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// significant lists the significant comparisons of a figure at a rate.
func (s *RepeatSummary) significant(figure string, rate float64) []Comparison {
	var out []Comparison
	for _, c := range s.Comparisons {
		if c.Figure == figure && c.TargetRate == rate && c.Significant {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(x, y Comparison) int { return cmp.Compare(x.P, y.P) })
	return out
}

// other returns the topology of c that is not better.
func (c Comparison) other() scenario.Topology {
	if c.Better == c.A {
		return c.B
	}
	return c.A
}

// spreadCell writes "median (min–max)", or the value alone when all
// repeats agree.
func spreadCell(s Spread, format func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	if s.Min == s.Max {
		return format(s.Median)
	}
	return format(s.Median) + " (" + strings.TrimSuffix(format(s.Min), unitOf(format(s.Min), format(s.Max))) + "–" + format(s.Max) + ")"
}

// unitOf returns the unit suffix two formatted values share (" ms"), so a
// range reads "1.2–3.4 s" rather than "1.2 s–3.4 s".
func unitOf(a, b string) string {
	for _, u := range []string{" ms", " s", " min"} {
		if strings.HasSuffix(a, u) && strings.HasSuffix(b, u) {
			return u
		}
	}
	return ""
}
