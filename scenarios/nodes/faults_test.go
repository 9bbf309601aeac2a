package nodes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/brokerlab/brokerlab/topology"
)

// testTopology declares one role of each bare meaning, as coordinator
// does (controller: the active broker; etcd: members, every one when bare).
const testTopology = "nodes-test-plane"

func init() {
	topology.Register(topology.Descriptor{
		Name: testTopology, Description: "a plane for the dispatcher's tests", Family: "test", Order: 1000,
		Roles: []topology.Role{
			{Target: "controller", Noun: "controller broker", Bare: topology.BareActive},
			{Target: "etcd", Noun: "etcd member", Field: "etcd", Default: 1},
		},
	})
}

// fakeRuntime records the actions it is asked to take: an in-memory
// stand-in for one piece under test (the dispatcher), never a cluster.
type fakeRuntime struct {
	nodes    []string
	replicas Replicas
	active   string
	calls    []string
	fail     map[string]error // by call text
}

func (f *fakeRuntime) Nodes() []string { return f.nodes }
func (f *fakeRuntime) Replicas(context.Context, string, int32) (Replicas, error) {
	return f.replicas, nil
}
func (f *fakeRuntime) Active(_ context.Context, role string) (string, error) {
	if f.active == "" {
		return "", errors.New("no " + role)
	}
	return f.active, nil
}
func (f *fakeRuntime) do(call string) error {
	f.calls = append(f.calls, call)
	return f.fail[call]
}
func (f *fakeRuntime) Kill(_ context.Context, n string) error    { return f.do("kill " + n) }
func (f *fakeRuntime) Restart(_ context.Context, n string) error { return f.do("restart " + n) }
func (f *fakeRuntime) Pause(_ context.Context, n string) error   { return f.do("pause " + n) }
func (f *fakeRuntime) Resume(_ context.Context, n string) error  { return f.do("resume " + n) }
func (f *fakeRuntime) Isolate(_ context.Context, n string) error { return f.do("isolate " + n) }
func (f *fakeRuntime) Rejoin(_ context.Context, n string) error  { return f.do("rejoin " + n) }
func (f *fakeRuntime) Cut(_ context.Context, a, b string) error  { return f.do("cut " + a + " - " + b) }
func (f *fakeRuntime) Heal(_ context.Context, a, b string) error {
	return f.do("heal " + a + " - " + b)
}
func (f *fakeRuntime) HealAll(context.Context) error { return f.do("heal all") }
func (f *fakeRuntime) Delay(_ context.Context, a, b string, l, j time.Duration) error {
	return f.do(fmt.Sprintf("delay %s - %s %v±%v", a, b, l, j))
}

func newFake() *fakeRuntime {
	return &fakeRuntime{
		nodes:    []string{"broker 0", "broker 1", "broker 2", "etcd 0", "etcd 1"},
		replicas: Replicas{Leader: "broker 1", Followers: []string{"broker 2", "broker 0"}},
		active:   "broker 2",
	}
}

func step(t *testing.T, a scenario.Action, target string) scenario.Step {
	t.Helper()
	tg, err := scenario.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	return scenario.Step{Fault: scenario.Fault{Action: a, Target: tg, Latency: 5 * time.Millisecond}, Revert: -1}
}

func TestFaultsResolveAndApply(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		action   scenario.Action
		target   string
		resolved string
		calls    string
	}{
		{scenario.ActionKill, "leader-of bench/0", "broker 1", "kill broker 1"},
		{scenario.ActionPause, "follower-of bench/0", "broker 2", "pause broker 2"},
		{scenario.ActionIsolate, "controller", "broker 2", "isolate broker 2"},
		{scenario.ActionKill, "etcd", "etcd 0,etcd 1", "kill etcd 0; kill etcd 1"},
		{scenario.ActionRestart, "etcd 1", "etcd 1", "restart etcd 1"},
		{scenario.ActionHeal, "broker 0", "broker 0", "rejoin broker 0"},
		{scenario.ActionCut, "leader-of bench/0 - etcd 0", "broker 1 - etcd 0", "cut broker 1 - etcd 0"},
		{scenario.ActionDelay, "broker 0 - broker 1", "broker 0 - broker 1", "delay broker 0 - broker 1 5ms±0s"},
		{scenario.ActionHeal, "all", "all", "heal all"},
	}
	for _, c := range cases {
		t.Run(string(c.action)+" "+c.target, func(t *testing.T) {
			rt := newFake()
			f := NewFaults(testTopology, rt)
			got, err := f.Apply(ctx, step(t, c.action, c.target), "")
			if err != nil || got != c.resolved {
				t.Fatalf("resolved %q, %v; want %q", got, err, c.resolved)
			}
			if s := strings.Join(rt.calls, "; "); s != c.calls {
				t.Fatalf("calls %q, want %q", s, c.calls)
			}
		})
	}
}

