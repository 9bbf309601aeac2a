package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/nameserver/controller"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestNameserverControllerMasterKill is controller mode's master kill in
// containers: 3 brokers in one group (a master and two slaves), one name
// server, 3 standalone controllers, acks=all, min in-sync 2, fast timings.
// The master is SIGKILLed: the controller leader sees its connection close
// and elects a slave from the SyncStateSet at the next master epoch, and
// nothing acknowledged is lost. The old master is restarted and comes back
// as a slave, in the SyncStateSet again.
func TestNameserverControllerMasterKill(t *testing.T) {
	spec := testSpec(t, "nameserver-controller")
	spec.Cluster.Nodes["nameservers"] = 1
	dep, _ := deploy(t, spec)
	d := dep.(*nameServerDeployment)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if leader, err := d.Active(ctx, "controller"); err != nil || !strings.HasPrefix(leader, "controller ") {
		t.Fatalf("target controller resolves to %q (%v), want a controller", leader, err)
	}

	group := "group-0"
	before, err := d.controllerGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var switched controller.GroupState
	var switchedAt time.Time
	watchSwitch := func(at time.Time, _ string) {
		wctx, cancel := context.WithDeadline(ctx, at.Add(revertAt-faultAt-500*time.Millisecond))
		defer cancel()
		_ = poll(wctx, 50*time.Millisecond, func() error {
			g, err := d.controllerGroup(wctx, group)
			if err != nil || g.MasterEpoch <= before.MasterEpoch || g.MasterID == controller.NoMaster {
				return errors.New("no new master yet")
			}
			switched, switchedAt = g, time.Now()
			return nil
		})
	}
	out := runLoad(t, dep, spec, loadRate, loadDuration, []fault{
		{at: faultAt, action: scenario.ActionKill, target: "leader-of bench/0", after: watchSwitch},
		{at: revertAt, action: scenario.ActionRestart},
	})
	out.mustBeSafe(t)
	at, killed := out.faultAt[0], out.nodes[0]
	oldNode, _ := nodes.BrokerID(killed)
	old := brokerIDOf(before, oldNode)
	if before.MasterID != old {
		t.Fatalf("killed %s (controller broker id %d), but the master was %d", killed, old, before.MasterID)
	}
	if switchedAt.IsZero() {
		t.Fatalf("no new master before the restart (state before: %+v)", before)
	}
	if switched.MasterID == old || !switched.InSync(switched.MasterID) {
		t.Errorf("new master %d (old %d), SyncStateSet %v", switched.MasterID, old, switched.SyncStateSet)
	}
	begin, end, _ := out.outage(at, 0)
	t.Logf("kill %s: new master %d at epoch %d after %s; bench/0 writes failed from %s to %s; longest topic write gap %v",
		killed, switched.MasterID, switched.MasterEpoch, since(switchedAt, at), since(begin, at), since(end, at),
		out.longestAckGap(-1, at, out.start.Add(loadDuration)).Round(time.Millisecond))

	// The restarted old master is a slave of the new one, back in sync.
	var back controller.GroupState
	err = poll(ctx, 100*time.Millisecond, func() error {
		g, err := d.controllerGroup(ctx, group)
		if err != nil {
			return err
		}
		back = g
		if g.MasterID == old || !g.InSync(old) {
			return fmt.Errorf("master %d, SyncStateSet %v", g.MasterID, g.SyncStateSet)
		}
		pm, ok := d.partition(ctx, spec.Topic.Name, 0)
		if !ok || pm.Leader == oldNode || pm.Leader < 0 {
			return fmt.Errorf("bench/0 leader %d", pm.Leader)
		}
		return nil
	})
	if err != nil {
		t.Errorf("the old master %d did not come back as an in-sync slave: %v (last state %+v)", old, err, back)
	}
}

// brokerIDOf is the controller broker id of Kafka node id node, 0 if none.
func brokerIDOf(g controller.GroupState, node int32) int32 {
	for _, b := range g.Brokers {
		if b.NodeID == node {
			return b.BrokerID
		}
	}
	return controller.NoMaster
}
