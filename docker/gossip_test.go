package docker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The decentralised topologies in containers: 3 brokers gossiping
// (memberlist) with the first three as seeds, RF 3, acks=all, min in-sync
// 2, fast timings; the same load and schedule as the failover tests.

// TestGossipMasterKill: SIGKILL the slot master of bench/0. The other
// brokers' gossip views drop it, a replica wins the election and leads
// bench/0 before the restart, and nothing acknowledged is lost.
func TestGossipMasterKill(t *testing.T) {
	testGossipFailover(t, "gossip", scenario.ActionKill, "")
}

// TestGossipRingIsolatePeers: isolate the leader of bench/0 from its peers
// only (clients: keep; iptables in its sandbox). The others drop it, the
// runner still reaches it after that (it still claims bench/0); the next
// in-sync replica on the ring leads, and with acks=all nothing the
// cut-off leader acknowledged is lost (it cannot shrink its ISR alone).
func TestGossipRingIsolatePeers(t *testing.T) {
	testGossipFailover(t, "gossip-ring", scenario.ActionIsolate, scenario.ClientsKeep)
}

func testGossipFailover(t *testing.T, topology string, action scenario.Action, clients string) {
	spec := testSpec(t, topology)
	dep, b := deploy(t, spec)
	if clients == scenario.ClientsKeep && b.l.NetfilterErr() != nil {
		t.Skip("docker: isolate with clients: keep needs root, nsenter and iptables on the engine's host")
	}
	revert, _ := action.Revert()
	var elected, reached time.Time // new leader seen; the cut-off broker answered a client after that
	var reachErr error
	watch := func(at time.Time, node string) {
		old, _ := nodes.BrokerID(node)
		ctx, cancel := context.WithDeadline(context.Background(), at.Add(revertAt-faultAt-500*time.Millisecond))
		defer cancel()
		if elected = awaitNewLeader(ctx, b, spec.Topic.Name, node); clients != scenario.ClientsKeep {
			return
		}
		// A client (the runner) still reaches the cut-off broker, which
		// still names itself leader of bench/0 in its old epoch: a split
		// brain. (Its own gossip view keeps its peers for a while:
		// Lifeguard slows down the failure detector of a node whose probes
		// all fail.)
		reachErr = poll(ctx, 50*time.Millisecond, func() error {
			mctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			md, err := b.probe.Metadata(mctx, b.brokers[old].addr(), []string{spec.Topic.Name})
			if err != nil {
				b.probe.Disconnect(b.brokers[old].addr())
				return fmt.Errorf("the cut-off broker does not answer its clients: %w", err)
			}
			for _, tm := range md.Topics {
				for _, pm := range tm.Partitions {
					if pm.ID == 0 && pm.Leader == old {
						reached = time.Now()
						return nil
					}
				}
			}
			return fmt.Errorf("the cut-off broker does not name itself leader of bench/0: %+v", md.Topics)
		})
	}
	out := runLoad(t, dep, spec, loadRate, loadDuration, []fault{
		{at: faultAt, action: action, target: "leader-of bench/0", clients: clients, after: watch},
		{at: revertAt, action: revert},
	})
	out.mustBeSafe(t)
	at, node, restoredAt := out.faultAt[0], out.nodes[0], out.faultAt[1]
	detected, converged := dep.Detected(node, at), dep.Converged(node, at)
	begin, end, _ := out.outage(at, 0)
	t.Logf("%s %s (clients %q): gossip views dropped it after %s, new leader of bench/0 after %s, the cut-off broker answered a client after %s, clients converged after %s; "+
		"bench/0 writes failed from %s to %s; longest topic write gap %v; %s after %v",
		action, node, clients, since(detected, at), since(elected, at), since(reached, at), since(converged, at), since(begin, at), since(end, at),
		out.longestAckGap(-1, at, out.start.Add(loadDuration)).Round(time.Millisecond), revert, restoredAt.Sub(at).Round(time.Millisecond))
	if detected.IsZero() || detected.After(restoredAt) {
		t.Errorf("no other broker's gossip view dropped %s before the %s", node, revert)
	}
	if elected.IsZero() {
		t.Errorf("no new leader of bench/0 before the %s", revert)
	}
	if clients == scenario.ClientsKeep && reachErr != nil {
		t.Errorf("while cut off from its peers: %v", reachErr)
	}
	if _, ok := out.firstAck(restoredAt); !ok {
		t.Errorf("no write was acknowledged after the %s", revert)
	}
}
