package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A randomised fault schedule: the scenario names a set of faults and a
// cadence, and the schedule is drawn from a seed, so the same seed always
// gives the same schedule and a run can be replayed.
//
//	random:
//	  seed: 42         # required: the schedule is a function of it
//	  every: 10s       # one fault per slot of this length
//	  start: 10s       # the first slot (default: every)
//	  for: 5s          # each fault lasts this long, then is undone (default: every/2)
//	  faults: [kill leader, isolate leader, pause broker]
//
// Slot k fires at start + k*every, for every k whose fault is undone
// before sending ends (start + k*every + for <= workload.duration). Each
// slot draws one entry of faults, uniformly, and then its target: "leader"
// is the leader of a uniformly drawn partition of the topic, "follower" a
// follower of one, "broker" a uniformly drawn broker; any other target is
// used as written ("nameserver 1", "controller"). The fault is undone
// after `for` the way a fault with `for:` is (kill, stop and power-loss
// by restart, pause by resume, isolate by heal), which is before the next
// slot since for < every: faults never pile up.
//
// Repeat r (0-based) of a repeated scenario draws from seed + r, so the
// repeats see different schedules while every topology of one repeat sees
// the same one; repeat 0 and an unrepeated run draw from the seed itself.

// RandomFaults is the random part of a scenario's fault timeline.
type RandomFaults struct {
	// Seed determines the schedule.
	Seed uint64 `json:"seed"`
	// Every is the slot length: one fault per slot.
	Every time.Duration `json:"every"`
	// Start is when the first slot fires; default Every.
	Start time.Duration `json:"start"`
	// For is how long each fault lasts before it is undone; default
	// Every/2, always shorter than Every.
	For time.Duration `json:"for"`
	// Faults is the set each slot draws from.
	Faults []RandomFault `json:"faults"`
	// Line is where "random" was read from (0 when built in Go).
	Line int `json:"line,omitempty"`
}

// RandomFault is one entry of RandomFaults.Faults: an action and a target
// that may be drawn ("leader", "follower", "broker") or fixed.
type RandomFault struct {
	Action Action `json:"action"`
	Target string `json:"target"`
	Line   int    `json:"line,omitempty"`
}

func (f RandomFault) String() string { return string(f.Action) + " " + f.Target }

// Drawn targets of RandomFault.Target.
const (
	drawLeader   = "leader"
	drawFollower = "follower"
	drawBroker   = "broker"
)

// randomActions are the actions a random schedule may draw: node faults
// that have an undo.
var randomActions = []Action{ActionKill, ActionPause, ActionIsolate, ActionStop, ActionPowerLoss}

// maxRandomKinds bounds the set a schedule draws from.
const maxRandomKinds = 100

// SeedFor returns the seed repeat r (0-based) draws its schedule from.
func (r RandomFaults) SeedFor(repeat int) uint64 { return r.Seed + uint64(repeat) }

// Draw returns the faults repeat r (0-based) of spec s runs besides its
// fixed ones, in time order: the same spec and r always give the same
// faults. Nil without a random schedule.
func (s Spec) Draw(repeat int) []Fault {
	r := s.Random
	if r == nil || r.Every <= 0 || len(r.Faults) == 0 {
		return nil
	}
	rng := splitmix{state: r.SeedFor(repeat)}
	var out []Fault
	for at := r.Start; at+r.For <= s.Workload.Duration && len(out) < maxFaults; at += r.Every {
		k := r.Faults[rng.below(len(r.Faults))]
		t, err := s.drawTarget(k.Target, &rng)
		if err != nil {
			continue // Validate rejects such a spec; nothing to run
		}
		out = append(out, Fault{At: at, Action: k.Action, Target: t, For: r.For, Line: k.Line})
	}
	return out
}

// drawTarget resolves a RandomFault target, drawing a partition or broker
// for the drawn words.
func (s Spec) drawTarget(word string, rng *splitmix) (Target, error) {
	switch word {
	case drawLeader:
		return Target{Kind: TargetLeaderOf, Topic: s.Topic.Name, Partition: int32(rng.below(s.Topic.Partitions))}, nil
	case drawFollower:
		return Target{Kind: TargetFollowerOf, Topic: s.Topic.Name, Partition: int32(rng.below(s.Topic.Partitions))}, nil
	case drawBroker:
		return Target{Kind: TargetBroker, Index: rng.below(s.Cluster.Brokers)}, nil
	}
	return ParseTarget(word)
}

