// Package scale measures control planes at cluster sizes the data plane
// cannot reach on one machine: hundreds to thousands of control-plane-only
// brokers in one process, each running its topology's real
// broker.ControlPlane (the code `brokerlab broker` runs, with its own
// connections to etcd or the name servers) over a stand-in data plane that
// applies views and reports ISR changes as a partition leader does, but
// holds no log and serves no client.
//
// A sweep step (Run) starts the topology's servers and the brokers, creates
// the partitions (topics of up to 1000), then measures:
//
//   - propagation: a new topic's creation to each broker's view holding it
//     with a leader for every partition (p50, p99, max over brokers);
//   - idle control-plane cost: requests and bytes per second, as the
//     topology's own counters report them (etcd client traffic of every
//     broker; what the name servers received and sent);
//   - one failure: the broker leading the most partitions is killed (no
//     deregistration); detection is the first broker view without it,
//     removal the last, re-election per partition the time until every
//     live broker's view shows it on a new leader; the failure's cost is
//     the traffic above the idle rate until then.
//
// The stand-in proposes ISR changes as a broker's leader does: each on its
// own goroutine, one in flight per partition, so a plane that holds an
// AlterISR open never stops views from being applied.
//
// A topology runs at scale by registering a Topology from a driver file of
// this package (coordinator.go; nameserver.go for nameserver and
// nameserver-controller; gossip.go for gossip and gossip-ring). A topology
// whose cluster forms after registration (gossip slots) also says when it
// has settled, and topics are created only then. Shapes whose metadata the
// machine cannot hold are refused up front (CheckFits) rather than swapped.
//
//	pt, err := scale.Run(ctx, scale.Config{Topology: "coordinator",
//		Shape: scale.Shape{Brokers: 100, Partitions: 10000, Replication: 3, Profile: "fast", Dir: dir},
//		Idle: 10 * time.Second, Settle: 5 * time.Minute})
package scale
