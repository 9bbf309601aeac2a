package scenario

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/topology"
)

// Action is what a fault does.
type Action string

// Fault actions.
const (
	ActionKill    Action = "kill"    // stop a node abruptly (restartable)
	ActionRestart Action = "restart" // start a killed node again
	ActionPause   Action = "pause"   // freeze a node: connections stay open, nothing answers
	ActionResume  Action = "resume"  // unfreeze a paused node
	ActionCut     Action = "cut"     // drop all traffic on a link, both ways
	ActionHeal    Action = "heal"    // undo cut, isolate or delay
	ActionIsolate Action = "isolate" // cut every link of a node, clients included
	ActionDelay   Action = "delay"   // add latency to a link
	// ActionPowerLoss stops a node as a power failure would: it loses
	// every write no fsync covered, then is down until restart. On "all",
	// every broker at once.
	ActionPowerLoss Action = "power-loss"
	// ActionStop shuts a node down gracefully (SIGTERM): it hands off
	// where its control plane can, flushes and leaves; restart brings it
	// back.
	ActionStop Action = "stop"
	// ActionLoss makes a link lose a percentage of its packets (TCP
	// retransmits them: data arrives late, never lost).
	ActionLoss Action = "loss"
	// ActionRoll is a rolling restart of every broker, one at a time: stop
	// (graceful), restart, and wait until every partition's ISR is full
	// again before the next (see roll.go).
	ActionRoll Action = "roll"
)

// Actions lists every action in the order the docs show them.
var Actions = []Action{ActionKill, ActionRestart, ActionPause, ActionResume, ActionCut, ActionHeal, ActionIsolate, ActionDelay,
	ActionPowerLoss, ActionStop, ActionLoss, ActionRoll}

// Fault is one entry of a scenario's fault timeline.
type Fault struct {
	// At is the offset from the run start.
	At     time.Duration `json:"at"`
	Action Action        `json:"action"`
	Target Target        `json:"target"`
	// For, when set, reverts the fault after this long (kill -> restart,
	// pause -> resume, cut/isolate/delay -> heal).
	For time.Duration `json:"for,omitempty"`
	// Latency and Jitter are the added one-way delay of a delay fault.
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	// Percent is the packet loss of a loss fault, in (0, 100].
	Percent float64 `json:"percent,omitempty"`
	// Line is where the fault was read from (0 when built in Go).
	Line int `json:"line,omitempty"`
}

// Revert returns the action that undoes f's action, if it has one.
func (a Action) Revert() (Action, bool) {
	switch a {
	case ActionKill, ActionPowerLoss, ActionStop:
		return ActionRestart, true
	case ActionPause:
		return ActionResume, true
	case ActionCut, ActionIsolate, ActionDelay, ActionLoss:
		return ActionHeal, true
	}
	return "", false
}

func (f Fault) String() string {
	s := fmt.Sprintf("%v %s %s", f.At, f.Action, f.Target)
	if f.Latency > 0 {
		s += " by " + f.Latency.String()
	}
	if f.Percent > 0 {
		s += " at " + strconv.FormatFloat(f.Percent, 'g', -1, 64) + "%"
	}
	if f.For > 0 {
		s += " for " + f.For.String()
	}
	return s
}

// check validates the action, its target kind and its parameters.
func (f Fault) check() error {
	ok := false
	for _, a := range Actions {
		ok = ok || a == f.Action
	}
	if !ok {
		return fmt.Errorf("unknown action %q", f.Action)
	}
	k := f.Target.Kind
	switch f.Action {
	case ActionKill, ActionPause, ActionIsolate, ActionStop:
		if !k.isNode() || k == TargetKilled {
			return fmt.Errorf("%s needs a node (%s), got %q", f.Action, nodeTargets(), f.Target)
		}
	case ActionPowerLoss:
		if (!k.isNode() || k == TargetKilled) && k != TargetAll {
			return fmt.Errorf("%s needs a node (%s) or %q, got %q", f.Action, nodeTargets(), TargetAll, f.Target)
		}
	case ActionRestart, ActionResume:
		if !k.isNode() {
			return fmt.Errorf("%s needs a node or %q, got %q", f.Action, TargetKilled, f.Target)
		}
	case ActionRoll:
		if k != TargetBrokers {
			return fmt.Errorf("roll needs %q, got %q", TargetBrokers, f.Target)
		}
	case ActionCut, ActionDelay, ActionLoss:
		if k != TargetLink {
			return fmt.Errorf("%s needs a link \"A - B\", got %q", f.Action, f.Target)
		}
	case ActionHeal:
		if k != TargetLink && k != TargetAll && !k.isNode() {
			return fmt.Errorf("heal needs a link, a node or %q, got %q", TargetAll, f.Target)
		}
	}
	if _, ok := f.Action.Revert(); !ok && f.For != 0 {
		return fmt.Errorf("%s takes no \"for\"", f.Action)
	}
	if f.For < 0 {
		return fmt.Errorf("for: %v is negative", f.For)
	}
	if f.Action == ActionDelay {
		if f.Latency <= 0 {
			return errors.New("delay needs latency > 0")
		}
		if f.Jitter < 0 || f.Jitter > f.Latency {
			return fmt.Errorf("jitter %v out of range [0, latency %v]", f.Jitter, f.Latency)
		}
	} else if f.Latency != 0 || f.Jitter != 0 {
		return fmt.Errorf("%s takes no latency or jitter", f.Action)
	}
	switch {
	case f.Action == ActionLoss && !(f.Percent > 0 && f.Percent <= 100):
		return fmt.Errorf("loss needs percent in (0, 100], got %v", f.Percent)
	case f.Action != ActionLoss && f.Percent != 0:
		return fmt.Errorf("%s takes no percent", f.Action)
	}
	return nil
}

