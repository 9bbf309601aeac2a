package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseRateSearch(t *testing.T) {
	s, err := Parse("s.yaml", []byte("workload:\n  rate_search: {p99_below: 50ms, start: 5k, max: 200000, keep_up: 90%}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := RateSearch{P99Below: 50 * time.Millisecond, Start: 5000, Max: 200000, Min: 5000.0 / 16,
		Steps: DefaultSearchSteps, KeepUp: 0.9, Precision: DefaultSearchPrecision}
	if got := s.Workload.RateSearch; got == nil || *got != want {
		t.Fatalf("rate_search %+v, want %+v", got, want)
	}
}

func TestParseRateSearchErrors(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"both", "workload:\n  rate: 1000\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000}", "bad.yaml:3: workload.rate_search: set workload.rate or workload.rate_search, not both"},
		{"no bound", "workload:\n  rate_search:\n    start: 1000\n    max: 2000", "bad.yaml:2: workload.rate_search.p99_below: 0s out of range"},
		{"max below start", "workload:\n  rate_search:\n    p99_below: 50ms\n    start: 1000\n    max: 500", "bad.yaml:5: workload.rate_search.max: 500 out of range [start 1000"},
		{"unbounded start", "workload:\n  rate_search:\n    p99_below: 50ms\n    start: max", `bad.yaml:4: workload.rate_search.start: "max": want a bounded rate here`},
		{"too many steps", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, steps: 50}", "bad.yaml:2: workload.rate_search.steps: 50 out of range [1, 20]"},
		{"keep_up above 1", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, keep_up: 1.5}", "workload.rate_search.keep_up: 1.5 out of range (0, 1]"},
		{"bad fraction", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, precision: some}", `workload.rate_search.precision: "some" is not a fraction`},
		{"min above start", "workload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000, min: 3000}", "workload.rate_search.min: 3000 out of range (0, start 1000]"},
		{"unknown field", "workload:\n  rate_search:\n    p99: 50ms", "bad.yaml:3: workload.rate_search.p99: unknown field"},
		{"not a mapping", "workload:\n  rate_search: 5000", "bad.yaml:2: workload.rate_search: want a mapping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// A rate search may be repeated: every topology then searches its knee once
// per repeat.
func TestRateSearchWithRepeat(t *testing.T) {
	s, err := Parse("ok.yaml", []byte("repeat: 3\nworkload:\n  rate_search: {p99_below: 50ms, start: 1000, max: 2000}"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeats() != 3 || s.Workload.RateSearch == nil {
		t.Fatalf("repeat %d, search %+v", s.Repeats(), s.Workload.RateSearch)
	}
}
