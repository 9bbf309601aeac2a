package docker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Failover under load with real faults: 3 brokers, RF 3, acks=all, min
// in-sync 2, fast timings. The leader of bench/0 is SIGKILLed (restarted
// later) or disconnected from the network (reconnected later). Nothing
// acknowledged may be lost, in coordinator and in sync-mode nameserver
// (the 3 brokers form one group: a master and two slaves).

const (
	loadRate     = 400 // msgs/s
	loadDuration = 16 * time.Second
	faultAt      = 3 * time.Second
	revertAt     = 10 * time.Second
)

func TestCoordinatorLeaderKill(t *testing.T) {
	testFailover(t, "coordinator", scenario.ActionKill)
}

func TestCoordinatorLeaderIsolate(t *testing.T) {
	testFailover(t, "coordinator", scenario.ActionIsolate)
}

func TestNameserverMasterKill(t *testing.T) {
	testFailover(t, "nameserver", scenario.ActionKill)
}

func TestNameserverMasterIsolate(t *testing.T) {
	testFailover(t, "nameserver", scenario.ActionIsolate)
}

func testFailover(t *testing.T, topology string, action scenario.Action) {
	spec := testSpec(t, topology)
	dep, b := deploy(t, spec)
	revert, _ := action.Revert()
	var elected time.Time // when a broker the runner reaches names a new leader
	watchLeader := func(at time.Time, node string) {
		ctx, cancel := context.WithDeadline(context.Background(), at.Add(revertAt-faultAt-500*time.Millisecond))
		defer cancel()
		elected = awaitNewLeader(ctx, b, spec.Topic.Name, node)
	}
	if topology != "coordinator" {
		watchLeader = nil // a group's master never changes
	}
	out := runLoad(t, dep, spec, loadRate, loadDuration, []fault{
		{at: faultAt, action: action, target: "leader-of bench/0", after: watchLeader},
		{at: revertAt, action: revert},
	})
	out.mustBeSafe(t)
	at, node := out.faultAt[0], out.nodes[0]
	restoredAt := out.faultAt[1]
	detected, converged := dep.Detected(node, at), dep.Converged(node, at)
	begin, end, _ := out.outage(at, 0)
	t.Logf("%s %s: control plane dropped it after %s, new leader of bench/0 seen after %s, clients converged after %s; "+
		"bench/0 writes failed from %s to %s; longest topic write gap %v; %s after %v",
		action, node, since(detected, at), since(elected, at), since(converged, at), since(begin, at), since(end, at),
		out.longestAckGap(-1, at, out.start.Add(loadDuration)).Round(time.Millisecond), revert, restoredAt.Sub(at).Round(time.Millisecond))
	if topology == "coordinator" {
		// The controller drops the broker once its lease (2 s) expires and
		// elects a new leader from the ISR, well before the old one returns.
		if detected.IsZero() || detected.After(restoredAt) {
			t.Errorf("the controller never dropped %s before the %s", node, revert)
		}
		if elected.IsZero() {
			t.Errorf("no new leader of bench/0 before the %s", revert)
		}
	}
	if _, ok := out.firstAck(restoredAt); !ok {
		t.Errorf("no write was acknowledged after the %s", revert)
	}
}

// TestCoordinatorFollowerCut cuts the link between the leader of bench/0
// and one follower (iptables in both sandboxes): the follower leaves the
// ISR after replica_lag_max while writes go on with min in-sync 2, and
// rejoins once the link heals.
func TestCoordinatorFollowerCut(t *testing.T) {
	spec := testSpec(t, "coordinator")
	spec.Cluster.Nodes["etcd"] = 1
	dep, b := deploy(t, spec)
	if b.l.NetfilterErr() != nil {
		t.Skip("docker: link cuts need root, nsenter and iptables on the engine's host")
	}
	var shrunk time.Time
	var follower int32 = -1
	watchISR := func(at time.Time, link string) {
		_, f, _ := strings.Cut(link, " - ")
		follower, _ = nodes.BrokerID(f)
		// replica_lag_max is 3 s (fast timings); the rest of the cut is
		// slack for a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), 7500*time.Millisecond)
		defer cancel()
		_ = poll(ctx, 50*time.Millisecond, func() error {
			pm, ok := b.partition(ctx, spec.Topic.Name, 0)
			if !ok || slices.Contains(pm.ISR, follower) {
				return errors.New("follower still in the ISR")
			}
			shrunk = time.Now()
			return nil
		})
	}
	out := runLoad(t, dep, spec, 300, 12*time.Second, []fault{
		{at: 2 * time.Second, action: scenario.ActionCut, target: "leader-of bench/0 - follower-of bench/0", after: watchISR},
		{at: 10 * time.Second, action: scenario.ActionHeal},
	})
	if out.check.Lost != 0 {
		t.Errorf("%d acknowledged messages lost", out.check.Lost)
	}
	at := out.faultAt[0]
	if shrunk.IsZero() {
		t.Errorf("broker %d stayed in the ISR of bench/0 while cut off", follower)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rejoined time.Time
	if err := poll(ctx, 100*time.Millisecond, func() error {
		pm, ok := b.partition(ctx, spec.Topic.Name, 0)
		if !ok || !slices.Contains(pm.ISR, follower) {
			return errors.New("follower not back in the ISR")
		}
		rejoined = time.Now()
		return nil
	}); err != nil {
		t.Errorf("broker %d did not rejoin the ISR after the heal: %v", follower, err)
	}
	t.Logf("cut %s: follower left the ISR after %s, longest bench/0 write gap %v; healed after %v, back in the ISR %s after the heal",
		out.nodes[0], since(shrunk, at), out.longestAckGap(0, at, out.faultAt[1]).Round(time.Millisecond),
		out.faultAt[1].Sub(at).Round(time.Millisecond), since(rejoined, out.faultAt[1]))
}
