package scale

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/gossip"
)

func init() {
	Register(gossip.TopologyName, func() Topology { return &gossipScale{placement: gossip.PlacementSlots} })
	Register(gossip.RingTopologyName, func() Topology { return &gossipScale{placement: gossip.PlacementRing} })
}

// gossipSeeds is how many brokers the others join through.
const gossipSeeds = 3

// gossipScale is the decentralised control plane at scale: no server at
// all, every broker runs a gossip.Plane (its own memberlist on its own
// loopback TCP and UDP port) and learns the others through the first
// gossipSeeds brokers. Slots (Redis Cluster) or ring (Cassandra) placement.
type gossipScale struct {
	placement string

	shape Shape
	base  gossip.Config

	mu     sync.Mutex
	seeds  []string
	planes []*gossip.Plane
	// masters, stableSince: the slot masters every broker agreed on last,
	// since when (Settled).
	masters     []int32
	stableSince time.Time
}

func (g *gossipScale) Start(_ context.Context, s Shape) error {
	g.shape = s
	profile := gossip.ProfileFast
	if s.Profile == "production" {
		profile = gossip.ProfileProduction
	}
	base, err := gossip.ProfileConfig(profile)
	if err != nil {
		return err
	}
	g.base = base
	// The seeds' addresses are known to every broker from the start, as
	// in a configuration file.
	for range min(gossipSeeds, s.Brokers) {
		addr, err := freeGossipAddr()
		if err != nil {
			return err
		}
		g.seeds = append(g.seeds, addr)
	}
	return nil
}

// NewPlane picks the broker's gossip address; the first gossipSeeds
// brokers are the seeds of the rest (and of each other).
func (g *gossipScale) NewPlane(id int32) (broker.ControlPlane, error) {
	var addr string
	if int(id) < len(g.seeds) {
		addr = g.seeds[id]
	} else {
		var err error
		if addr, err = freeGossipAddr(); err != nil {
			return nil, err
		}
	}
	seeds := g.seeds
	cfg := g.base
	cfg.Placement = g.placement
	cfg.ClusterID = "brokerlab-" + g.placement
	cfg.Bind = addr
	cfg.Seeds = seeds
	cfg.Logger = g.shape.Logger.With("component", "gossip", "node-id", id)
	p, err := gossip.New(cfg)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.planes = append(g.planes, p)
	g.mu.Unlock()
	return p, nil
}

// freeGossipAddr returns a loopback address free for both TCP and UDP
// (memberlist binds both on one port).
func freeGossipAddr() (string, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return addr, nil
		}
	}
	return "", errors.New("scale: no free gossip port")
}

// Cost is what every plane sent: gossip, requests and push-pull state
// (memberlist's own probes are not counted, as in the in-process runtime).
func (g *gossipScale) Cost() Cost {
	g.mu.Lock()
	planes := append([]*gossip.Plane(nil), g.planes...)
	g.mu.Unlock()
	var out Cost
	for _, p := range planes {
		st := p.Stats()
		out.Requests += st.UpdatesSent + st.RequestsSent
		out.Bytes += st.BytesSent
	}
	return out
}

func (g *gossipScale) MovesLeaders() bool { return true }

// Settled: under slots, every broker sees the same slot masters, and has
// for two join-retry periods (a broker without slots takes its share
// within one, while a master holds more than a share). A node takes only
// slots no partition hashes to, so a topic created while shares still
// move can place a partition on a slot whose new owner is not among its
// replicas, and it then has no leader; brokers come up, take their slots,
// then topics are created, as with Redis Cluster. The ring has nothing to
// settle.
func (g *gossipScale) Settled() error {
	if g.placement != gossip.PlacementSlots {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var first []int32
	for i, p := range g.planes {
		m := p.Masters()
		if i == 0 {
			first = m
		} else if !slices.Equal(m, first) {
			g.stableSince = time.Time{}
			return fmt.Errorf("broker %d sees %d slot masters, broker 0 %d", i, len(m), len(first))
		}
	}
	now := time.Now()
	if !slices.Equal(first, g.masters) || g.stableSince.IsZero() {
		g.masters, g.stableSince = first, now
	}
	if wait := 2 * g.base.JoinRetry; now.Sub(g.stableSince) < wait {
		return fmt.Errorf("%d slot masters of %d brokers for %v, waiting for %v unchanged", len(first), len(g.planes),
			now.Sub(g.stableSince).Round(time.Millisecond), wait)
	}
	return nil
}

func (g *gossipScale) Close() error { return nil }
