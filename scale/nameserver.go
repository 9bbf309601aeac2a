package scale

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/raft/v3"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

func init() {
	Register(nameserver.TopologyName, func() Topology { return &nameserverScale{} })
	Register(nameserver.ControllerTopologyName, func() Topology { return &nameserverScale{controllers: 3} })
}

// nameServers is how many name servers a scale run starts (every broker
// registers with each).
const nameServers = 2

// nameserverScale is the RocketMQ-style control plane at scale: stateless
// name servers and one registrar per broker (its own connections,
// heartbeats and route polls), brokers in groups of the replication factor.
// With controllers > 0 it is RocketMQ 5's controller mode
// (nameserver-controller): that many Raft-replicated controllers, every
// registrar heartbeating the controller leader, which elects a new master
// from a group's SyncStateSet when its master dies.
type nameserverScale struct {
	controllers int

	shape   Shape
	timings nameserver.Timings
	servers []*nameserver.Server
	addrs   []string
	ctrls   []*controller.Controller
	caddrs  []string
}

func (n *nameserverScale) Start(ctx context.Context, s Shape) error {
	n.shape = s
	n.timings = nameserver.Fast()
	if s.Profile == "production" {
		n.timings = nameserver.Production()
	}
	for i := range nameServers {
		cfg := n.timings.ServerConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.MaxFrameBytes = 256 << 20 // registrations carry whole topic tables
		cfg.Logger = s.Logger.With("component", "nameserver", "nameserver", i)
		srv, err := nameserver.New(cfg)
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		n.servers = append(n.servers, srv)
		n.addrs = append(n.addrs, srv.Addr())
	}
	return n.startControllers(ctx)
}

// startControllers opens every controller's listener first (each needs
// every peer's address), then starts them, each with its own Raft log.
func (n *nameserverScale) startControllers(ctx context.Context) error {
	lns, addrs, err := controller.ListenPeers(ctx, n.controllers)
	if err != nil {
		return err
	}
	n.caddrs = append(n.caddrs, addrs...)
	for i, ln := range lns {
		cfg := n.timings.Controller.Config()
		cfg.ID, cfg.Peers, cfg.Listener, cfg.Storage = uint64(i+1), n.caddrs, ln, raft.NewMemoryStorage()
		cfg.Logger = n.shape.Logger.With("component", "controller", "controller", i)
		c, err := controller.New(cfg)
		if err == nil {
			err = c.Start(ctx)
		}
		if err != nil {
			for _, l := range lns[i+1:] {
				_ = l.Close()
			}
			return fmt.Errorf("scale: controller %d: %w", i, err)
		}
		n.ctrls = append(n.ctrls, c)
	}
	return nil
}

func (n *nameserverScale) NewPlane(id int32) (broker.ControlPlane, error) {
	rf := max(n.shape.Replication, 1)
	cfg := n.timings.RegistrarConfig()
	cfg.NameServers = n.addrs
	cfg.Controllers = n.caddrs
	cfg.Cluster = "brokerlab"
	cfg.Group = "group-" + strconv.Itoa(int(id)/rf)
	cfg.BrokerID = id % int32(rf)
	cfg.MaxFrameBytes = 256 << 20
	cfg.Logger = n.shape.Logger.With("component", "registrar", "node-id", id)
	return nameserver.NewRegistrar(cfg)
}

// Cost is what the name servers counted (registrations and queries: route
// polls of the brokers, snapshots; every frame's bytes) plus, in
// controller mode, what the controllers counted from the brokers
// (heartbeats and SyncStateSet changes).
func (n *nameserverScale) Cost() Cost {
	var out Cost
	for _, s := range n.servers {
		st := s.Stats()
		out.Requests += st.RegisterRequests + st.RouteQueries + st.ClusterInfoQueries + st.SnapshotQueries
		out.Bytes += st.BytesIn + st.BytesOut
	}
	for _, c := range n.ctrls {
		st := c.Stats()
		out.Requests += st.Requests
		out.Bytes += st.BrokerBytesIn + st.BrokerBytesOut
	}
	return out
}

// MovesLeaders: classic mode has no master switch; controller mode has.
func (n *nameserverScale) MovesLeaders() bool { return n.controllers > 0 }

func (n *nameserverScale) Close() error {
	for _, c := range n.ctrls {
		_ = c.Close()
	}
	for _, s := range n.servers {
		_ = s.Close()
	}
	return nil
}
