package nodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/brokerlab/brokerlab/topology"
)

// Runtime is what a runtime gives the fault dispatcher. Node names are
// those of fault reports: [BrokerName] for brokers, [MemberName] for role
// members. A method the runtime cannot perform returns an error wrapping
// scenarios.ErrNotApplicable; the runner then records the step as skipped.
//
// Every method acts on exactly one node or link and need not resolve
// anything. New fault actions (power loss, graceful stop, rolling restart,
// packet loss) are added as one optional single-method interface each,
// which the dispatcher checks for with a type assertion; runtimes without
// it report the fault as not applicable. That keeps this interface stable
// while runtimes grow at their own pace.
type Runtime interface {
	Resolver
	Injector
}

// Resolver answers what a target means now.
type Resolver interface {
	// Nodes lists every node, brokers included, in a stable order.
	Nodes() []string
	// Replicas returns who holds topic/p now, as the cluster reports it.
	Replicas(ctx context.Context, topic string, p int32) (Replicas, error)
	// Active returns the member of role currently in charge, for a role
	// whose bare word means that (topology.BareActive), e.g. the
	// coordinator's controller broker.
	Active(ctx context.Context, role string) (string, error)
}

// Injector performs one action on one node or link.
type Injector interface {
	// Kill stops node abruptly; Restart starts a killed node again with
	// its data, on its address.
	Kill(ctx context.Context, node string) error
	Restart(ctx context.Context, node string) error
	// Pause freezes node (connections stay open, nothing answers); Resume
	// thaws it.
	Pause(ctx context.Context, node string) error
	Resume(ctx context.Context, node string) error
	// Isolate cuts every link of node, clients included; Rejoin undoes it
	// (and is a no-op on a node that is not isolated).
	Isolate(ctx context.Context, node string) error
	Rejoin(ctx context.Context, node string) error
	// Cut drops the traffic between a and b both ways; Heal removes a cut
	// and a delay between them.
	Cut(ctx context.Context, a, b string) error
	Heal(ctx context.Context, a, b string) error
	// Delay adds latency (± jitter) to the link between a and b.
	Delay(ctx context.Context, a, b string, latency, jitter time.Duration) error
	// HealAll removes every cut, isolation and delay.
	HealAll(ctx context.Context) error
}

// Replicas is who holds a partition.
type Replicas struct {
	// Leader is the leader's node name, "" when it has none.
	Leader string
	// Followers are the other replicas in the order a follower-of target
	// picks them: in-sync ones first.
	Followers []string
}

// ReplicasOf names the replicas of a partition whose leader is broker
// leader (-1 for none): followers from the sets in order (the ISR, then
// all replicas), each once.
func ReplicasOf(leader int32, sets ...[]int32) Replicas {
	var r Replicas
	if leader >= 0 {
		r.Leader = BrokerName(leader)
	}
	for _, set := range sets {
		for _, id := range set {
			if name := BrokerName(id); id != leader && !slices.Contains(r.Followers, name) {
				r.Followers = append(r.Followers, name)
			}
		}
	}
	return r
}

// Faults is the fault dispatcher of one deployment. It is safe for
// concurrent use.
type Faults struct {
	topo topology.Descriptor
	rt   Runtime

	mu      sync.Mutex
	lastHit string // what the last kill or pause resolved to, for "killed"
}

// NewFaults returns the dispatcher of a deployment of topology topo on rt.
// Role targets resolve as topo's descriptor declares them; a topology
// without a descriptor has only the targets every topology has.
func NewFaults(topo string, rt Runtime) *Faults {
	d, _ := topology.Lookup(topo)
	return &Faults{topo: d, rt: rt}
}

// Apply executes one fault step and returns what its target resolved to:
// one node ("broker 2"), several joined by "," (every etcd member), a link
// "broker 0 - broker 1", or "all". For a revert step, resolved is what the
// original step returned, and the action acts on that rather than on the
// target resolved afresh (the leader of bench/0 after a kill is another
// broker). It implements scenarios.Deployment.Apply.
func (f *Faults) Apply(ctx context.Context, step scenario.Step, resolved string) (string, error) {
	if step.Action == scenario.ActionHeal && step.Target.Kind == scenario.TargetAll {
		return string(scenario.TargetAll), f.rt.HealAll(ctx)
	}
	var nodes []string
	switch {
	case resolved != "":
		nodes = strings.Split(resolved, ",")
	case step.Target.Kind == scenario.TargetAll && step.Action == scenario.ActionPowerLoss:
		// A whole-cluster power failure: every broker at once.
		for _, n := range f.rt.Nodes() {
			if _, ok := BrokerID(n); ok {
				nodes = append(nodes, n)
			}
		}
	case step.Target.Kind == scenario.TargetLink:
		if len(step.Target.Link) != 2 {
			return "", errors.New("nodes: a link has two ends")
		}
		a, err := f.Resolve(ctx, step.Target.Link[0])
		if err != nil {
			return "", err
		}
		b, err := f.Resolve(ctx, step.Target.Link[1])
		if err != nil {
			return "", err
		}
		if a[0] == b[0] {
			return "", fmt.Errorf("nodes: %s: both ends are %s", step.Target, a[0])
		}
		nodes = []string{a[0] + " - " + b[0]}
	default:
		var err error
		if nodes, err = f.Resolve(ctx, step.Target); err != nil {
			return "", err
		}
	}
	joined := strings.Join(nodes, ",")
	for _, n := range nodes {
		if err := f.applyOne(ctx, step, n); err != nil {
			return joined, err
		}
	}
	switch step.Action {
	case scenario.ActionKill, scenario.ActionPause, scenario.ActionPowerLoss, scenario.ActionStop:
		f.mu.Lock()
		f.lastHit = joined
		f.mu.Unlock()
	}
	return joined, nil
}

