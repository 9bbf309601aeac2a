package coordinator

import (
	"flag"
	"image/color"
	"strings"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/topology"
)

// TopologyName is the coordinator topology's name in scenario files.
const TopologyName = "coordinator"

func init() {
	topology.Register(topology.Descriptor{
		Name:        TopologyName,
		Description: "Kafka/ZooKeeper style: an elected controller broker keeps partition state in etcd",
		Family:      "kafka",
		Order:       10,
		Color:       color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		Default:     true,
		Roles: []topology.Role{
			{Target: "controller", Noun: "controller broker", Bare: topology.BareActive},
			{Target: "etcd", Noun: "etcd member", Field: "etcd", Min: 1, Default: 1, Bare: topology.BareEvery},
		},
		Broker: &topology.BrokerPlane{Infer: "etcd", Flags: brokerFlags},
	})
}

// brokerFlags binds Config's broker-side flags and builds the Plane.
func brokerFlags(fs *flag.FlagSet) topology.Builder {
	cfg := DefaultConfig()
	cfg.AddFlags(fs)
	return func(env topology.BrokerEnv) (broker.ControlPlane, string, error) {
		cfg.Logger = env.Log("coordinator")
		p, err := New(cfg)
		if err != nil {
			return nil, "", err
		}
		return p, "coordinator (etcd " + strings.Join(cfg.Endpoints, ",") + ")", nil
	}
}
