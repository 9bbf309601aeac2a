package scale

import (
	"context"
	"strconv"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/nameserver"
)

func init() { Register(nameserver.TopologyName, func() Topology { return &nameserverScale{} }) }

// nameServers is how many name servers a scale run starts (every broker
// registers with each).
const nameServers = 2

// nameserverScale is the RocketMQ-style control plane at scale: stateless
// name servers and one registrar per broker (its own connections,
// heartbeats and route polls), brokers in groups of the replication factor.
type nameserverScale struct {
	shape   Shape
	timings nameserver.Timings
	servers []*nameserver.Server
	addrs   []string
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
	return nil
}

func (n *nameserverScale) NewPlane(id int32) (broker.ControlPlane, error) {
	rf := max(n.shape.Replication, 1)
	cfg := n.timings.RegistrarConfig()
	cfg.NameServers = n.addrs
	cfg.Cluster = "brokerlab"
	cfg.Group = "group-" + strconv.Itoa(int(id)/rf)
	cfg.BrokerID = id % int32(rf)
	cfg.MaxFrameBytes = 256 << 20
	cfg.Logger = n.shape.Logger.With("component", "registrar", "node-id", id)
	return nameserver.NewRegistrar(cfg)
}

// Cost is what the name servers counted: registrations and queries (route
// polls of the brokers, snapshots), and every frame's bytes.
func (n *nameserverScale) Cost() Cost {
	var out Cost
	for _, s := range n.servers {
		st := s.Stats()
		out.Requests += st.RegisterRequests + st.RouteQueries + st.ClusterInfoQueries + st.SnapshotQueries
		out.Bytes += st.BytesIn + st.BytesOut
	}
	return out
}

// MovesLeaders: classic mode has no master switch.
func (n *nameserverScale) MovesLeaders() bool { return false }

func (n *nameserverScale) Close() error {
	for _, s := range n.servers {
		_ = s.Close()
	}
	return nil
}
