package jetstream

import (
	"image/color"

	"github.com/brokerlab/brokerlab/topology"
)

// TopologyName is the JetStream reference's name in scenario files.
const TopologyName = "jetstream"

func init() {
	topology.Register(topology.Descriptor{
		Name:        TopologyName,
		Description: "NATS JetStream reference: an embedded cluster, one R-replica stream per partition, Raft-elected leaders",
		Family:      "reference",
		Order:       100,
		Color:       color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	})
}
