package scenario

import (
	"strings"
	"testing"
)

func TestParseReuse(t *testing.T) {
	s, err := Parse("r.yaml", []byte(randomBase+"repeat: 3\nreuse: true\nfaults:\n  - {at: 10s, kill: leader-of bench/1, for: 5s}\n  - {at: 20s, cut: leader-of bench/0 - broker 2, for: 5s}\n"+
		"random: {seed: 7, every: 10s, start: 30s, faults: [kill leader]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Reuse {
		t.Fatal("reuse not set")
	}
	if r0 := s.ForRepeat(0); r0.Topic.Name != "bench" || r0.Faults[0].Target.Topic != "bench" {
		t.Errorf("repeat 1: topic %q, first target %s; want the scenario's own", r0.Topic.Name, r0.Faults[0].Target)
	}
	r2 := s.ForRepeat(2)
	if r2.Topic.Name != "bench-r3" || r2.Topic.Partitions != 6 {
		t.Errorf("repeat 3: topic %+v, want bench-r3 with the scenario's shape", r2.Topic)
	}
	for _, st := range r2.TimelineFor(2) {
		if s := st.Target.String(); strings.Contains(s, "bench/") || (strings.Contains(s, "-of ") && !strings.Contains(s, "bench-r3/")) {
			t.Errorf("repeat 3 step %s %s still names the first repeat's topic", st.Action, s)
		}
	}
	if s.Faults[0].Target.Topic != "bench" || s.Faults[1].Target.Link[0].Topic != "bench" {
		t.Error("ForRepeat changed the spec it was called on")
	}
	if one, _ := Parse("r.yaml", []byte(randomBase+"repeat: 2\n")); one.ForRepeat(1).Topic.Name != "bench" {
		t.Error("without reuse every repeat writes to the scenario's topic (a fresh cluster each)")
	}
}

func TestParseReuseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"no repeat":   {"reuse: true\n", "reuse: needs repeat: 2 or more"},
		"rate search": {"repeat: 2\nreuse: true\nworkload: {duration: 60s, rate_search: {start: 1000}}\n", "reuse: not with a rate search"},
		"roll":        {"repeat: 2\nreuse: true\nfaults:\n  - {at: 10s, roll: brokers}\n", "reuse: not with roll"},
		"not a bool":  {"repeat: 2\nreuse: often\n", "reuse"},
	} {
		base := randomBase
		if strings.Contains(tc.yaml, "workload:") {
			base = strings.Replace(base, "workload: {duration: 60s, warmup: 5s}\n", "", 1)
		}
		_, err := Parse("bad.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestReuseTopic(t *testing.T) {
	for r, want := range []string{"t", "t-r2", "t-r3"} {
		if got := ReuseTopic("t", r); got != want {
			t.Errorf("repeat %d: %q, want %q", r, got, want)
		}
	}
}
