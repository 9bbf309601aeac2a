// Package gossip is brokerlab's decentralised control plane: every broker
// is a peer, membership and cluster state spread by gossip, and no node
// coordinates. Two topologies use it:
//
//   - gossip (Redis Cluster): 16384 hash slots, slot = CRC16(key) mod 16384
//     with key "topic/partition"; slot ranges are owned by masters with a
//     config epoch per claim; a partition's leader is its slot's master and
//     its followers are the replicas placed after that master. A replica of
//     a master a majority of masters reports failed asks the masters for
//     votes (after 500 ms + random 0-500 ms + rank x 1 s, rank by the
//     replication offset it gossips), a master votes once per epoch, and
//     the winner takes the slots in the new epoch, which is the partitions'
//     leader epoch.
//   - gossip-ring (Cassandra): a consistent-hash ring with virtual nodes;
//     a partition's replicas are the next RF distinct nodes clockwise and
//     the first live in-sync one leads, taking over by a majority of the
//     ring's votes.
//
// Membership and failure detection are hashicorp/memberlist (SWIM with
// Lifeguard, MPL-2.0). Nodes start with seeds (Akka's rule: the first seed
// forms the cluster alone when no other seed answers; everybody else joins
// through any seed that answers). Cluster state spreads as updates to
// GossipNodes peers per round (optionally remembering who was told,
// Config.TellOnce) and by memberlist's push-pull of the whole state;
// conflicts resolve to the higher epoch. ISR changes are acknowledged by a
// majority of the voters before they count, so a leader cut off with a
// minority cannot shrink its ISR and stops acknowledging acks=all writes.
//
// Each node keeps its cluster state (members, slot claims or ring records,
// topics, the votes it gave) in Config.StateFile, the broker command's
// <data>/gossip-state (Redis Cluster's nodes.conf): written whole and
// fsynced on every change (coalesced; a granted vote or ISR change is on
// disk before its answer), read back by Register, so a cluster that lost
// every node at once comes back knowing its topics and owners. The file
// is a 16-byte header (magic "BLGSTAT1", body length, CRC-32C) and a JSON
// body; a damaged file, or one of another node, is ErrBadState at
// Register. A restarted node hands views to its broker only after the
// join merged the others' newer state.
//
// Example:
//
//	cfg := gossip.Fast()
//	cfg.Bind = "127.0.0.1:7946"
//	cfg.Seeds = []string{"127.0.0.1:7946", "127.0.0.1:7947", "127.0.0.1:7948"}
//	cp, err := gossip.New(cfg)
//	if err != nil { ... }
//	b, err := broker.New(brokerCfg, cp) // the broker registers in Start
package gossip