// AppliesTo reports whether f's target exists in topology t: a role word
// ("controller", "nameserver 1") only where t's descriptor declares that
// role (with members, for an index). A runner skips (and records) faults
// that do not apply, and may skip faults a reference system cannot take.
func (f Fault) AppliesTo(t Topology) bool { return f.Target.appliesTo(t) }

// TargetKind is the sort of thing a fault hits.
type TargetKind string

// Target kinds every topology has. Node indices are 0-based ("broker 0" is
// the first broker). The other node kinds are the role words registered
// topologies declare (topology.Role.Target): "controller", "nameserver N",
// "etcd" ...
const (
	TargetBroker     TargetKind = "broker"      // broker N
	TargetLeaderOf   TargetKind = "leader-of"   // the current leader of TOPIC/P
	TargetFollowerOf TargetKind = "follower-of" // a current follower of TOPIC/P
	TargetKilled     TargetKind = "killed"      // the node the last kill or pause hit
	TargetLink       TargetKind = "link"        // "A - B", two node targets
	TargetAll        TargetKind = "all"         // heal: every cut, isolation and delay
	TargetBrokers    TargetKind = "brokers"     // roll: every broker, one at a time
)

func (k TargetKind) isNode() bool {
	switch k {
	case TargetBroker, TargetLeaderOf, TargetFollowerOf, TargetKilled:
		return true
	}
	return k.IsRole()
}

// IsRole reports whether k is a role word of a registered topology.
func (k TargetKind) IsRole() bool { return slices.Contains(topology.Targets(), string(k)) }

// nodeTargets describes the node targets for messages.
func nodeTargets() string {
	words := []string{"broker N", "leader-of T/P", "follower-of T/P"}
	for _, t := range topology.Targets() {
		words = append(words, t+" [N]")
	}
	return strings.Join(words, ", ")
}

// Target is a fault's object. Its text form is what scenario files use; it is
// also its JSON form.
type Target struct {
	Kind TargetKind
	// Index is N of "broker N" or "ROLE N"; -1 for a role word without N
	// ("etcd": every member, "controller": the active one, as the role
	// says).
	Index int
	// Topic and Partition of leader-of / follower-of.
	Topic     string
	Partition int32
	// Link holds the two endpoints of a link.
	Link []Target
}

// String returns the canonical text form, which ParseTarget reads back.
func (t Target) String() string {
	switch t.Kind {
	case TargetBroker:
		return string(t.Kind) + " " + strconv.Itoa(t.Index)
	case TargetLeaderOf, TargetFollowerOf:
		return fmt.Sprintf("%s %s/%d", t.Kind, t.Topic, t.Partition)
	case TargetLink:
		if len(t.Link) == 2 {
			return t.Link[0].String() + " - " + t.Link[1].String()
		}
		return "link"
	case TargetKilled, TargetAll, TargetBrokers:
		return string(t.Kind)
	}
	if t.Index < 0 {
		return string(t.Kind)
	}
	return string(t.Kind) + " " + strconv.Itoa(t.Index)
}

// MarshalText implements encoding.TextMarshaler.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Target) UnmarshalText(b []byte) error {
	v, err := ParseTarget(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Target) usesKilled() bool {
	if t.Kind == TargetKilled {
		return true
	}
	for _, e := range t.Link {
		if e.usesKilled() {
			return true
		}
	}
	return false
}

func (t Target) appliesTo(topo Topology) bool {
	switch t.Kind {
	case TargetBroker, TargetLeaderOf, TargetFollowerOf, TargetKilled, TargetAll, TargetBrokers:
		return true
	case TargetLink:
		for _, e := range t.Link {
			if !e.appliesTo(topo) {
				return false
			}
		}
		return true
	}
	d, _ := topology.Lookup(topo)
	r, ok := d.Role(string(t.Kind))
	return ok && (t.Index < 0 || r.Indexed())
}

