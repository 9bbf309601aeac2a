// Package inprocess runs the coordinator, nameserver and gossip topologies
// inside the runner's process: every node on its own loopback port, every connection
// between nodes and from clients through a faultnet.Network, so that kill,
// pause, cut, isolate and delay act on real TCP. It registers itself with the
// scenario runner; import it for its side effect:
//
//	import _ "github.com/brokerlab/brokerlab/scenarios/inprocess"
//
// Node names in fault events are "broker N", "etcd N" and "nameserver N"
// (scenarios/nodes names them; its dispatcher resolves and applies every
// fault through the cluster's nodes.Runtime methods).
// Detection time is when the control plane dropped the broker: the
// controller's view for coordinator (the broker's lease expired), every live
// name server's table for nameserver, every other running broker's gossip
// view for gossip and gossip-ring (whose memberlist packets and dials also
// obey the fault network). Route convergence is when the last
// client that was using the node's address sent its next request elsewhere
// (or lost the route). nodes.KafkaClients builds the Kafka-protocol
// producers and consumers, as in every runtime.
package inprocess
