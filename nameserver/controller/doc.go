// Package controller is RocketMQ 5's controller mode for brokerlab (topology
// nameserver-controller): a Raft-replicated state machine that, per broker
// group, records the master's broker id, the master epoch, the
// SyncStateSet (RocketMQ's ISR) and its epoch, and elects a new master from
// the SyncStateSet when the master goes. It imports nothing of the
// nameserver package; the nameserver registrar uses its Client.
//
// # Controllers
//
// A Controller is one member of the quorum (Config.Peers, Config.ID): an
// etcd Raft node (go.etcd.io/raft/v3) over a raft.MemoryStorage, with its
// own transport on the same TCP listener brokers use. With Config.DataDir
// the log and hard state are also written to etcd's WAL there and loaded
// at start, so a controller process started again rejoins with its state
// (storage.go); without it the log lives in memory only. A lone controller is
// allowed; three survive one loss. Only the leader serves brokers; the
// others answer "not leader" with the leader's address. Deployments:
// standalone (`brokerlab controller --id N --peers a,b,c`) or in a name
// server process (`brokerlab nameserver --controller --controller-id N
// --controller-peers a,b,c`).
//
// Replicated commands: register (a broker joins its group; the first one
// becomes master at epoch 1 with SyncStateSet {itself}), elect (a new
// master, or none, at an expected master epoch: the master epoch grows by
// one and the SyncStateSet becomes {new master}) and alter (a master's
// AlterSyncStateSet: it must name the current master, master epoch and
// SyncStateSet epoch, a compare-and-swap; brokers it adds must be alive).
//
// Heartbeats are not replicated (as in RocketMQ): the leader keeps each
// broker's last heartbeat and connection. A broker is inactive after
// HeartbeatTimeout without one, or at once when its connection closes. A
// scan every ScanInterval, or at once after a connection closed, elects a
// new master for every group whose master is inactive: the lowest broker id
// of the SyncStateSet that is alive; with UncleanElection (off by default)
// any live member when none in the set is. With no candidate the group has
// no master until a member of the set returns. A new leader gives every
// known broker a fresh HeartbeatTimeout. Every state change is pushed to
// the group's brokers connected to the leader.
//
// # Brokers
//
// Client heartbeats every HeartbeatInterval to the leader (found by asking
// any controller), learns the group state from each answer and from
// pushes, and sends AlterSyncStateSet. Broker ids start at 1.
//
// # Wire format
//
// TCP. A frame is a 4-byte big-endian length n (2 <= n <= MaxFrameBytes),
// a kind byte, then n-1 bytes: kind 1 a protobuf raftpb.Message (controller
// to controller), kind 2 a request, 3 a reply, 4 a push, each a JSON
// object {"type", "id", "body", "error": {"code", "message", "leader"}}.
// Requests carry a non-zero id and a type; a reply carries the request's
// id. Types: "heartbeat" {cluster, group, broker_id, node_id, addr} ->
// GroupState; "alter-sync-set" {cluster, group, master_id, master_epoch,
// sync_state_set_epoch, sync_state_set} -> GroupState; "get-state"
// {cluster, group} -> GroupState; "get-leader" {} -> {leader_id,
// leader_addr}; push "group-state" GroupState. Error codes: bad-request,
// not-leader, unavailable, fenced, stale-sync-state-set, closed,
// internal. A malformed frame closes the connection. LeaderOf and GroupOf
// make one such request on a connection of their own (runners use them).
//
// # Example
//
//	cfg := controller.Fast().Config()
//	cfg.ID, cfg.Peers = 1, []string{"127.0.0.1:9878"}
//	c, _ := controller.New(cfg)
//	_ = c.Start(ctx)
//
//	ccfg := controller.Fast().ClientConfig()
//	ccfg.Controllers, ccfg.Cluster, ccfg.Group, ccfg.BrokerID = cfg.Peers, "c1", "a", 1
//	cl, _ := controller.NewClient(ccfg)
//	_ = cl.Start(nodeID, kafkaAddr, func(st controller.GroupState) { ... })
package controller
