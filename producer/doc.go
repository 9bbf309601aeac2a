// Package producer is brokerlab's load generator: it writes an open-loop
// message schedule to a topic and records every message's fate as a
// history.Send, so that latency is measured from when each message was due
// (no coordinated omission) and the checker can account for every message.
//
// Message i is due at start + i/Rate and is queued at that time whatever
// happened to earlier messages; a stalled partition only grows its queue, and
// the stall shows in Sent - Intended and Done - Intended of later messages.
// Every message carries the bl-producer, bl-seq and bl-intended headers.
//
// Each partition has one goroutine that batches its queue (BatchSize,
// BatchBytes, Linger) and keeps one produce request in flight, so messages of
// a partition are written in order. Requests go to the leader the Discovery
// names, over kclient. Failed batches are retried (Retries, RetryBackoff,
// DeliveryTimeout): in StyleKafka on the same partition after a route
// refresh, in StyleRocketMQ at once on a partition of another group, with
// fault avoidance steering new messages away from slow or failing groups.
//
// Outcomes: Acked with the offset (acks=0: Acked with Offset -1, since the
// broker never answers); Failed when the broker answered with an error or the
// request was never sent (the message may still exist if an earlier attempt
// timed out); Unknown when the last attempt went unanswered (timeout, broken
// connection) or the run ended first (Attempts 0: it was never sent).
//
// Example:
//
//	cfg := producer.DefaultConfig()
//	cfg.Discovery, cfg.Topic, cfg.Rate = disc, "bench", 5000
//	p, err := producer.New(cfg)
//	errc := make(chan error, 1)
//	go func() { errc <- p.Run(ctx, func(s history.Send) { record(s) }) }()
//	// ... poll p.Stats(); cancel ctx to stop: Run returns (on errc) once
//	// every scheduled message has been given to the sink.
package producer
