package scenario

import (
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

// Rate search defaults and bounds.
const (
	DefaultSearchSteps     = 8
	DefaultSearchKeepUp    = 0.95
	DefaultSearchPrecision = 0.1
	maxSearchSteps         = 20
)

// WithDefaults fills the fields a scenario left out.
func (r RateSearch) WithDefaults() RateSearch {
	if r.Min == 0 {
		r.Min = r.Start / 16
	}
	if r.Steps == 0 {
		r.Steps = DefaultSearchSteps
	}
	if r.KeepUp == 0 {
		r.KeepUp = DefaultSearchKeepUp
	}
	if r.Precision == 0 {
		r.Precision = DefaultSearchPrecision
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
		full := r.WithDefaults()
		*dst = &full
	}
}

// rate is one bounded rate (2000, 2k, 5000/s; not max).
func (d *decoder) rate(dst *float64) fieldFunc {
	return value(d, dst, func(v string) (float64, error) {
		r, err := ParseRate(v)
		if err == nil && r == 0 {
			err = fmt.Errorf("%q: want a bounded rate here", v)
		}
		return r, err
	})
}

// fraction accepts 0.95 or 95%.
func (d *decoder) fraction(dst *float64) fieldFunc {
	return value(d, dst, func(v string) (float64, error) {
		s, scale := strings.TrimSpace(v), 1.0
		if t, ok := strings.CutSuffix(s, "%"); ok {
			s, scale = strings.TrimSpace(t), 0.01
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a fraction (e.g. 0.95 or 95%%)", v)
		}
		return f * scale, nil
	})
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
