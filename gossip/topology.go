package gossip

import (
	"flag"
	"fmt"
	"image/color"
	"path/filepath"
	"strings"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/topology"
)

// Topology names in scenario files.
const (
	TopologyName     = "gossip"
	RingTopologyName = "gossip-ring"
)

func init() {
	topology.Register(topology.Descriptor{
		Name:        TopologyName,
		Description: "Redis Cluster style: peers gossip (memberlist), 16384 hash slots owned by masters, replicas win elections by a majority of masters",
		Family:      "decentralised",
		Order:       40,
		Color:       color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
		Broker:      &topology.BrokerPlane{Infer: "seeds", Flags: brokerFlags(PlacementSlots)},
	})
	topology.Register(topology.Descriptor{
		Name:        RingTopologyName,
		Description: "Cassandra style: peers gossip (memberlist), consistent-hash ring with virtual nodes, the first live replica leads",
		Family:      "decentralised",
		Order:       41,
		Color:       color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
		Broker:      &topology.BrokerPlane{Flags: brokerFlags(PlacementRing)},
	})
}

// brokerFlags binds Config's flags (plus --gossip-profile, applied before
// the individual flags whatever their order) and builds the Plane.
func brokerFlags(placement string) func(fs *flag.FlagSet) topology.Builder {
	return func(fs *flag.FlagSet) topology.Builder {
		set := Production() // shown as the defaults
		set.AddFlags(fs)
		profile := fs.String("gossip-profile", ProfileProduction, "timing profile: production (memberlist LAN defaults, Redis delays) or fast")
		return func(env topology.BrokerEnv) (broker.ControlPlane, string, error) {
			cfg, err := ProfileConfig(*profile)
			if err != nil {
				return nil, "", err
			}
			// Flags given on the command line override the profile.
			probe := flag.NewFlagSet("", flag.ContinueOnError)
			cfg.AddFlags(probe)
			fs.Visit(func(f *flag.Flag) {
				if probe.Lookup(f.Name) != nil {
					_ = probe.Set(f.Name, f.Value.String())
				}
			})
			cfg.Placement = placement
			cfg.Logger = env.Log("gossip")
			cfg.ClusterID = "brokerlab-" + placement
			if env.DataDir != "" {
				cfg.StateFile = filepath.Join(env.DataDir, StateFileName)
			}
			if env.Replicas != nil {
				// Replicas of a failed master rank by replication
				// offset, as in-process brokers do.
				cfg.Offsets = func() map[string]int64 { return LogEnds(env.Replicas()) }
			}
			p, err := New(cfg)
			if err != nil {
				return nil, "", err
			}
			return p, fmt.Sprintf("%s (seeds %s)", placement, strings.Join(cfg.Seeds, ",")), nil
		}
	}
}
