// Package docker is brokerlab's container layer and its docker runtime.
//
// The container layer is the topology drivers written once over a node
// Launcher: coordinator.go, nameserver.go, nameserver_controller.go and
// gossip.go decide which nodes run with which flags and how the runner
// watches them (etcd watch, name-server polls, Kafka Metadata, /metrics);
// the Cluster (cluster.go, netfilter.go) keeps every node's state and
// applies the faults (kill, restart, pause, isolate, isolate from peers,
// link cuts as iptables rules) through the Launcher; a Launcher makes the
// engine calls. RegisterRuntime registers every driver under a runtime
// name with that runtime's Launcher, and nothing else is needed for a
// container runtime: this package's containers.go is the docker runtime's
// (a container and a network sandbox per node), package swarm's services
// are the swarm runtime's (a service per node).
//
// The docker runtime puts every node of a topology in its own container on
// a private bridge network: real SIGKILLs, real network disconnects. It
// registers the coordinator, nameserver, nameserver-controller, gossip and
// gossip-ring drivers under the runtime name "docker"; import it for its
// side effect:
//
//	import _ "github.com/brokerlab/brokerlab/docker"
//
// and run `brokerlab run --runtime docker scenarios/quickstart.yaml`.
//
// # Image
//
// Containers run the image of docker/Dockerfile: FROM scratch plus the
// static brokerlab binary and docker/pause. Package docker/image builds it
// from the working tree before the first deployment of a process (go build
// with CGO_ENABLED=0 into docker/build/, then an image tagged with the
// binaries' hash, reused while they do not change; also tagged
// brokerlab:local). Without a source tree (a brokerlab binary run
// elsewhere) brokerlab:local is used as it is. Nothing is pulled.
//
// # Nodes
//
// One run is one network (a /24 of 172.29.0.0/16, picked free) and, per
// node, two containers: a sandbox running /pause that owns the node's fixed
// address, and the node's brokerlab process in the sandbox's network
// namespace, like the containers of a Kubernetes pod. Node names in fault
// events are "etcd N", "nameserver N", "controller N" and "broker N".
//
//   - coordinator: Spec.Cluster.Count("etcd") `brokerlab coordinator` members forming
//     one etcd cluster, and brokers with --etcd and the profile's session TTL.
//   - nameserver: Spec.Cluster.Count("nameservers") `brokerlab nameserver`s and
//     brokers in groups of Topic.Replication: broker i is broker id
//     i%replication (0 is the master) of group-<i/replication>, with the
//     scenario's replication mode. 3 brokers at replication 3 are one group:
//     a master and two slaves.
//   - nameserver-controller: the nameserver deployment plus
//     Spec.Cluster.Count("controllers") standalone `brokerlab controller`s
//     (one Raft group, each with its log in its container's /data), and
//     brokers with --controllers; the bare fault target "controller" is
//     the Raft leader, asked of the controllers (controller.LeaderOf).
//   - gossip, gossip-ring: brokers only, each with --control-plane gossip
//     (or gossip-ring), memberlist on port 7946 (UDP and TCP) advertised
//     at the container's address, --seeds the first three brokers' gossip
//     addresses, and the profile's gossip timings. All start at once; the
//     first seed forms the cluster once no other seed answers from a
//     formed cluster.
//
// Producers and consumers run in the runner's process (the in-process
// runtime's Kafka clients, nodes.KafkaClients) and reach the containers
// at their addresses on the bridge, which the engine's host routes.
//
// # Faults
//
//   - kill: SIGKILL to the node's process. Its sandbox keeps the address,
//     so peers and clients see the connection reset and new connections
//     refused at once, as when a process dies on a live host.
//   - restart: the same container started again, with its file system (the
//     node's data) and address.
//   - pause / resume: docker pause / unpause (cgroup freezer).
//   - isolate / heal: the sandbox disconnected from the network and
//     reconnected on the same address; peers' connections to it hang.
//   - isolate with clients: keep / heal: iptables DROP rules in the node's
//     sandbox for every other node's address (netfilter.go); the
//     runner and its clients reach the containers from the engine's host
//     through the bridge's gateway, which no rule names. Needs what cuts
//     need.
//   - cut / heal of a link "A - B": iptables DROP rules in both sandboxes'
//     namespaces, entered with nsenter from the runner. This needs root on
//     the engine's host with nsenter and iptables; elsewhere it is
//     ErrNotApplicable, and so is delay (no per-destination qdisc).
//   - stop: SIGTERM (docker stop, SIGKILL after 30 s); the broker hands its
//     leaderships off before it stops listening (broker.Broker.Handoff).
//   - power-loss: SIGKILL, then every segment file of the broker's
//     /data/broker cut to the length its storage.SyncedFile records (the
//     engine's archive API, out of and back into the stopped container);
//     brokers run with --record-synced and the scenario's --fsync.
//   - roll: the runner's stops and restarts, with the ISR read from Kafka
//     Metadata (UnderReplicated). loss is not applicable (no netem here).
//   - leader-of / follower-of resolve through Kafka Metadata from the
//     brokers the runner can reach (highest leader epoch wins); controller
//     through Metadata's controller id.
//
// # Measurements
//
// Detection: coordinator, the runner watches the brokers' registrations in
// etcd and takes the deletion of a broker's key (its lease expired);
// nameserver, the runner polls every reachable name server's cluster info
// every 100 ms and takes the moment a broker is gone from all of them;
// gossip, the runner asks every broker it reaches for Metadata (its broker
// list is that broker's gossip view) every 100 ms and takes the moment no
// other broker lists it. Gossip's control-plane cost is not measured under
// docker: its counters live in the brokers and no endpoint exports them.
// Convergence: when the last client stopped using the broker's address, from
// the clients' route changes. Control-plane cost: coordinator, etcd's own
// /metrics (gRPC messages received by method, client bytes), summed over
// members and carried over member restarts; it includes the runner's own
// watch. Nameserver: none, the counters live inside the name-server
// containers and nothing exports them.
//
// # Cleanup
//
// Close removes every container and the network, also after a failed
// start. Everything carries the labels org.brokerlab.run and
// org.brokerlab.owner (host/pid); each new deployment first removes what a
// dead owner on this host left behind (a run killed before it could clean
// up).
package docker
