// Package discovery tells brokerlab's producer and consumer where a topic's
// partitions live, in the two ways the compared systems do it:
//
//   - Bootstrap (Kafka, and the coordinator and standalone topologies):
//     Metadata from any known broker, cached for MetadataMaxAge and fetched
//     again on the next use after Invalidate. No fault avoidance.
//   - NameServers (RocketMQ, the nameserver topology): routes pulled from any
//     name server on an interval and after Invalidate; a partition's leader
//     is its group's master, and consumers may read from slaves. Report and
//     Avoid implement RocketMQ's latency-based fault avoidance.
//
// Both report route changes (Change) so that a runner can measure route
// convergence. The Kafka wire client both clients use, kclient, lives in a
// subpackage.
//
// Example:
//
//	cfg := discovery.DefaultBootstrapConfig()
//	cfg.Brokers = []string{"127.0.0.1:9092"}
//	cfg.OnChange = func(c discovery.Change) { log.Println(c.Partition, c.Addr) }
//	d, err := discovery.NewBootstrap(cfg)
//	defer d.Close()
//	r, err := d.Route(ctx, "bench")
//	leader := r.Partitions[0].Leader
package discovery
