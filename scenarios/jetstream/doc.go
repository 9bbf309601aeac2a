// Package jetstream is the NATS JetStream reference topology ("jetstream",
// runtime "inprocess"): the scenario's workload, faults and checker run
// against an embedded nats-server cluster, so that brokerlab's figures sit
// next to those of a system users know, measured on the same machine in the
// same run.
//
// # Cluster
//
// Start runs cluster.brokers nats-servers in this process ("broker-0" ...
// "broker-N-1", the names faults use), with JetStream on file storage under
// Env.DataDir, clustered by routes on loopback ports. Every connection goes
// through a faultnet.Network, as brokerlab's own nodes do: clients dial with
// its dialer, and because nats-server dials routes itself, each server's
// route to each other server is a small proxy that dials through faultnet in
// the first server's name. Servers advertise a dead cluster address, so no
// route bypasses the proxies. nats-server logs go to Env.Logger: errors at
// warn, the rest at debug.
//
// # Topic mapping
//
// Partition p of topic T is the stream StreamName(T, p) = "T-p" bound to the
// subject Subject(T, p) = "T.p", with the topic's replication as replicas
// (at most 5), file storage and limits retention. Partitions thus have their
// own raft groups and leaders, as in Kafka, and "leader-of T/p" is the
// leader of stream T-p. JetStream makes a random member leader, which can
// put every partition's leader on one server; CreateTopic then moves the
// leaders, with JetStream's leader step-down naming a preferred server, so
// that they are spread as Kafka spreads preferred leaders (partition p on
// server p mod N when every server holds every stream). A message's offset is its stream sequence (from 1),
// monotonic per partition as Kafka offsets are. min_insync, fanout,
// unclean_election and replication_mode have no JetStream counterpart: a
// stream acknowledges once a majority of its replicas stored a message.
//
// # Producer
//
// nats.go's asynchronous JetStream publish (PublishMsgAsync) with
// acknowledgement callbacks, on the scenario's open-loop schedule: message i
// is intended at Start + i/Rate and published then whatever happened to
// earlier ones, at most 10000 without an outcome (brokerlab's producer
// window); with Rate 0, a new message whenever fewer are outstanding.
// Latency counts from the intended time. Partitions are chosen round-robin
// from the producer id, or with Workload.Keys by FNV-1a of "seq mod Keys".
// Every message carries the bl-producer, bl-seq and bl-intended headers and
// Nats-Msg-Id "producer-seq", so JetStream drops a retried copy of a stored
// message and acknowledges it with the first copy's sequence (JetStream's
// idempotent publish). A failed attempt is sent again after 250 ms (nats.go's
// retry wait) up to Workload.Retries times; an attempt without an ack after
// 5 s (nats.go's request timeout) has failed. Retries keep a partition's
// order by default, as a Kafka idempotent producer does: a failure blocks
// the partition, its later messages wait unsent, and once every attempt in
// flight on it is answered the failed messages are sent again one at a
// time in sequence order, then the waiting ones in order. (Messages already
// in flight behind a failed one may still be stored first; after a leader
// loss they fail too.) Workload.UnorderedRetries keeps nats.go's way: each
// failed message retried on its own timer while later messages go ahead,
// which reorders the partition. The producer says which ran
// (scenarios.RetryReporter). Workload.Timeout bounds a message
// from its intended time; past it the message is Unknown. An attempt that
// got no answer (timeout, lost connection) ends Unknown, one the cluster
// refused (no stream leader, an API error) ends Failed.
//
// Acks: JetStream has one acknowledgement, after a majority of the stream's
// replicas stored the message. acks=all and acks=1 both use it, so acks=1
// figures are of a stronger guarantee than Kafka's. acks=0 is a core NATS
// publish without reply: Acked with offset -1 once handed to the connection.
// Batch size and linger do not apply (nats.go writes messages to its
// connection buffer as they come and flushes in the background).
//
// # Consumer
//
// One nats.go ordered consumer per partition stream (an ephemeral pull
// consumer that recreates itself after the last message it delivered when
// its server is lost; nats.go notices through missed heartbeats, after up to
// 10 s with its defaults), from the first message. CaughtUp compares the last
// sequence delivered on each partition with the stream's last sequence,
// asked from its leader.
//
// # Faults
//
// kill, restart, pause, resume, cut, heal, isolate and delay on servers:
// "broker N", "leader-of T/P", "follower-of T/P", "killed" and links between
// them. kill cuts the server off, shuts it down and resets its connections,
// so that nothing of a graceful shutdown (raft leadership hand-off, the
// shutdown event) reaches the others; unlike SIGKILL, the server's own write
// buffers are still flushed to its store. restart starts it on the same
// ports and store. pause stalls every link of the server through faultnet;
// its timers keep running, as for brokerlab's brokers under the same fault.
// Delay jitter, controller, name server and etcd targets return
// scenarios.ErrNotApplicable. JetStream's raft timings are fixed (elections
// after 4-9 s without a leader), so the fast timing profile changes nothing.
//
// # Figures
//
// Detected is the first election, after the fault, of a new leader for a
// raft group (meta or stream) the server led, at the time the new leader
// took over (its LeaderSince). JetStream does not mark a failed follower dead
// (its groups carry on with a quorum), so a server that led nothing has no
// detection time. Converged is when clients worked again around the server:
// for every stream it led, the new leader's election and then the first ack
// (producers) and delivery (consumers) of every client that used the
// partition before the fault; and the reconnection of every client that was
// connected to it. ControlPlane reports CPKindRaft, the traffic of the
// system-account routes, which carry the meta group but also every stream's
// replication; see ControlPlane.
package jetstream
