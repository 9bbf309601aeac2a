// Package broker is a Kafka-protocol broker node: it serves stock Kafka
// clients (kafka-go, franz-go, librdkafka), stores each partition replica in
// a segmented log (package storage) and replicates partitions leader to
// followers the way Kafka does: followers fetch with their replica id, the
// leader tracks their log end offsets, the high watermark is the minimum over
// the in-sync replicas, acks=all completes when it passes the batch, and
// every leadership change bumps a leader epoch that fences stale requests
// and tells a new follower where to truncate.
//
// The broker does not know which control plane runs the cluster. It learns
// leaders and ISRs from a ControlPlane (coordinator: etcd, Kafka/ZooKeeper
// style; nameserver: RocketMQ style; memplane: in memory, for in-process
// clusters in tests; standalone: a one-node cluster that is its own
// controller, state in its data directory) and reports ISR changes back
// through it. A topic missing from a view is no longer served but its data
// is kept; only a deletion the plane announces (ClusterView.DeletedTopics)
// removes a replica's data.
//
// Each Kafka API has its own file named by its key (00_produce.go,
// 01_fetch.go, ...) whose header lists the versions served and what is not
// supported.
//
//	b, err := broker.New(cfg, controlPlane)
//	if err != nil { ... }
//	if err := b.Start(ctx); err != nil { ... }
//	defer b.Close()
package broker