// applyOne runs the step's action on one node or one "A - B" link.
func (f *Faults) applyOne(ctx context.Context, step scenario.Step, node string) error {
	if a, b, ok := strings.Cut(node, " - "); ok {
		switch step.Action {
		case scenario.ActionCut:
			return f.rt.Cut(ctx, a, b)
		case scenario.ActionHeal:
			return f.rt.Heal(ctx, a, b)
		case scenario.ActionDelay:
			return f.rt.Delay(ctx, a, b, step.Latency, step.Jitter)
		case scenario.ActionLoss:
			if l, ok := f.rt.(Losser); ok {
				return l.Loss(ctx, a, b, step.Percent/100)
			}
		}
		return fmt.Errorf("%w: %s on a link", scenarios.ErrNotApplicable, step.Action)
	}
	switch step.Action {
	case scenario.ActionKill:
		return f.rt.Kill(ctx, node)
	case scenario.ActionRestart:
		return f.rt.Restart(ctx, node)
	case scenario.ActionPause:
		return f.rt.Pause(ctx, node)
	case scenario.ActionResume:
		return f.rt.Resume(ctx, node)
	case scenario.ActionIsolate:
		return f.rt.Isolate(ctx, node)
	case scenario.ActionHeal:
		return f.rt.Rejoin(ctx, node)
	case scenario.ActionPowerLoss:
		if pl, ok := f.rt.(PowerLosser); ok {
			return pl.PowerLoss(ctx, node)
		}
	case scenario.ActionStop:
		if st, ok := f.rt.(Stopper); ok {
			return st.Stop(ctx, node)
		}
	}
	return fmt.Errorf("%w: %s on a node", scenarios.ErrNotApplicable, step.Action)
}

// PowerLosser is a runtime that can cut a node's power: the node loses
// every write no fsync covered and is down until Restart.
type PowerLosser interface {
	PowerLoss(ctx context.Context, node string) error
}

// Losser is a runtime that can make a link lose a fraction p of its
// packets; Heal removes it.
type Losser interface {
	Loss(ctx context.Context, a, b string, p float64) error
}

// Stopper is a runtime that can stop a node gracefully (SIGTERM): it hands
// off where its control plane can, flushes and leaves; Restart brings it
// back.
type Stopper interface {
	Stop(ctx context.Context, node string) error
}

// Resolve turns a node target into node names: one for most targets,
// every member for a bare role word whose descriptor says so.
func (f *Faults) Resolve(ctx context.Context, t scenario.Target) ([]string, error) {
	switch t.Kind {
	case scenario.TargetBroker:
		name := BrokerName(int32(t.Index))
		if t.Index < 0 || !slices.Contains(f.rt.Nodes(), name) {
			return nil, fmt.Errorf("nodes: no broker %d", t.Index)
		}
		return []string{name}, nil
	case scenario.TargetLeaderOf, scenario.TargetFollowerOf:
		r, err := f.rt.Replicas(ctx, t.Topic, t.Partition)
		if err != nil {
			return nil, err
		}
		if t.Kind == scenario.TargetLeaderOf {
			if r.Leader == "" {
				return nil, fmt.Errorf("nodes: %s/%d has no leader", t.Topic, t.Partition)
			}
			return []string{r.Leader}, nil
		}
		if len(r.Followers) == 0 {
			return nil, fmt.Errorf("nodes: %s/%d has no follower", t.Topic, t.Partition)
		}
		return r.Followers[:1], nil
	case scenario.TargetKilled:
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.lastHit == "" {
			return nil, errors.New("nodes: nothing was killed or paused")
		}
		return strings.Split(f.lastHit, ","), nil
	case scenario.TargetLink, scenario.TargetAll:
		return nil, fmt.Errorf("nodes: %s is not a node", t)
	}
	return f.resolveRole(ctx, t)
}

// resolveRole resolves a role word as the topology declares it.
func (f *Faults) resolveRole(ctx context.Context, t scenario.Target) ([]string, error) {
	role := string(t.Kind)
	r, ok := f.topo.Role(role)
	if !ok {
		return nil, fmt.Errorf("%w: the %s topology has no %s", scenarios.ErrNotApplicable, cmpName(f.topo), role)
	}
	if t.Index < 0 && r.Bare == topology.BareActive {
		return activeNode(ctx, f.rt, role)
	}
	var out []string
	for _, n := range f.rt.Nodes() {
		if rest, ok := strings.CutPrefix(n, role+" "); ok && (t.Index < 0 || n == MemberName(role, t.Index)) && !strings.Contains(rest, " ") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s", scenarios.ErrNotApplicable, t)
	}
	return out, nil
}

func activeNode(ctx context.Context, rt Runtime, role string) ([]string, error) {
	n, err := rt.Active(ctx, role)
	if err != nil {
		return nil, err
	}
	return []string{n}, nil
}

func cmpName(d topology.Descriptor) string {
	if d.Name == "" {
		return "this"
	}
	return d.Name
}

// NotApplicable returns an error for an action a runtime cannot take.
func NotApplicable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", scenarios.ErrNotApplicable, fmt.Sprintf(format, args...))
}