// splitmix is SplitMix64 (Steele, Lea and Flood 2014): a tiny generator
// whose output is fixed by its definition, so a seed's schedule never
// changes with the Go release.
type splitmix struct{ state uint64 }

func (g *splitmix) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a number in [0, n) (0 when n < 1); the modulo bias is
// below 2^-50 for any n a scenario has.
func (g *splitmix) below(n int) int {
	if n < 1 {
		return 0
	}
	return int(g.next() % uint64(n))
}

// TimelineFor is Timeline for repeat r (0-based): the fixed faults and the
// ones repeat r draws, merged in time order (fixed ones first at the same
// instant), each expanded with its revert.
func (s Spec) TimelineFor(repeat int) []Step {
	drawn := s.Draw(repeat)
	if len(drawn) == 0 {
		return s.Timeline()
	}
	merged := s
	merged.Faults = append(append([]Fault(nil), s.Faults...), drawn...)
	sortFaults(merged.Faults)
	return merged.Timeline()
}

// Repeats returns how many times each topology runs (at least 1).
func (s Spec) Repeats() int { return max(s.Repeat, 1) }

// maxRepeat bounds Spec.Repeat.
const maxRepeat = 1000

func (s Spec) validateRepeat(v *validator) {
	v.intRange("repeat", s.Repeat, 0, maxRepeat)
	if !s.Reuse {
		return
	}
	switch {
	case s.Repeats() < 2:
		v.fail("reuse", "needs repeat: 2 or more (the repeats share one cluster)")
	case s.Workload.RateSearch != nil:
		v.fail("reuse", "not with a rate search (each probe needs a cluster of its own)")
	case slices.ContainsFunc(s.Faults, func(f Fault) bool { return f.Action == ActionRoll }):
		v.fail("reuse", "not with roll: a roll waits for the ISR of the cluster's first topic, and later repeats write to topics of their own")
	}
}

// ReuseTopic is the topic repeat r (0-based) of a reuse run writes to:
// the scenario's topic first, then name-r2, name-r3...
func ReuseTopic(name string, repeat int) string {
	if repeat == 0 {
		return name
	}
	return name + "-r" + strconv.Itoa(repeat+1)
}

// ForRepeat returns the spec repeat r (0-based) of a reuse run runs: its
// own topic (ReuseTopic), and every fault target that names the
// scenario's topic naming that one (random draws follow Topic.Name). Without
// reuse it returns s.
func (s Spec) ForRepeat(repeat int) Spec {
	if !s.Reuse || repeat == 0 {
		return s
	}
	old := s.Topic.Name
	s.Topic.Name = ReuseTopic(old, repeat)
	faults := make([]Fault, len(s.Faults))
	for i, f := range s.Faults {
		f.Target = f.Target.renameTopic(old, s.Topic.Name)
		faults[i] = f
	}
	s.Faults = faults
	return s
}

func (s Spec) validateRandom(v *validator) {
	r := s.Random
	if r == nil {
		return
	}
	if r.Every <= 0 {
		v.fail("random.every", "missing or zero: the slot length, e.g. every: 10s")
		return
	}
	if r.For <= 0 || r.For >= r.Every {
		v.fail("random.for", "%v: want more than 0 and less than every (%v), so each fault is undone before the next", r.For, r.Every)
	}
	if r.Start+r.For > s.Workload.Duration {
		v.fail("random.start", "%v: no fault fits: start + for (%v) must be within workload.duration %v", r.Start, r.For, s.Workload.Duration)
	}
	if len(r.Faults) == 0 || len(r.Faults) > maxRandomKinds {
		v.fail("random.faults", "want 1 to %d faults to draw from, got %d", maxRandomKinds, len(r.Faults))
	}
	for i, k := range r.Faults {
		path := fmt.Sprintf("random.faults[%d]", i)
		s.validateRandomFault(v, path, k)
	}
}

