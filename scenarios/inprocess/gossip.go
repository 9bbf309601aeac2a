package inprocess

import (
	"context"
	"errors"
	"net"
	"path/filepath"

	"github.com/hashicorp/memberlist"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The gossip topologies in one process: every broker runs a gossip.Plane
// (memberlist on its own loopback port, UDP and TCP); the first three are
// the seeds. There is no control-plane node: kill, pause and isolate of a
// broker cut its gossip too, because every plane's transport asks the
// fault network whether a link is up before it sends or dials.

func init() {
	for _, placement := range []string{gossip.PlacementSlots, gossip.PlacementRing} {
		name := gossip.TopologyName
		if placement == gossip.PlacementRing {
			name = gossip.RingTopologyName
		}
		scenarios.RegisterDriver(scenario.RuntimeInProcess, name,
			func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
				return startGossip(ctx, env, name, placement)
			})
	}
}

var _ scenarios.Placer = (*gossipDeployment)(nil)

type gossipDeployment struct {
	peerPlane
	gaddr map[int32]string // gossip address of each broker, kept across restarts
}

func startGossip(ctx context.Context, env scenarios.Env, topo, placement string) (scenarios.Deployment, error) {
	d := &gossipDeployment{peerPlane: newPeerPlane(env, scenarios.GossipCost), gaddr: map[int32]string{}}
	d.faults = nodes.NewFaults(topo, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	base, err := gossip.ProfileConfig(gossipProfile(env.Spec.Cluster.Profile))
	if err != nil {
		return nil, err
	}
	n := env.Spec.Cluster.Brokers
	var seeds []string
	for i := range n {
		addr, err := freeGossipAddr(ctx)
		if err != nil {
			return nil, err
		}
		id := int32(i)
		d.gaddr[id] = addr
		d.net.Register(nodes.BrokerName(id), addr)
		if i < 3 {
			seeds = append(seeds, addr)
		}
	}
	d.newPlane = func(id int32) (broker.ControlPlane, error) {
		cfg := base
		cfg.Placement = placement
		cfg.ClusterID = "brokerlab-" + placement
		cfg.Bind = d.gaddr[id]
		cfg.Seeds = seeds
		cfg.StateFile = filepath.Join(d.brokerConfig(id).DataDir, gossip.StateFileName)
		cfg.WrapTransport = func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			self := nodes.BrokerName(id)
			return gossip.BlockingTransport(inner, func(addr string) bool { return d.net.Blocked(self, addr) })
		}
		cfg.Offsets = func() map[string]int64 { return d.offsets(id) }
		cfg.Logger = env.Logger.With("component", "gossip", "node-id", id)
		return gossip.New(cfg)
	}
	if err := d.start(ctx, n); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// gossipProfile maps the scenario's timing profile to gossip's.
func gossipProfile(p string) string {
	if p == scenario.ProfileFast {
		return gossip.ProfileFast
	}
	return gossip.ProfileProduction
}

// freeGossipAddr returns a loopback address free for both TCP and UDP
// (memberlist binds both on one port).
func freeGossipAddr(ctx context.Context) (string, error) {
	var lc net.ListenConfig
	for range 50 {
		l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		u, err := lc.ListenPacket(ctx, "udp", addr)
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return addr, nil
		}
	}
	return "", errors.New("no free gossip port")
}

// offsets is the log end offset of every replica broker id holds.
func (d *gossipDeployment) offsets(id int32) map[string]int64 {
	d.cluster.mu.Lock()
	var b *broker.Broker
	if int(id) < len(d.brokers) {
		b = d.brokers[id].b
	}
	d.cluster.mu.Unlock()
	if b == nil {
		return nil
	}
	return gossip.LogEnds(b.Status())
}

func (d *gossipDeployment) Close() error { return d.close() }
