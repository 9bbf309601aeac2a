package nameserver

import (
	"flag"
	"fmt"
	"image/color"
	"strings"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/topology"
)

// TopologyName is the nameserver topology's name in scenario files.
const TopologyName = "nameserver"

func init() {
	topology.Register(topology.Descriptor{
		Name:        TopologyName,
		Description: "RocketMQ style: fixed masters per broker group, routes pulled from stateless name servers",
		Family:      "rocketmq",
		Order:       20,
		Color:       color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
		Default:     true,
		Roles:       []topology.Role{nameServerRole},
		Validate:    validateShape,
		Broker:      &topology.BrokerPlane{Infer: "nameservers", Flags: registrarFlags(false)},
	})
}

// nameServerRole is the name servers of both name-server topologies.
var nameServerRole = topology.Role{Target: "nameserver", Noun: "name server", Field: "nameservers", Plural: "name servers", Min: 1, Default: 2, Bare: topology.BareEvery}

// validateShape: brokers form groups of `replication` members, one master
// each, so the brokers must split evenly.
func validateShape(s topology.Shape) []topology.Problem {
	if s.Replication > 0 && s.Brokers%s.Replication != 0 {
		return []topology.Problem{{Field: "topic.replication",
			Msg: fmt.Sprintf("the nameserver topology splits cluster.brokers %d into groups of %d: not divisible", s.Brokers, s.Replication)}}
	}
	return nil
}

// registrarFlags binds RegistrarConfig's flags, with controller mode's
// when controllers is set, and builds the Registrar.
func registrarFlags(controllers bool) func(fs *flag.FlagSet) topology.Builder {
	return func(fs *flag.FlagSet) topology.Builder {
		cfg := DefaultRegistrarConfig()
		cfg.AddFlags(fs)
		if controllers {
			cfg.AddControllerFlags(fs)
		}
		return func(env topology.BrokerEnv) (broker.ControlPlane, string, error) {
			cfg.DataDir = env.DataDir
			cfg.Logger = env.Log("registrar")
			r, err := NewRegistrar(cfg)
			if err != nil {
				return nil, "", err
			}
			desc := "nameserver (" + strings.Join(cfg.NameServers, ",") + ")"
			if controllers {
				desc += ", controllers (" + strings.Join(cfg.Controllers, ",") + ")"
			}
			return r, desc, nil
		}
	}
}
