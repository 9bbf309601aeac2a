package docker

import (
	"context"
	"fmt"
)

// Isolation from peers (isolate with clients: keep): packet filter rules
// in the node's sandbox drop everything from and to the other nodes of the
// run, by address. The runner and its clients reach the containers from
// the engine's host, through the bridge's gateway address, which no rule
// names: they keep their links. The sandbox's namespace outlives restarts
// of the node, so the rules do too.

// IsolatePeers cuts node off from every other node of the run (brokers,
// etcd members, name servers, controllers, gossip peers) and from none of
// the clients (nodes.PeerIsolator).
func (b *base) IsolatePeers(_ context.Context, node string) error { return b.isolatePeers(node) }

func (c *cluster) isolatePeers(name string) error {
	if c.cutter == nil {
		return fmt.Errorf("isolate with clients: keep: %w", errNoCuts)
	}
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if len(n.peersCut) > 0 {
		c.mu.Unlock()
		return fmt.Errorf("docker: %s is already isolated from its peers", name)
	}
	var peers []string
	for _, other := range c.order {
		if other != name {
			peers = append(peers, c.nodes[other].ip)
		}
	}
	n.peersCut = peers
	c.mu.Unlock()
	if err := c.cutter.dropAll(c.sandboxPID(n), peers); err != nil {
		c.rejoinPeers(name) // remove what half applied
		return err
	}
	return nil
}

// rejoinPeers removes isolatePeers' rules; a node without them is left
// alone.
func (c *cluster) rejoinPeers(name string) {
	if c.cutter == nil {
		return
	}
	n, err := c.node(name)
	if err != nil {
		return
	}
	c.mu.Lock()
	peers := n.peersCut
	n.peersCut = nil
	c.mu.Unlock()
	c.cutter.undropAll(c.sandboxPID(n), peers)
}

// rejoinAllPeers undoes every isolation from peers.
func (c *cluster) rejoinAllPeers() {
	c.mu.Lock()
	var names []string
	for _, name := range c.order {
		if len(c.nodes[name].peersCut) > 0 {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	for _, name := range names {
		c.rejoinPeers(name)
	}
}
