package swarm

import (
	"context"
	"errors"
	"github.com/brokerlab/brokerlab/docker"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/docker/docker/api/types/swarm"
	dc "github.com/ory/dockertest/v3/docker"
)

// needSwarm skips the test, with one line, where no engine answers or it
// cannot run services (a swarm worker, a swarm in error). It returns the
// pool, the swarm API and whether the engine was in no swarm before.
func needSwarm(t *testing.T) (*dc.Client, *engine, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, eng, err := connect(ctx)
	if err != nil {
		t.Skipf("swarm: no engine answers at %s: %v", image.Endpoint(), err)
	}
	inf, err := eng.info(ctx)
	if err != nil {
		t.Skipf("swarm: engine info: %v", err)
	}
	switch st := inf.Swarm.LocalNodeState; {
	case st == swarm.LocalNodeStateInactive:
		return pool.Client, eng, true
	case st == swarm.LocalNodeStateActive && inf.Swarm.ControlAvailable:
		return pool.Client, eng, false
	default:
		t.Skipf("swarm: the engine cannot run services here (state %q, manager %v)", st, inf.Swarm.ControlAvailable)
	}
	return nil, nil, false
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestQuickstartSwarm runs testdata/swarm-quickstart.yaml through the
// scenario runner on a swarm, as `brokerlab run --runtime swarm` does: for
// coordinator, nameserver and gossip (the container drivers both container
// runtimes share), every node and every load generator a service; through
// the run's fault agent (a global service), a leader killed and restarted,
// a follower isolated and healed, another paused and resumed, a
// leader-follower link cut and healed;
// nothing acknowledged lost; nothing left behind, and a swarm the test
// formed left again.
func TestQuickstartSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("swarm: the quickstart takes over a minute; skipped with -short")
	}
	client, eng, formed := needSwarm(t)
	spec, err := scenario.Load(filepath.Join("testdata", "swarm-quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Brokers and load generators placed by this machine's hostname, the
	// one swarm node there is (cluster.placement; its parsing and a
	// machine the swarm lacks are TestParsePlacement's and
	// TestPlacementOnSwarm's).
	inf, err := eng.info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	spec.Cluster.Placement = map[string][]string{scenario.PlaceBrokers: {inf.Name}, scenario.PlaceClients: {inf.Name}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// The image is built once per test binary before the run, under its
	// own deadline: a cold build can take minutes on a loaded machine, more
	// than the runner gives a topology's set-up.
	pool, err := image.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 8*time.Minute)
	img, err := docker.EnsureImage(bctx, pool, testLogger(t))
	bcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s (built now: %v)", img.Ref(), img.Built)

	// Watch the run's services while it runs: every node and the load
	// generators must be services.
	seen := map[string]bool{}
	var mu sync.Mutex
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for watchCtx.Err() == nil {
			if svcs, err := eng.services(watchCtx, "label", labelOwner+"="+owner()); err == nil {
				mu.Lock()
				for _, s := range svcs {
					seen[s.Spec.Labels[labelNode]] = true
				}
				mu.Unlock()
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})

	began := time.Now()
	res, err := scenarios.RunScenario(ctx, spec, scenarios.RunOptions{Out: t.TempDir(), Logger: testLogger(t)})
	stopWatch()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quickstart under swarm took %v", time.Since(began).Round(time.Millisecond))
	if len(res.Topologies) != len(spec.Topologies) {
		t.Errorf("%d topologies ran, want %v", len(res.Topologies), spec.Topologies)
	}
	// Every fault goes through the run's fault agent (its global service is
	// seen below); isolate and cut need this machine's nsenter and
	// iptables, which the agent runs.
	host := newAgent("-", "-", nil, "/", testLogger(t))
	cuts := host.noFilter == ""
	for _, tr := range res.Topologies {
		if tr.Error != "" {
			t.Errorf("%s: %s", tr.Topology, tr.Error)
			continue
		}
		s := tr.Summary
		if s.Acked == 0 || s.Lost != 0 {
			t.Errorf("%s: %d acked, %d acknowledged-but-lost", tr.Topology, s.Acked, s.Lost)
		}
		if s.Consumed == 0 {
			t.Errorf("%s: nothing consumed", tr.Topology)
		}
		applied := map[scenario.Action]bool{}
		for _, f := range tr.Faults {
			t.Logf("%s: %s %s -> %s at %.1fs: unavailable %.2fs, recovered %v %s", tr.Topology, f.Action, f.Target, f.Node, f.AtS, f.UnavailableS, f.Recovered, f.Err)
			if f.Err == "" && f.Node != "" {
				applied[f.Action] = true
			}
		}
		for _, a := range []scenario.Action{scenario.ActionKill, scenario.ActionRestart, scenario.ActionPause, scenario.ActionResume} {
			if !applied[a] {
				t.Errorf("%s: %s not applied", tr.Topology, a)
			}
		}
		for _, a := range []scenario.Action{scenario.ActionIsolate, scenario.ActionCut, scenario.ActionHeal} {
			if cuts && !applied[a] {
				t.Errorf("%s: %s not applied", tr.Topology, a)
			}
		}
	}
	t.Logf("\n%s", report.Compare([]report.Result{res}))
	mu.Lock()
	for _, want := range []string{"broker 0", "broker 2", "etcd 0", "nameserver 1", "loadgen 0", "faultagent"} {
		if !seen[want] {
			t.Errorf("no service for %q seen during the run (saw %v)", want, seen)
		}
	}
	mu.Unlock()
	assertNothingLeft(t, client, eng, labelOwner+"="+owner(), formed)
}

// assertNothingLeft lists services, containers, networks and volumes by
// label and the swarm state.
func assertNothingLeft(t *testing.T, client *dc.Client, eng *engine, sel string, formed bool) {
	t.Helper()
	ctx := context.Background()
	if formed {
		inf, err := eng.info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if inf.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
			t.Errorf("the swarm the run formed was not left: %q", inf.Swarm.LocalNodeState)
		}
	} else {
		svcs, err := eng.services(ctx, "label", sel)
		if err != nil && !errors.Is(err, errNoSwarm) {
			t.Fatal(err)
		}
		for _, s := range svcs {
			t.Errorf("service %s is left over", s.Spec.Name)
		}
	}
	cts, err := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {sel}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cts {
		t.Errorf("container %v is left over", ct.Names)
	}
	nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {sel: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, nw := range nws {
		t.Errorf("network %s is left over", nw.Name)
	}
	vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {sel}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		t.Errorf("volume %s is left over", v.Name)
	}
}
