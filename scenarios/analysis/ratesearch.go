package analysis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

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
	Topology scenario.Topology `json:"topology"`
	// Repeat is the 0-based repeat this search is (scenario repeat).
	Repeat int `json:"repeat,omitempty"`
	// Knee is the highest rate that passed (0: none did).
	Knee float64 `json:"knee"`
	// Below is the lowest rate that failed above the knee (0: none did,
	// the knee is at Max or the search ran out of steps going up).
	Below float64      `json:"below,omitempty"`
	Steps []SearchStep `json:"steps"`
	// End says why the search stopped.
	End string `json:"end"`
}

// Judge turns a probe's result into a search step.
func Judge(r scenario.RateSearch, rate float64, tr TopologyResult) SearchStep {
	s := SearchStep{Rate: rate, Achieved: tr.Summary.PublishRate, P99Ms: tr.Summary.PublishP99Ms}
	var why []string
	if tr.Error != "" {
		why = append(why, "failed: "+tr.Error)
	}
	if s.Achieved < r.KeepUp*rate {
		why = append(why, fmt.Sprintf("kept up %.0f %%", 100*s.Achieved/rate))
	}
	if bound := float64(r.P99Below) / float64(time.Millisecond); !(s.P99Ms < bound) {
		why = append(why, fmt.Sprintf("p99 %s ms ≥ %s ms", sig3(s.P99Ms), sig3(bound)))
	}
	s.Pass, s.Reason = len(why) == 0, strings.Join(why, "; ")
	return s
}

// Search runs probes (probe(i, rate) is the i-th run) until the knee is
// found within the search's precision, or its bounds or step budget end
// it, or ctx ends.
func Search(ctx context.Context, r scenario.RateSearch, probe func(i int, rate float64) TopologyResult) SearchResult {
	r = r.WithDefaults()
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
		s := Judge(r, rate, probe(i, rate))
		out.Steps = append(out.Steps, s)
		if s.Pass {
			lo = rate
		} else {
			hi = rate
		}
		next, end := nextRate(r, lo, hi)
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
func nextRate(r scenario.RateSearch, lo, hi float64) (float64, string) {
	switch {
	case math.IsInf(hi, 1) && lo >= r.Max:
		return 0, fmt.Sprintf("passed at max %s", scenario.FormatRate(r.Max))
	case math.IsInf(hi, 1):
		return math.Min(roundRate(2*lo), r.Max), ""
	case lo == 0 && hi <= r.Min:
		return 0, fmt.Sprintf("failed at min %s", scenario.FormatRate(r.Min))
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

// sig3 writes a latency with three significant digits.
func sig3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
