// Package coordinator is the Kafka/ZooKeeper-style control plane on etcd:
// etcd plays ZooKeeper, one broker at a time plays Kafka's controller.
//
// Each broker holds a Plane (New, then Register), which implements
// broker.ControlPlane. The broker registers under a lease, Kafka's ephemeral
// znode: the lease TTL is the session timeout (18 s production, 2 s fast).
// Every broker campaigns for controller; the winner places replicas for new
// topics and elects partition leaders from the ISR when a broker's lease
// expires. Partition leaders change their ISR with a compare-and-swap on the
// key's mod revision (Kafka's zkVersion). Every handle watches the whole
// prefix and hands its broker complete ClusterView snapshots.
//
// # Key layout
//
// Under Config.Prefix (default /brokerlab):
//
//	cluster-id                    random id written by the first broker
//	brokers/<id>                  broker.BrokerInfo JSON, under the broker's lease
//	controller/<lease hex>        election candidate, value = broker id, under the
//	                              candidate's lease; lowest create revision leads
//	                              (concurrency.Election's layout)
//	topics/<name>                 broker.TopicConfig JSON
//	partitions/<topic>/<p>        broker.PartitionState JSON; Version is the key's
//	                              mod revision (the stored version field is 0)
//	deleted-topics/<name>         empty; written with the deletion of a topic,
//	                              removed with its next creation. Views announce
//	                              these names as DeletedTopics, the only thing
//	                              that makes a broker remove a topic's data
//
// # Controller
//
// The elected controller lists the prefix, watches it, and after each batch
// of changes reconciles level-triggered (so a newly elected controller
// repairs whatever its predecessor left):
//
//   - a topic without partition states is placed over the live brokers
//     (balanced leaders and replicas, followers on other racks first) and
//     its states written: leader = first replica, epoch 0, ISR = replicas;
//     with fewer live brokers than its replication factor the topic is
//     removed and CreateTopics returns broker.ErrNotEnoughBrokers;
//   - a partition whose leader is dead gets the first live ISR member in
//     replica order (epoch+1, dead members leave the ISR); with none it goes
//     offline (leader -1, epoch+1, ISR kept) until an ISR member returns, or
//     with the topic's UncleanElection any live replica is elected;
//   - dead followers leave the ISR (epoch unchanged); returning brokers are
//     re-added by their leader through AlterISR once caught up;
//   - a broker whose registration was replaced by a new lease (restart
//     within its session) is treated as failed once, then as a follower.
//
// Every controller write is a transaction conditioned on the election key
// still having the create revision it had when this controller won, so a
// deposed controller (lease expired, partitioned from etcd) changes nothing
// even before it notices; it stops acting as soon as its session ends.
//
// # etcd outages
//
// While etcd is unreachable a handle keeps its last view (brokers keep
// serving, as Kafka does while ZooKeeper is away) and retries. Leases do not
// expire while etcd is down (etcd extends them when a leader is elected), so
// a handle that lost its keep-alive resumes the same lease if etcd still has
// it and only registers anew when it expired.
//
// # Embedded etcd
//
// StartEtcd runs a member in-process (RunEtcd is `brokerlab coordinator`);
// LocalCluster and StartCluster build a local n-member cluster.
//
// # Example
//
//	e, _ := coordinator.StartEtcd(etcdCfg) // or an external cluster
//	cfg := coordinator.FastConfig()
//	cfg.Endpoints = e.Endpoints()
//	cp, _ := coordinator.New(cfg)
//	b, _ := broker.New(brokerCfg, cp) // the broker calls cp.Register
//
// Stats counts each handle's etcd messages and bytes by kind (keep-alives,
// watch, puts, txns, ...); SumStats adds up a cluster.
package coordinator
