// Package nameserver is brokerlab's RocketMQ-style control plane: stateless
// peer name servers that never talk to each other, brokers grouped under a
// fixed master that register with every name server every heartbeat, and
// clients that pull routes from any name server. There is no automatic
// master switch (RocketMQ's classic mode): when a master dies its queues
// stay leaderless, consumers read on from a slave and producers avoid the
// group, until the master comes back.
//
// # Roles
//
//   - Server is a name server (`brokerlab nameserver`, Run). Its route table
//     lives in memory only and is fed by broker registrations. A scan every
//     ScanInterval drops brokers silent for longer than BrokerExpiry and
//     closes their connections; a broker whose registration connection
//     closes is dropped at once. Stats counts registrations, bytes and
//     route queries.
//   - Registrar is a broker's side and implements broker.ControlPlane. It
//     keeps one persistent connection to every name server (reconnecting
//     with backoff), registers over each every HeartbeatInterval with its
//     address, group, broker id, node id, replication mode and the group's
//     full topic configuration (as RocketMQ does, so the payload grows with
//     topics), and every RoutePollInterval pulls all routes and the cluster
//     info from one name server (the same one until it fails) to build the
//     broker's broker.ClusterView. That poll names the table version it
//     holds, and a name server whose table has not changed answers only
//     "unchanged", so idle polls cost ~120 bytes whatever the topic count.
//     A slave also dials its master every MasterProbeInterval (5 s, as
//     RocketMQ's HA client redials its master) and polls at once when the
//     answer disagrees with its view, so it follows a restarted master,
//     and serves its whole log once its master is dropped, within seconds
//     rather than at the next 30 s poll.
//   - RouteClient is a producer's or consumer's route cache, and
//     FaultTolerance its memory of slow and failed groups (below).
//
// # Groups, queues and Kafka partitions
//
// A broker group (Cluster, Group) has a master (BrokerID 0) and slaves
// (BrokerID > 0); each member also has a Kafka node id. A topic has N queues
// on each group hosting it. Kafka partition ids are global and fixed at
// creation: the i-th group chosen gets the i-th contiguous range, recorded in
// every member's topic configuration (GroupTopic, persisted as topics.json
// in RegistrarConfig.DataDir), so numbering never shifts when a group dies.
//
// Creating a topic, through a broker (Kafka CreateTopics, Registrar) or a
// name server (RouteClient.CreateTopic): one name server chooses the groups
// of the cluster that have a master registered with it, sorted by name and
// rotated by a hash of the topic name, and pushes each group's GroupTopic to
// the group's registered members over their registration connections. A
// Kafka request's Partitions is the total: it is spread evenly over the
// groups, the first groups taking one more when it does not divide (8 over 2
// groups: 4 + 4; 5 over 2: 3 + 2; 1 over 2: a single group). With
// CreateTopicRequest.QueuesPerGroup every chosen group gets that many
// instead, RocketMQ-style. ReplicationFactor is recorded but has no effect:
// a queue is replicated on every member of its group. The name server that
// placed the topic routes it at once; brokers that take the push register
// again at once, so every other name server routes it after that
// registration, at the latest after the next heartbeat. A member that missed
// the push (a slave that was down) adopts its group's part from the route.
// Deleting pushes the deletion likewise; a member that is away meanwhile
// brings the topic back when it registers again (RocketMQ behaves the same).
// A member that takes the push records the name as deleted (in topics.json
// too) until the topic is created again.
//
// # Views (broker.ControlPlane)
//
// A broker's view comes from one name server's answer plus what the broker
// knows itself:
//
//   - Brokers: every registered member of the cluster, and the broker
//     itself. ControllerID is the lowest live node id: Kafka clients need a
//     listed broker there (they send CreateTopics to it), and any broker can
//     serve that request since it only asks a name server.
//   - Replicas of a partition: its group's registered members, master
//     first. Leader: the master's node id while the master is in the route,
//     else -1. LeaderEpoch: always 0, as no master ever changes.
//   - ISR: no store is shared by the group, so the master's registrar keeps
//     it: every replica starts in sync, replicas leaving the route leave the
//     ISR, and the broker's AlterISR is accepted locally with a Version
//     compare-and-swap. Other members see the replicas as the ISR.
//   - DeletedTopics: the topics whose deletion push this broker took (see
//     above). Only those make the broker remove data: a topic missing from
//     a name server's answer (one that has just restarted answers from an
//     empty table until the brokers register again) is only not served
//     meanwhile, its data kept.
//   - MinInsync from the topic; AsyncAck when the master's group mode is
//     "async" (ASYNC_MASTER: acks=all answered once the master has the
//     batch) and not for "sync" (SYNC_MASTER); FollowerReads always, so a
//     slave serves its whole log to consumers while its master is gone.
//
// Views are delivered serially and coalesced (only the newest pending view
// is delivered). Views of different brokers may disagree, for as long as it
// takes the name servers to expire a broker and the pollers to notice: a
// broker cut off from one name server only is dropped there after the
// expiry and kept by the others, and clients of each see different routes
// until then. That inconsistency is the design being measured.
//
// # Clients
//
// RouteClient caches the route of every topic asked for, refreshes them all
// every PollInterval and one at once after an error (Refresh), asking one
// name server at a time and moving on when it fails. Producers send only to
// masters (TopicRoute.WriteQueues) and after each send call
// FaultTolerance.Update with its latency and outcome: a failed send isolates
// the group for the table's largest window (600 s production, 10 s fast),
// slow sends for shorter ones (RocketMQ's MQFaultStrategy). Consumers read a
// queue from its master, or from a slave while the master is absent from the
// route (TopicRoute.ReadQueue).
//
// # Timing profiles
//
// Production() (RocketMQ's defaults): heartbeat 30 s, scan 5 s, expiry 120 s,
// route poll 30 s, master probe 5 s. Fast(): 1 s, 0.5 s, 4 s, 1 s, 1 s, and
// the fault table's isolation windows divided by 60 (FastLatencyTable).
//
// # Wire protocol
//
// TCP. Every message is a frame: a 4-byte big-endian length n (1 <= n <=
// MaxFrameBytes, default 16 MiB), then n bytes of a JSON object
//
//	{"type": "register", "id": 7, "body": {...}}
//	{"type": "reply", "id": 7, "body": {...}}
//	{"type": "reply", "id": 7, "error": {"code": "topic-exists", "message": "..."}}
//
// Either side may send requests; ids are chosen by the sender of the request
// and are non-zero; every request gets one "reply" with its id, possibly out
// of order. A frame that is oversized, truncated or not such an object
// closes the connection (logged); a well-formed request the receiver does
// not accept gets an error reply with code "bad-request". Bodies reject
// unknown fields. Error codes: topic-exists, unknown-topic, invalid-topic,
// not-enough-brokers, unavailable, bad-request, closed, internal.
//
// Requests to a name server: "register" (RegisterRequest; reply {}),
// "unregister" {cluster, group, broker_id}, "route" {topics: [...]} (all
// topics when empty; reply {routes: [TopicRoute], missing: [names]}),
// "cluster-info" {} (reply ClusterInfo), "snapshot" {epoch, version} (a
// broker's poll; reply {epoch, version, unchanged} or {epoch, version,
// routes without members, info}; epoch is random per name server process,
// version counts changes of its table), "create-topic"
// (CreateTopicRequest; reply {route}), "delete-topic" {name}. Pushes from a
// name server to a broker, over its registration connection:
// "topic-config" {topic: GroupTopic}, "topic-delete" {name}.
//
// # Example
//
//	ns, _ := nameserver.New(nameserver.Fast().ServerConfig())
//	_ = ns.Start(ctx)
//	rcfg := nameserver.Fast().RegistrarConfig()
//	rcfg.NameServers, rcfg.Group = []string{ns.Addr()}, "a"
//	reg, _ := nameserver.NewRegistrar(rcfg)
//	b, _ := broker.New(bcfg, reg) // the broker calls reg.Register
//	_ = b.Start(ctx)
//
//	ccfg := nameserver.Fast().RouteClientConfig()
//	ccfg.NameServers = []string{ns.Addr()}
//	rc, _ := nameserver.NewRouteClient(ccfg)
//	route, _ := rc.Route(ctx, "orders")
//	queues := route.WriteQueues(faults) // masters of available groups
package nameserver
