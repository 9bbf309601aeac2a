// Package nodes is the runtime-neutral node layer every scenario runtime
// (scenarios/inprocess, docker) and reference driver builds on: node names
// ("broker 2", "etcd 0"), the Kafka-protocol clients of a deployment
// ([KafkaClients]), the logs that answer detection and convergence
// ([RouteLog], [Departures], [WatchLive]), and the one fault dispatcher
// ([Faults]). Waits on a condition use internal/poll.
//
// A runtime implements [Runtime]: it lists its nodes, says who holds a
// partition and who is in charge of a role, and performs one fault action
// on one node or link. [Faults] does the rest, the same way everywhere:
// it resolves a step's target (broker N, leader-of T/P, follower-of T/P, a
// role's members or its active member as the topology's descriptor
// declares them, killed, a link of two of these), applies the action
// through the runtime, remembers what a kill or pause hit, and returns the
// resolved node for the report and for the step's revert.
//
//	faults := nodes.NewFaults(coordinator.TopologyName, myRuntime)
//	resolved, err := faults.Apply(ctx, step, "")
//
// A new fault action is one method on the runtimes that can take it: an
// optional interface the dispatcher checks for (see [Runtime]).
package nodes