// ParseTarget reads a target: "broker 2", "leader-of bench/0", "follower-of
// bench/0", "killed", "all", a role word of a registered topology with or
// without a member number ("controller", "nameserver 1", "etcd"), or a link
// "A - B" of two node targets. The space before a number is optional
// ("broker2").
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, errors.New("empty target")
	}
	if s == string(TargetAll) || s == string(TargetBrokers) {
		return Target{Kind: TargetKind(s)}, nil
	}
	a, rest, err := parseNode(s)
	if err != nil {
		return Target{}, err
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return a, nil
	}
	if rest[0] != '-' {
		return Target{}, fmt.Errorf("%q: unexpected %q after %q", s, rest, a)
	}
	b, tail, err := parseNode(strings.TrimSpace(rest[1:]))
	if err != nil {
		return Target{}, fmt.Errorf("%q: link end: %w", s, err)
	}
	if strings.TrimSpace(tail) != "" {
		return Target{}, fmt.Errorf("%q: unexpected %q at the end", s, strings.TrimSpace(tail))
	}
	if a.String() == b.String() {
		return Target{}, fmt.Errorf("%q: a link needs two different nodes", s)
	}
	return Target{Kind: TargetLink, Link: []Target{a, b}}, nil
}

// parseNode reads one node target from the start of s and returns the rest.
func parseNode(s string) (Target, string, error) {
	words := []TargetKind{TargetLeaderOf, TargetFollowerOf, TargetKilled, TargetBroker}
	for _, r := range topology.Targets() {
		words = append(words, TargetKind(r))
	}
	// Longest first, so a word that extends another is not read as it.
	slices.SortStableFunc(words, func(a, b TargetKind) int { return len(b) - len(a) })
	for _, k := range words {
		if !strings.HasPrefix(s, string(k)) {
			continue
		}
		rest := s[len(k):]
		switch k {
		case TargetKilled:
			return Target{Kind: k}, rest, nil
		case TargetLeaderOf, TargetFollowerOf:
			return parseTopicPartition(k, rest)
		}
		n, rest, ok := leadingInt(strings.TrimLeft(rest, " "))
		if !ok {
			if k == TargetBroker {
				return Target{}, "", fmt.Errorf("%q: broker needs a number, e.g. \"broker 0\"", s)
			}
			return Target{Kind: k, Index: -1}, rest, nil // the role's bare meaning
		}
		return Target{Kind: k, Index: n}, rest, nil
	}
	return Target{}, "", fmt.Errorf("%q: unknown target (want %s, killed, all, or a link A - B)", s, nodeTargets())
}

// parseTopicPartition reads " TOPIC/P" after leader-of or follower-of.
func parseTopicPartition(k TargetKind, s string) (Target, string, error) {
	if !strings.HasPrefix(s, " ") {
		return Target{}, "", fmt.Errorf("%s needs TOPIC/PARTITION, e.g. \"%s bench/0\"", k, k)
	}
	s = strings.TrimLeft(s, " ")
	slash := strings.IndexByte(s, '/')
	if slash <= 0 {
		return Target{}, "", fmt.Errorf("%s %q: want TOPIC/PARTITION", k, s)
	}
	topic := s[:slash]
	if !topicRE.MatchString(topic) {
		return Target{}, "", fmt.Errorf("%s: %q is not a legal topic name", k, topic)
	}
	p, rest, ok := leadingInt(s[slash+1:])
	if !ok {
		return Target{}, "", fmt.Errorf("%s %q: partition must be a number", k, s)
	}
	return Target{Kind: k, Topic: topic, Partition: int32(p)}, rest, nil
}

// leadingInt parses the decimal digits at the start of s (at most 9 of them,
// so the value fits any int).
func leadingInt(s string) (int, string, bool) {
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || (i < len(s) && s[i] >= '0' && s[i] <= '9') {
		return 0, s, false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, s, false
	}
	return n, s[i:], true
}

// Step is one entry of the expanded fault timeline a runner executes.
type Step struct {
	Fault
	// Revert is the index (in the timeline) of the step this one undoes,
	// or -1. A revert acts on the node its step resolved to, not on its
	// target resolved afresh: the leader of bench/0 after a kill is
	// another broker.
	Revert int
}

// Timeline expands the faults into the steps to run, in time order: every
// fault with a "for" is followed, For later, by its revert (kill -> restart,
// pause -> resume, cut/isolate/delay -> heal). Steps at the same time keep
// file order, reverts after the faults of that instant.
func (s Spec) Timeline() []Step {
	steps := make([]Step, 0, len(s.Faults))
	for _, f := range s.Faults {
		steps = append(steps, Step{Fault: f, Revert: -1})
	}
	for i := range len(steps) {
		f := steps[i].Fault
		undo, ok := f.Action.Revert()
		if !ok || f.For <= 0 {
			continue
		}
		steps = append(steps, Step{Fault: Fault{At: f.At + f.For, Action: undo, Target: f.Target, Line: f.Line}, Revert: i})
	}
	order := make([]int, len(steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(steps[a].At, steps[b].At) })
	pos := make([]int, len(steps))
	for newIdx, old := range order {
		pos[old] = newIdx
	}
	out := make([]Step, len(steps))
	for old, st := range steps {
		if st.Revert >= 0 {
			st.Revert = pos[st.Revert]
		}
		out[pos[old]] = st
	}
	return out
}
