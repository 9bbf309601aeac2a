package scenario

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const randomBase = "name: r\ntopologies: [coordinator, nameserver]\n" +
	"cluster: {brokers: 3, nameservers: 2, etcd: 1, timings: fast}\n" +
	"topic: {name: bench, partitions: 6, replication: 3}\n" +
	"workload: {duration: 60s, warmup: 5s}\n"

func TestParseRepeatAndRandom(t *testing.T) {
	s, err := Parse("r.yaml", []byte(randomBase+"repeat: 3\nrandom:\n  seed: 42\n  every: 10s\n  faults: [kill leader, isolate leader, pause broker, kill nameserver 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Repeat != 3 || s.Repeats() != 3 {
		t.Errorf("repeat %d, Repeats() %d, want 3", s.Repeat, s.Repeats())
	}
	r := s.Random
	if r == nil || r.Seed != 42 || r.Every != 10*time.Second || r.Start != 10*time.Second || r.For != 5*time.Second {
		t.Fatalf("random %+v, want seed 42, every 10s, start 10s (default every), for 5s (default every/2)", r)
	}
	want := []RandomFault{{ActionKill, "leader", 10}, {ActionIsolate, "leader", 10}, {ActionPause, "broker", 10}, {ActionKill, "nameserver 1", 10}}
	if !reflect.DeepEqual(r.Faults, want) {
		t.Errorf("faults %+v, want %+v", r.Faults, want)
	}
	if one, err := Parse("r.yaml", []byte(randomBase)); err != nil || one.Repeats() != 1 || one.Random != nil {
		t.Errorf("without repeat: Repeats() %d, random %v, err %v; want 1, nil", one.Repeats(), one.Random, err)
	}
}

func TestParseRandomErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"negative repeat", "repeat: -1", "bad.yaml:6: repeat: -1 out of range [0, 1000]"},
		{"repeat not a number", "repeat: many", `bad.yaml:6: repeat: "many" is not an integer`},
		{"missing seed", "random:\n  every: 10s\n  faults: [kill leader]", "bad.yaml:7: random.seed: missing"},
		{"bad seed", "random: {seed: -3, every: 10s, faults: [kill leader]}", `bad.yaml:6: random.seed: "-3" is not a non-negative integer`},
		{"missing every", "random: {seed: 1, faults: [kill leader]}", "bad.yaml:6: random.every: missing"},
		{"for not shorter than every", "random:\n  seed: 1\n  every: 10s\n  for: 10s\n  faults: [kill leader]", "bad.yaml:9: random.for: 10s: want more than 0 and less than every"},
		{"nothing fits", "random: {seed: 1, every: 10s, start: 58s, faults: [kill leader]}", "random.start: 58s: no fault fits"},
		{"unknown field", "random:\n  seed: 1\n  every: 10s\n  count: 3", "bad.yaml:9: random.count: unknown field"},
		{"no faults", "random: {seed: 1, every: 10s, faults: []}", "random.faults: want 1 to 100 faults"},
		{"action without target", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill", `bad.yaml:10: random.faults[0]: "kill": want ACTION TARGET`},
		{"action with no undo", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - restart leader", `bad.yaml:10: random.faults[0]: "restart": a random schedule draws kill, pause, isolate`},
		{"unknown target", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill somebody", `bad.yaml:10: random.faults[0]: "somebody": unknown target`},
		{"fixed broker out of range", "random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill broker 7", "bad.yaml:10: random.faults[0]: broker 7: cluster has brokers 0 to 2"},
		{"killed", "random: {seed: 1, every: 10s, faults: [restart killed]}", `"restart": a random schedule draws`},
		{"faults not a list", "random: {seed: 1, every: 10s, faults: kill leader}", "random.faults: want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(randomBase+tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
	_, err := Parse("bad.yaml", []byte(strings.Replace(randomBase, "[coordinator, nameserver]", "[nameserver]", 1)+"random:\n  seed: 1\n  every: 10s\n  faults:\n    - kill controller"))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:10: random.faults[0]: kill controller applies to none of the topologies nameserver") {
		t.Errorf("kill controller without coordinator: %v", err)
	}
	// follower needs replicas.
	_, err = Parse("bad.yaml", []byte(strings.Replace(randomBase, "replication: 3", "replication: 1", 1)+"random: {seed: 1, every: 10s, faults: [kill follower]}"))
	if err == nil || !strings.Contains(err.Error(), "replication 1 has no followers") {
		t.Errorf("kill follower at replication 1: %v", err)
	}
}

// TestRandomScheduleReproducible: the same seed draws the same schedule,
// also after the spec goes through result.json; another seed draws another
// one; every drawn fault is valid, inside the run and undone before the
// next one fires.
func TestRandomScheduleReproducible(t *testing.T) {
	yaml := randomBase + "random: {seed: 42, every: 10s, faults: [kill leader, isolate follower, pause broker, kill nameserver 1]}\n"
	a, err := Parse("r.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse("r.yaml", []byte(yaml))
	first := a.Draw(0)
	if len(first) != 5 { // at 10, 20, 30, 40, 50 s; each lasts 5 s
		t.Fatalf("drew %d faults, want 5: %v", len(first), first)
	}
	if !reflect.DeepEqual(first, b.Draw(0)) {
		t.Fatalf("same seed, different schedules:\n%v\n%v", first, b.Draw(0))
	}
	// Replay from result.json, which records the scenario: the recorded
	// seed gives the same schedule.
	data, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Random == nil || back.Random.Seed != 42 || !reflect.DeepEqual(back.Draw(0), first) {
		t.Fatalf("schedule from JSON differs:\n%v\n%v", back.Draw(0), first)
	}
	// The schedule does not depend on Go's generators: pinned values.
	var got []string
	for _, f := range first {
		got = append(got, f.String())
	}
	t.Logf("seed 42: %v", got)
	if again := a.Draw(0); !reflect.DeepEqual(again, first) {
		t.Fatal("Draw is not a function of the spec")
	}
	if reflect.DeepEqual(a.Draw(1), first) {
		t.Error("repeat 1 (seed 43) drew the same schedule as repeat 0")
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		s := a
		r := *a.Random
		r.Seed = seed
		s.Random = &r
		fs := s.Draw(0)
		key := ""
		for i, f := range fs {
			key += f.String() + ";"
			if err := f.check(); err != nil {
				t.Fatalf("seed %d: drawn fault %v invalid: %v", seed, f, err)
			}
			v := &validator{s: &s}
			s.validateTargetRefs(v, "x", f.Target)
			if len(v.errs) > 0 {
				t.Fatalf("seed %d: drawn fault %v: %v", seed, f, v.errs)
			}
			if f.At+f.For > s.Workload.Duration {
				t.Errorf("seed %d: %v not undone before sending ends", seed, f)
			}
			if i > 0 && fs[i-1].At+fs[i-1].For >= f.At {
				t.Errorf("seed %d: %v fires before %v is undone", seed, f, fs[i-1])
			}
		}
		seen[key] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 seeds drew only %d distinct schedules", len(seen))
	}
}

// TestTimelineForMergesDrawnFaults: the runner's timeline holds the fixed
// faults and the drawn ones with their reverts, each revert pointing at
// its fault.
func TestTimelineForMergesDrawnFaults(t *testing.T) {
	s, err := Parse("r.yaml", []byte(randomBase+"faults:\n  - {at: 15s, kill: etcd, for: 2s}\n"+
		"random: {seed: 7, every: 20s, start: 10s, for: 4s, faults: [pause broker]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	steps := s.TimelineFor(0)
	var got []string
	for _, st := range steps {
		got = append(got, st.At.String()+" "+string(st.Action))
		if st.Revert >= 0 && steps[st.Revert].Target.String() != st.Target.String() {
			t.Errorf("%v reverts %v", st, steps[st.Revert])
		}
	}
	want := []string{"10s pause", "14s resume", "15s kill", "17s restart", "30s pause", "34s resume", "50s pause", "54s resume"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
	if len(s.Timeline()) != 2 {
		t.Errorf("Timeline() without the draw has %d steps, want 2", len(s.Timeline()))
	}
}

// FuzzParseRandom: any random section either fails with a SpecError or
// draws only valid faults inside the run.
func FuzzParseRandom(f *testing.F) {
	f.Add("seed: 1\nevery: 10s\nfaults: [kill leader, isolate leader, pause broker]")
	f.Add("{seed: 18446744073709551615, every: 1ms, for: 999us, faults: [stop follower, power-loss broker, kill nameserver 1]}")
	f.Add("{seed: 3, every: 59s, start: 0s, faults: [kill etcd, pause controller]}")
	f.Fuzz(func(t *testing.T, random string) {
		yaml := randomBase + "random:\n" + indent(random)
		s, err := Parse("fuzz.yaml", []byte(yaml))
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		for _, fl := range s.Draw(0) {
			if err := fl.check(); err != nil || fl.At+fl.For > s.Workload.Duration {
				t.Fatalf("drawn %v: %v", fl, err)
			}
		}
	})
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// repeatRuntime is a runtime of this file's test: a deployment per start
