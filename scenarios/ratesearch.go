package scenarios

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RateSearch is workload.rate_search: instead of a fixed list of rates,
// find per topology the highest rate the cluster sustains, like
// OpenMessaging Benchmark's max-rate mode. A probe is one ordinary run at
// one target rate; it passes when the producers keep up (acked rate at
// least KeepUp of the target) and publish p99, measured from the intended
// send time, stays below P99Below. The search doubles the rate from Start
// while probes pass (up to Max), halves it while they fail (down to Min),
// then bisects between the highest pass and the lowest failure until they
// are within Precision of each other, never running more than Steps
// probes per topology.
type RateSearch struct {
	// P99Below is the publish p99 bound a passing probe stays under.
	P99Below time.Duration `json:"p99_below"`
	// Start is the first rate probed, in msgs/s.
	Start float64 `json:"start"`
	// Max is the highest rate probed: a pass there ends the search.
	Max float64 `json:"max"`
	// Min is the lowest rate probed: a failure there ends the search with
	// no knee. Default Start/16.
	Min float64 `json:"min"`
	// Steps bounds the probe runs per topology (default 8).
	Steps int `json:"steps"`
	// KeepUp is the share of the target rate the acked rate must reach
	// (default 0.95).
	KeepUp float64 `json:"keep_up"`
	// Precision ends the search once the lowest failing rate is within
	// this share above the highest passing one (default 0.1: 10 %).
	Precision float64 `json:"precision"`
}

// Search defaults and bounds.
const (
	defaultSearchSteps     = 8
	defaultSearchKeepUp    = 0.95
	defaultSearchPrecision = 0.1
	maxSearchSteps         = 20
)

// withDefaults fills the fields a scenario left out.
func (r RateSearch) withDefaults() RateSearch {
	if r.Min == 0 {
		r.Min = r.Start / 16
	}
	if r.Steps == 0 {
		r.Steps = defaultSearchSteps
	}
	if r.KeepUp == 0 {
		r.KeepUp = defaultSearchKeepUp
	}
	if r.Precision == 0 {
		r.Precision = defaultSearchPrecision
	}
	return r
}

func (d *decoder) rateSearch(dst **RateSearch) fieldFunc {
	return func(n *yaml.Node, path string) {
		if isNull(n) {
			return
		}
		r := &RateSearch{}
		d.mapping(n, path, map[string]fieldFunc{
			"p99_below": d.duration(&r.P99Below),
			"start":     d.rate(&r.Start),
			"max":       d.rate(&r.Max),
			"min":       d.rate(&r.Min),
			"steps":     d.integer(&r.Steps),
			"keep_up":   d.fraction(&r.KeepUp),
			"precision": d.fraction(&r.Precision),
		})
		full := r.withDefaults()
		*dst = &full
	}
}

// rate is one bounded rate (2000, 2k, 5000/s; not max).
func (d *decoder) rate(dst *float64) fieldFunc {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path)
		if !ok {
			return
		}
		r, err := ParseRate(v)
		if err == nil && r == 0 {
			err = fmt.Errorf("%q: want a bounded rate here", v)
		}
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		*dst = r
	}
}

// fraction accepts 0.95 or 95%.
func (d *decoder) fraction(dst *float64) fieldFunc {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path)
		if !ok {
			return
		}
		s, scale := strings.TrimSpace(v), 1.0
		if t, ok := strings.CutSuffix(s, "%"); ok {
			s, scale = strings.TrimSpace(t), 0.01
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "%q is not a fraction (e.g. 0.95 or 95%%)", v)
			return
		}
		*dst = f * scale
	}
}

func (s Spec) validateRateSearch(v *validator) {
	r := s.Workload.RateSearch
	if r == nil {
		return
	}
	const p = "workload.rate_search"
	if _, ok := s.lines["workload.rate"]; ok {
		v.fail(p, "set workload.rate or workload.rate_search, not both")
	}
	v.durRange(p+".p99_below", r.P99Below, time.Millisecond, maxDuration)
	if !(r.Start > 0 && r.Start <= maxRate) {
		v.fail(p+".start", "%v out of range (0, %g]", r.Start, float64(maxRate))
	}
	if !(r.Max >= r.Start && r.Max <= maxRate) {
		v.fail(p+".max", "%v out of range [start %v, %g]", r.Max, r.Start, float64(maxRate))
	}
	if !(r.Min > 0 && r.Min <= r.Start) {
		v.fail(p+".min", "%v out of range (0, start %v]", r.Min, r.Start)
	}
	v.intRange(p+".steps", r.Steps, 1, maxSearchSteps)
	if !(r.KeepUp > 0 && r.KeepUp <= 1) {
		v.fail(p+".keep_up", "%v out of range (0, 1]", r.KeepUp)
	}
	if !(r.Precision > 0 && r.Precision <= 1) {
		v.fail(p+".precision", "%v out of range (0, 1]", r.Precision)
	}
}

// SearchStep is one probe of a rate search.
type SearchStep struct {
	Rate     float64 `json:"rate"`     // target, msgs/s
	Achieved float64 `json:"achieved"` // acked msgs/s after warm-up
	P99Ms    float64 `json:"p99_ms"`   // publish p99
	Pass     bool    `json:"pass"`
	// Reason says why a probe failed ("kept up 71 %", "p99 412 ms", or the
	// run's error).
	Reason string `json:"reason,omitempty"`
}

