// Package swarm is brokerlab's Docker Swarm runtime: every node of a
// topology is a swarm service of one replica, pinned to a swarm node, on an
// overlay network the run creates, and the producers and consumers run on
// load generator services that stream their records back to the runner.
// It supplies only a Launcher (services.go) to package docker's
// container layer, whose topology drivers and Cluster (node states, fault
// application, packet filter rules) both container runtimes share; it
// registers all of them (coordinator, nameserver, nameserver-controller,
// gossip, gossip-ring) under the runtime name "swarm"; import it for its
// side effect:
//
//	import _ "github.com/brokerlab/brokerlab/swarm"
//
// and run `brokerlab run --runtime swarm scenarios/quickstart.yaml`.
//
// # Swarm
//
// The runner talks to one engine (DOCKER_HOST, else the local socket),
// which must be a swarm manager. An engine in no swarm forms a one-node
// swarm (advertising $BROKERLAB_SWARM_ADVERTISE, default 127.0.0.1) and
// leaves it when the process's last deployment closes, unless services are
// left on it; the swarm is labelled with the runner's host and pid, so a
// later run adopts (and leaves) a swarm whose runner died.
//
// # Placement
//
// By default per role, round robin over the ready and active swarm nodes
// sorted by hostname, pinned with a node.id constraint. A node labelled
// org.brokerlab.roles=broker,etcd,nameserver,controller,client (any
// subset) takes only those roles; unlabelled nodes take all. A scenario's
// cluster.placement overrides that per role (placement.go): its selectors
// (hostname, node id or label=value) are taken round robin, and so are the
// nodes a label matches; a selector that matches no node stops the run
// before anything is created, at the scenario's file and line.
//
// # Services
//
// A service per node, named <run>-<node> ("blswarm-1a2b3c-broker-0"): the
// image of docker/Dockerfile (built here as the docker runtime builds it;
// on other machines loaded with docker save | docker load), a node-local
// volume of the same name at /data, endpoint mode dnsrr on the run's
// attachable overlay network, so peers and clients reach a node at its
// service name and find a restarted task at its new address. Each service
// port is also published in host mode on the task's swarm node, at a port
// picked per run (20000-32767, below the ephemeral range, skipping ports
// in use on the runner's host); the runner's own probes (Kafka Metadata,
// etcd watch, name-server polls, /metrics) use those, so the runner need
// not be on the overlay.
//
// # Faults
//
// Through the fault agent of the task's swarm node (agent.go): every run
// deploys `brokerlab faultagent` as a global service, one task per swarm
// node, with that node's engine socket and root file system mounted and
// CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_SYS_PTRACE, published in host mode
// at a port picked per run. The runner sends each fault to the agent of
// the node running the task (agentwire.go); the agent acts only on
// containers of its run, for requests carrying the run's token, and only
// with the runtime's packet filter rules. A one-node swarm goes through the
// same agent.
//
//   - kill: SIGKILL to the task's container, by its node's engine. The
//     service's restart condition is none, so swarm does not replace the
//     task by itself (which would blur the outage the scenario times).
//   - restart: a forced service update: a new task of the same service on
//     the same swarm node with the same volume (the node's data) and the
//     same name. Its overlay address is new; peers find it by name.
//   - pause / resume: the engine's pause and unpause (cgroup freezer).
//   - isolate / heal, isolate with clients: keep, and cut / heal: iptables
//     rules in the task's network namespace, run by the agent with its
//     node's own nsenter and iptables, chrooted into the mounted root
//     (swarm refuses to disconnect a task from its service's network).
//     Isolation drops everything but loopback; isolation from peers drops
//     every other node's overlay address; a cut drops the peer's; a
//     restarted task gets its rules again. A node without nsenter or
//     iptables makes them ErrNotApplicable for its tasks.
//
// # Load generators
//
// One `brokerlab loadgen` service per swarm node that takes clients (at
// most one per client of the workload). NewProducer and NewConsumer open a
// TCP session with one of them (through its published port) and run the
// in-process runtime's Kafka clients there; the records (sends, receives,
// route changes) come back in a compact binary stream (wire.go). Latency
// is measured where the producer runs: intended send time and ack on the
// load generator's clock. The runner measures each session's clock offset
// (five exchanges, the shortest round trip wins, the load generator's
// reading taken as the round trip's midpoint) and shifts the schedule's
// start into, and every record's times out of, that clock; end-to-end
// latency (a consumer's receive minus the producer's intended time) is thus
// corrected by both offsets, to within half of each round trip.
//
// # Cleanup
//
// Close removes every service, waits for their containers to go, then
// removes the network and the volumes, also after a failed start; the
// runner's Ctrl-C ends in Close. Everything carries org.brokerlab.swarm.run
// and org.brokerlab.swarm.owner (host/pid); each new deployment first
// removes what a dead owner on this host left behind.
package swarm
