package external

import (
	"image/color"

	"github.com/brokerlab/brokerlab/topology"
)

// TopologyName is the external Kafka reference's name in scenario files.
const TopologyName = "kafka-external"

func init() {
	topology.Register(topology.Descriptor{
		Name:        TopologyName,
		Description: "any Kafka-protocol cluster reachable at external.bootstrap or --bootstrap (no faults are injected)",
		Family:      "reference",
		Order:       110,
		Color:       color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	})
}