// SearchResult is one topology's rate search.
type SearchResult struct {
	Topology Topology `json:"topology"`
	// Knee is the highest rate that passed (0: none did).
	Knee float64 `json:"knee"`
	// Below is the lowest rate that failed above the knee (0: none did,
	// the knee is at Max or the search ran out of steps going up).
	Below float64      `json:"below,omitempty"`
	Steps []SearchStep `json:"steps"`
	// End says why the search stopped.
	End string `json:"end"`
}

// judge turns a probe's result into a search step.
func (r RateSearch) judge(rate float64, tr TopologyResult) SearchStep {
	s := SearchStep{Rate: rate, Achieved: tr.Summary.PublishRate, P99Ms: tr.Summary.PublishP99Ms}
	var why []string
	if tr.Error != "" {
		why = append(why, "failed: "+tr.Error)
	}
	if s.Achieved < r.KeepUp*rate {
		why = append(why, fmt.Sprintf("kept up %.0f %%", 100*s.Achieved/rate))
	}
	if bound := float64(r.P99Below) / float64(time.Millisecond); !(s.P99Ms < bound) {
		why = append(why, fmt.Sprintf("p99 %s ms ≥ %s ms", fmtSig(s.P99Ms), fmtSig(bound)))
	}
	s.Pass, s.Reason = len(why) == 0, strings.Join(why, "; ")
	return s
}

// search runs probes (probe(i, rate) is the i-th run) until the knee is
// found within the search's precision, or its bounds or step budget end
// it, or ctx ends.
func (r RateSearch) search(ctx context.Context, probe func(i int, rate float64) TopologyResult) SearchResult {
	r = r.withDefaults()
	var out SearchResult
	lo, hi := 0.0, math.Inf(1) // highest pass, lowest failure
	rate := r.Start
	for i := 0; ; i++ {
		if i == r.Steps {
			out.End = fmt.Sprintf("step budget (%d probes) spent", r.Steps)
			break
		}
		if ctx.Err() != nil {
			out.End = "interrupted"
			break
		}
		s := r.judge(rate, probe(i, rate))
		out.Steps = append(out.Steps, s)
		if s.Pass {
			lo = rate
		} else {
			hi = rate
		}
		next, end := r.next(lo, hi)
		if end != "" {
			out.End = end
			break
		}
		rate = next
	}
	out.Knee = lo
	if !math.IsInf(hi, 1) && hi > lo {
		out.Below = hi
	}
	return out
}

// next is the rate to probe after the highest pass lo and the lowest
// failure hi (+Inf: none yet), or why the search ends.
func (r RateSearch) next(lo, hi float64) (float64, string) {
	switch {
	case math.IsInf(hi, 1) && lo >= r.Max:
		return 0, fmt.Sprintf("passed at max %s", FormatRate(r.Max))
	case math.IsInf(hi, 1):
		return math.Min(roundRate(2*lo), r.Max), ""
	case lo == 0 && hi <= r.Min:
		return 0, fmt.Sprintf("failed at min %s", FormatRate(r.Min))
	case lo == 0:
		return math.Max(roundRate(hi/2), r.Min), ""
	case hi <= lo*(1+r.Precision):
		return 0, fmt.Sprintf("knee within %.0f %%", 100*r.Precision)
	}
	mid := roundRate(math.Sqrt(lo * hi))
	if mid <= lo || mid >= hi { // rounding closed the gap
		return 0, "knee within rounding"
	}
	return mid, ""
}

// roundRate keeps two significant digits (12345 -> 12000), so probes
// land on readable rates.
func roundRate(x float64) float64 {
	if x <= 0 {
		return x
	}
	p := math.Pow(10, math.Floor(math.Log10(x))-1)
	return math.Round(x/p) * p
}

// searchTable lists every topology's probes and its knee.
func searchTable(rs []SearchResult) table {
	t := table{header: []string{"topology", "knee (msgs/s)", "first failure above", "probes: target → acked/s, p99 (✓ pass, ✗ fail)", "stopped"}}
	for _, r := range rs {
		knee, below := "none", "–"
		if r.Knee > 0 {
			knee = fmtRate(r.Knee)
		}
		if r.Below > 0 {
			below = fmtRate(r.Below)
		}
		var steps []string
		for _, s := range r.Steps {
			mark := "✓"
			if !s.Pass {
				mark = "✗ " + s.Reason
			}
			steps = append(steps, fmt.Sprintf("%s → %s, %s ms %s", fmtRate(s.Rate), fmtRate(s.Achieved), fmtSig(s.P99Ms), mark))
		}
		t.rows = append(t.rows, []string{r.Topology, knee, below, strings.Join(steps, "; "), r.End})
	}
	return t
}

// searchNote describes the pass rule for the reports.
func searchNote(r *RateSearch) string {
	if r == nil {
		return ""
	}
	d := r.withDefaults()
	return fmt.Sprintf("The highest rate at which the producers kept up (acked at least %.0f %% of the target) and publish p99 stayed below %v: probes start at %s, double while they pass (up to %s), halve while they fail (down to %s), then bisect until within %.0f %%; at most %d probes per topology. Every probe is a full run, listed in the tables above.",
		100*d.KeepUp, d.P99Below, FormatRate(d.Start), FormatRate(d.Max), FormatRate(d.Min), 100*d.Precision, d.Steps)
}
