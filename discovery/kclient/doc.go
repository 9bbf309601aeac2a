// Package kclient is a small Kafka-protocol client that sends each request to
// exactly the broker address its caller names. It is built on kafka-go's
// protocol codec (github.com/segmentio/kafka-go/protocol) but not on kafka-go's
// Transport: the Transport keeps its own metadata cache and re-routes Produce
// and Fetch to the leader it believes in, whatever address the request
// carries, and can never fetch from a follower. brokerlab's clients must
// route by their own discovery (Kafka bootstrap metadata or RocketMQ-style
// name servers) so that route convergence is theirs to measure.
//
// A Client keeps one connection per broker address, negotiates API versions
// with ApiVersions when it connects, and pipelines requests on it: responses
// come back in request order, as Kafka guarantees per connection. A request
// whose context ends before its response arrives breaks the connection (every
// other request pending on it fails too), as a Kafka client does when
// request.timeout.ms passes; the next request dials again.
//
// Errors say whether the request reached the broker: errors wrapping
// ErrNotSent were never (completely) written, so the broker cannot have acted
// on them; a broker error code is returned as a kafka.Error, so
// errors.Is(err, kafka.NotLeaderForPartition) works.
//
// Example:
//
//	c := kclient.New(kclient.Config{ClientID: "p-1", Dial: dial})
//	defer c.Close()
//	md, err := c.Metadata(ctx, "127.0.0.1:9092", []string{"bench"})
//	off, err := c.Produce(ctx, leaderAddr, kclient.ProduceRequest{
//		Topic: "bench", Partition: 0, Acks: -1, Timeout: 30 * time.Second,
//		Records: []kclient.Record{{Value: []byte("hello")}},
//	})
package kclient
