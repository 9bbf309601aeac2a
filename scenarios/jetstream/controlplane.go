package jetstream

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

// CPKindRaft is the control-plane sample kind of JetStream: the messages and
// bytes the servers sent each other over their system-account routes.
const CPKindRaft = "jetstream/raft"

// systemAccount is the account nats-server pins a dedicated route to, and
// the one raft traffic travels in (stream info reports it as the traffic
// account).
const systemAccount = "$SYS"

// routeCount is a route connection's outbound counters.
type routeCount struct{ msgs, bytes int64 }

// ControlPlane returns the raft traffic between the servers since the
// deployment started, as one sample of kind CPKindRaft: requests are route
// messages, bytes their size, each counted once, by its sender.
//
// JetStream has no separate control plane. Its coordination is the meta
// group, a raft group of all servers that places streams and is the etcd of
// this topology; but the same system-account routes also carry every
// stream's raft group, which is how JetStream replicates messages (each
// message crosses them replicas-1 times, plus the acknowledgements), and the
// servers' periodic system events. The figure thus mixes coordination with
// replication: under load it is mostly replication, at idle it is the cost of
// coordination. The other routes, which forward client publishes to stream
// leaders and their acks and deliveries back, are data plane and not counted.
func (d *deployment) ControlPlane() []analysis.CPSample {
	d.sampleRoutes()
	d.mu.Lock()
	defer d.mu.Unlock()
	return []analysis.CPSample{{At: time.Now(), Kind: CPKindRaft, Requests: d.routeTotals.msgs, Bytes: d.routeTotals.bytes}}
}

// sampleRoutes adds the route traffic of every running server since the last
// sample to the totals. Counters live per route connection and vanish with
// it, so each is followed by its id; traffic a route carried between the
// last sample and its end is not counted.
func (d *deployment) sampleRoutes() {
	d.sampleMu.Lock()
	defer d.sampleMu.Unlock()
	var delta routeCount
	for _, n := range d.c.nodes {
		srv := n.server()
		if srv == nil {
			continue
		}
		rz, err := srv.Routez(&server.RoutezOptions{})
		if err != nil {
			continue
		}
		seen := make(map[uint64]routeCount, len(rz.Routes))
		n.mu.Lock()
		for _, r := range rz.Routes {
			if r.Account != systemAccount {
				continue
			}
			cur := routeCount{msgs: r.OutMsgs, bytes: r.OutBytes}
			prev := n.lastRoutes[r.Rid]
			if cur.msgs < prev.msgs || cur.bytes < prev.bytes {
				prev = routeCount{}
			}
			delta.msgs += cur.msgs - prev.msgs
			delta.bytes += cur.bytes - prev.bytes
			seen[r.Rid] = cur
		}
		if n.srv == srv { // not restarted meanwhile
			n.lastRoutes = seen
		}
		n.mu.Unlock()
	}
	d.mu.Lock()
	d.routeTotals.msgs += delta.msgs
	d.routeTotals.bytes += delta.bytes
	d.mu.Unlock()
}