// validateRandomFault checks one entry of the set with a representative
// target (partition 0, broker 0 for drawn words).
func (s Spec) validateRandomFault(v *validator, path string, k RandomFault) {
	fail := func(format string, args ...any) {
		v.errs = append(v.errs, &SpecError{File: s.File, Line: cmpLine(k.Line, s.Line(path)), Field: path, Msg: fmt.Sprintf(format, args...)})
	}
	known := false
	for _, a := range randomActions {
		known = known || a == k.Action
	}
	if !known {
		fail("%q: a random schedule draws %s (node faults that can be undone)", k.Action, joinRandomActions())
		return
	}
	if k.Target == drawFollower && s.Topic.Replication < 2 {
		fail("%s: replication 1 has no followers", k)
		return
	}
	t, err := s.drawTarget(k.Target, &splitmix{})
	if err != nil {
		fail("%v (or a drawn one: %s, %s, %s)", err, drawLeader, drawFollower, drawBroker)
		return
	}
	if t.Kind == TargetKilled {
		fail("%s: a random fault needs its own target, not %q", k, TargetKilled)
		return
	}
	f := Fault{Action: k.Action, Target: t, For: s.Random.For}
	if err := f.check(); err != nil {
		fail("%v", err)
		return
	}
	sub := &validator{s: v.s}
	s.validateTargetRefs(sub, path, t)
	for _, e := range sub.errs {
		if se, ok := e.(*SpecError); ok && k.Line > 0 {
			se.Line = k.Line
		}
		v.errs = append(v.errs, e)
	}
	if !s.anyApplies(f) {
		fail("%s applies to none of the topologies %s", k, strings.Join(s.Topologies, ", "))
	}
}

func cmpLine(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

func joinRandomActions() string {
	s := make([]string, len(randomActions))
	for i, a := range randomActions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// decodeRandom reads the random mapping; its faults are "ACTION TARGET"
// strings.
func (d *decoder) decodeRandom(n *yaml.Node, path string) {
	r := &RandomFaults{Line: n.Line}
	var seedSet, startSet, forSet bool
	before := len(d.errs)
	d.mapping(n, path, map[string]fieldFunc{
		"seed": func(n *yaml.Node, p string) {
			seedSet = true
			value(d, &r.Seed, func(v string) (uint64, error) {
				x, err := strconv.ParseUint(strings.ReplaceAll(v, "_", ""), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%q is not a non-negative integer", v)
				}
				return x, nil
			})(n, p)
		},
		"every": d.duration(&r.Every),
		"start": func(n *yaml.Node, p string) { startSet = true; d.duration(&r.Start)(n, p) },
		"for":   func(n *yaml.Node, p string) { forSet = true; d.duration(&r.For)(n, p) },
		"faults": func(n *yaml.Node, p string) {
			d.items(n, p, "a list such as [kill leader, pause broker]", func(it *yaml.Node, ip string) bool {
				if v, ok := d.scalar(it, ip); ok {
					d.randomFault(r, it, ip, v)
				}
				return true
			})
		},
	})
	if len(d.errs) > before || isNull(resolve(n)) {
		return
	}
	if !seedSet {
		d.fail(n, path+".seed", "missing: the seed the schedule is drawn from, e.g. seed: 1")
		return
	}
	if !startSet {
		r.Start = r.Every
	}
	if !forSet {
		r.For = r.Every / 2
	}
	d.spec.Random = r
}

// randomFault adds the "ACTION TARGET" entry v to r.Faults.
func (d *decoder) randomFault(r *RandomFaults, n *yaml.Node, path, v string) {
	action, target, _ := strings.Cut(strings.TrimSpace(v), " ")
	if strings.TrimSpace(target) == "" {
		d.fail(n, path, "%q: want ACTION TARGET, e.g. \"kill leader\"", v)
		return
	}
	r.Faults = append(r.Faults, RandomFault{Action: Action(action), Target: strings.TrimSpace(target), Line: n.Line})
}

// sortFaults orders faults by At, keeping the order of ties.
func sortFaults(fs []Fault) {
	slices.SortStableFunc(fs, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
}

// renameTopic returns t with topic old renamed to name, in a link's ends
// too.
func (t Target) renameTopic(old, name string) Target {
	if t.Topic == old {
		t.Topic = name
	}
	if len(t.Link) > 0 {
		link := make([]Target, len(t.Link))
		for i, e := range t.Link {
			link[i] = e.renameTopic(old, name)
		}
		t.Link = link
	}
	return t
}
