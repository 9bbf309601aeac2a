// Package topology is the registry of brokerlab's topologies: the control
// planes the broker runs under (coordinator, nameserver, ...) and the
// reference systems scenarios measure them against (jetstream,
// kafka-external).
//
// A topology registers one [Descriptor] from its own package, the way a
// database/sql driver does, and the rest of brokerlab reads the registry
// instead of listing topologies: the scenario format (names, cluster fields,
// fault targets, validation), the reports (colour, column order), `brokerlab
// broker` (flags and the control plane it builds) and `brokerlab help`.
//
//	// in package coordinator
//	func init() {
//		topology.Register(topology.Descriptor{
//			Name:        "coordinator",
//			Description: "Kafka/ZooKeeper style: an elected controller, state in etcd",
//			Family:      "kafka",
//			Order:       10,
//			Roles:       []topology.Role{{Target: "etcd", Field: "etcd", Min: 1, ...}},
//			Broker:      &topology.BrokerPlane{Infer: "etcd", Flags: brokerFlags},
//		})
//	}
//
// The package sits just above broker (for [broker.ControlPlane]) and below
// everything that reads it; it imports no scenario code. The per-runtime
// drivers that start a topology's cluster for a scenario register
// separately, with scenarios.RegisterDriver.
package topology