// TestFaultsKilledAndRevert: "killed" is what the last kill or pause hit,
// and a revert acts on the node its step resolved to, not afresh.
func TestFaultsKilledAndRevert(t *testing.T) {
	ctx := context.Background()
	rt := newFake()
	f := NewFaults(testTopology, rt)
	if _, err := f.Apply(ctx, step(t, scenario.ActionRestart, "killed"), ""); err == nil {
		t.Fatal("killed before any kill must fail")
	}
	hit, err := f.Apply(ctx, step(t, scenario.ActionKill, "leader-of bench/0"), "")
	if err != nil {
		t.Fatal(err)
	}
	rt.replicas.Leader = "broker 0" // a new leader was elected
	if got, err := f.Apply(ctx, step(t, scenario.ActionRestart, "killed"), ""); err != nil || got != hit {
		t.Fatalf("restart killed: %q %v, want %q", got, err, hit)
	}
	if got, _ := f.Apply(ctx, step(t, scenario.ActionRestart, "leader-of bench/0"), hit); got != "broker 1" {
		t.Fatalf("revert resolved %q, want the original node broker 1", got)
	}
	want := []string{"kill broker 1", "restart broker 1", "restart broker 1"}
	if !slices.Equal(rt.calls, want) {
		t.Fatalf("calls %q, want %q", rt.calls, want)
	}
}

func TestFaultsNotApplicable(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		topo, target string
		action       scenario.Action
	}{
		{"no-such-topology", "controller", scenario.ActionKill}, // no descriptor: no roles
		{testTopology, "etcd 7", scenario.ActionKill},           // no such member
		{testTopology, "broker 0 - broker 1", scenario.ActionKill},
		{testTopology, "broker 0", scenario.ActionCut},
	}
	for _, c := range cases {
		rt := newFake()
		_, err := NewFaults(c.topo, rt).Apply(ctx, step(t, c.action, c.target), "")
		if !errors.Is(err, scenarios.ErrNotApplicable) {
			t.Errorf("%s %s under %s: %v, want ErrNotApplicable", c.action, c.target, c.topo, err)
		}
		if len(rt.calls) != 0 {
			t.Errorf("%s %s: runtime called %q", c.action, c.target, rt.calls)
		}
	}
	rt := newFake()
	if _, err := NewFaults(testTopology, rt).Apply(ctx, step(t, scenario.ActionKill, "broker 9"), ""); err == nil || errors.Is(err, scenarios.ErrNotApplicable) {
		t.Errorf("kill broker 9 of 3: %v, want a plain error", err)
	}
	rt.replicas = Replicas{}
	if _, err := NewFaults(testTopology, rt).Apply(ctx, step(t, scenario.ActionKill, "leader-of bench/0"), ""); err == nil {
		t.Error("a partition without a leader must not resolve")
	}
}

// TestFaultsStopAtFirstError: a failing action on one of several nodes
// reports the error with what the target resolved to, and a failed kill
// does not become "killed".
func TestFaultsStopAtFirstError(t *testing.T) {
	ctx := context.Background()
	rt := newFake()
	rt.fail = map[string]error{"kill etcd 0": errors.New("boom")}
	f := NewFaults(testTopology, rt)
	got, err := f.Apply(ctx, step(t, scenario.ActionKill, "etcd"), "")
	if err == nil || got != "etcd 0,etcd 1" || len(rt.calls) != 1 {
		t.Fatalf("%q %v calls %q", got, err, rt.calls)
	}
	if _, err := f.Apply(ctx, step(t, scenario.ActionRestart, "killed"), ""); err == nil {
		t.Fatal("a failed kill must not set killed")
	}
}
