package nameserver

import (
	"flag"
	"image/color"

	"github.com/brokerlab/brokerlab/internal/flagutil"
	"github.com/brokerlab/brokerlab/topology"
)

// ControllerTopologyName is controller mode's name in scenario files.
const ControllerTopologyName = "nameserver-controller"

func init() {
	topology.Register(topology.Descriptor{
		Name:        ControllerTopologyName,
		Description: "RocketMQ 5 controller mode: Raft-replicated controllers elect a new master from the SyncStateSet; routes from name servers",
		Family:      "rocketmq",
		Order:       25,
		Color:       color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
		Roles: []topology.Role{
			nameServerRole,
			{Target: "controller", Noun: "controller", Field: "controllers", Plural: "controllers", Min: 1, Default: 3, Bare: topology.BareActive},
		},
		Validate: validateShape,
		Broker:   &topology.BrokerPlane{Infer: "controllers", Flags: registrarFlags(true)},
	})
}

// AddControllerFlags binds controller mode's broker settings to fs:
// --controllers a,b,c and --controller-heartbeat.
func (c *RegistrarConfig) AddControllerFlags(fs *flag.FlagSet) {
	fs.Var((*flagutil.List)(&c.Controllers), "controllers", "comma-separated controller addresses: turns on controller mode")
	fs.DurationVar(&c.ControllerHeartbeat, "controller-heartbeat", c.ControllerHeartbeat, "how often to heartbeat to the controller leader")
}
