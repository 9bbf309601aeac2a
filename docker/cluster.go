package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"golang.org/x/sync/errgroup"
)

// Cluster is one run's nodes on a Launcher: their states, isolations and
// link cuts, and every fault the runtime applies to them. Methods are
// safe for concurrent use; launcher calls are made outside the lock.
type Cluster struct {
	l      Launcher
	rt     string // the runtime's name, for messages
	logger *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*Node
	order  []string      // creation order
	cuts   map[link]bool // active link cuts
	closed bool
}

// link is an unordered pair of node names, stored sorted.
type link [2]string

func newLink(a, b string) link {
	if b < a {
		a, b = b, a
	}
	return link{a, b}
}

// NewCluster is an empty cluster on l; rt names the runtime in messages.
func NewCluster(l Launcher, rt string, logger *slog.Logger) *Cluster {
	return &Cluster{l: l, rt: rt, logger: logger, nodes: map[string]*Node{}, cuts: map[link]bool{}}
}

// Add reserves a node of role serving on ports (the service port first):
// its addresses are fixed, nothing runs yet. Splitting Add and LaunchAll
// lets a cluster's members know each other's addresses before any starts.
func (c *Cluster) Add(name, role string, ports ...int) (*Node, error) {
	n := &Node{Name: name, Role: role, Ports: ports}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: cluster closed", c.rt)
	}
	if _, ok := c.nodes[name]; ok {
		return nil, fmt.Errorf("%s: node %q exists", c.rt, name)
	}
	if err := c.l.Reserve(n); err != nil {
		return nil, err
	}
	c.nodes[name] = n
	c.order = append(c.order, name)
	return n, nil
}

// addMembers adds count nodes of a role ("nameserver 0", ...) serving on
// ports.
func (c *Cluster) addMembers(role string, count int, ports ...int) ([]*Node, error) {
	out := make([]*Node, 0, count)
	for i := range count {
		n, err := c.Add(nodes.MemberName(role, i), role, ports...)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// LaunchAll starts nodes concurrently (an engine takes a second or more
// per container on a loaded machine) and waits until every one serves;
// args gives each one's command line.
func (c *Cluster) LaunchAll(ctx context.Context, ns []*Node, args func(i int, n *Node) []string) error {
	g, gctx := errgroup.WithContext(ctx)
	for i, n := range ns {
		g.Go(func() error {
			t0 := time.Now()
			ip, err := c.l.Start(gctx, n, args(i, n))
			c.logger.Debug("node up", "node", n.Name, "took", time.Since(t0).Round(time.Millisecond), "error", err)
			if err != nil {
				return err
			}
			c.mu.Lock()
			n.ip, n.state = ip, stateUp
			c.mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// node returns the named node.
func (c *Cluster) node(name string) (*Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("%s: no node %q", c.rt, name)
	}
	return n, nil
}

// snapshot returns a copy of the named node's state.
func (c *Cluster) snapshot(name string) (Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return Node{}, false
	}
	return *n, true
}

// reachable reports whether the runner can talk to the named node now:
// running, not paused, not isolated.
func (c *Cluster) reachable(name string) bool {
	n, ok := c.snapshot(name)
	return ok && n.state == stateUp && !n.isolated
}

// names returns the node names in creation order, without the launcher's
// client nodes.
func (c *Cluster) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.order {
		if c.nodes[name].Role != RoleClient {
			out = append(out, name)
		}
	}
	return out
}

// logs returns the last lines of a node's output.
func (c *Cluster) logs(name string, lines int) string {
	n, err := c.node(name)
	if err != nil {
		return ""
	}
	return c.l.Logs(n, lines)
}

// kill sends SIGKILL and waits until the process has stopped. The node is
// killed once the launcher says it stopped, not before: a context that
// ends mid-wait leaves it up (thawed, if it was paused), so that a later
// restart or kill sees the state it is really in.
func (c *Cluster) kill(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st := n.state
	c.mu.Unlock()
	if st == stateKilled {
		return fmt.Errorf("%s: %s is already down", c.rt, name)
	}
	err = c.l.Kill(ctx, n, st == statePaused)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if st == statePaused {
			n.state = stateUp
		}
		return fmt.Errorf("%s: kill %s: %w", c.rt, name, err)
	}
	n.state = stateKilled
	return nil
}

// restart starts a killed node again with its data and waits until it
// serves (unless it is cut off from the runner). A paused node is resumed
// instead. Where the launcher gives a restarted node a new network
// namespace, its isolation and cuts are applied again.
func (c *Cluster) restart(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, isolated := n.state, n.isolated
	c.mu.Unlock()
	switch st {
	case stateUp:
		return fmt.Errorf("%s: %s is already up", c.rt, name)
	case statePaused:
		return c.resume(ctx, name)
	}
	keeps := c.l.KeepsNetwork()
	ip, err := c.l.Restart(ctx, n, !(isolated && keeps))
	if err != nil {
		return fmt.Errorf("%s: restart %s: %w", c.rt, name, err)
	}
	c.mu.Lock()
	n.ip, n.state = ip, stateUp
	c.mu.Unlock()
	if keeps {
		return nil
	}
	return c.reapply(ctx, n)
}

// pause freezes every process of the node: connections stay open, nothing
// answers.
func (c *Cluster) pause(ctx context.Context, name string) error {
	return c.change(name, "is not running", func(n *Node) bool { return n.state == stateUp },
		func(n *Node) error { return c.engineErr("pause", name, c.l.Pause(ctx, n)) },
		func(n *Node) { n.state = statePaused })
}

func (c *Cluster) resume(ctx context.Context, name string) error {
	return c.change(name, "is not paused", func(n *Node) bool { return n.state == statePaused },
		func(n *Node) error { return c.engineErr("resume", name, c.l.Resume(ctx, n)) },
		func(n *Node) { n.state = stateUp })
}

// isolate cuts the node off from everyone: every peer and every client
// (the runner included) loses it at once. A Disconnector takes it off the
// network; otherwise packet filter rules drop everything but loopback.
func (c *Cluster) isolate(ctx context.Context, name string) error {
	d, disconnects := c.l.(Disconnector)
	if !disconnects {
		if err := c.l.NetfilterErr(); err != nil {
			return err
		}
	}
	return c.change(name, "is already isolated", func(n *Node) bool { return !n.isolated },
		func(n *Node) error {
			if disconnects {
				return c.engineErr("disconnect", name, d.Disconnect(ctx, n))
			}
			return c.isolateRules(ctx, n, true)
		},
		func(n *Node) { n.isolated = true })
}

// rejoin undoes isolate.
func (c *Cluster) rejoin(ctx context.Context, name string) error {
	return c.change(name, "is not isolated", func(n *Node) bool { return n.isolated },
		func(n *Node) error {
			if d, ok := c.l.(Disconnector); ok {
				return c.engineErr("reconnect", name, d.Reconnect(ctx, n))
			}
			return c.isolateRules(ctx, n, false)
		},
		func(n *Node) { n.isolated = false })
}

// change applies one launcher action to the named node: when ok (read
// under the lock) holds, do makes the call, and set records its effect
// under the lock; otherwise the node "is not" in a state for it.
func (c *Cluster) change(name, isNot string, ok func(*Node) bool, do func(*Node) error, set func(*Node)) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	can := ok(n)
	c.mu.Unlock()
	if !can {
		return fmt.Errorf("%s: %s %s", c.rt, name, isNot)
	}
	if err := do(n); err != nil {
		return err
	}
	c.mu.Lock()
	set(n)
	c.mu.Unlock()
	return nil
}

// engineErr wraps a failed launcher call on a node.
func (c *Cluster) engineErr(verb, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s %s: %w", c.rt, verb, name, err)
}

// cut drops all traffic between two nodes, both ways, with packet filter
// rules in each end's network namespace.
func (c *Cluster) cut(ctx context.Context, a, b string) error {
	na, nb, err := c.linkEnds(a, b)
	if err != nil {
		return err
	}
	l := newLink(a, b)
	c.mu.Lock()
	if c.cuts[l] {
		c.mu.Unlock()
		return fmt.Errorf("%s: %s - %s is already cut", c.rt, a, b)
	}
	c.cuts[l] = true
	c.mu.Unlock()
	return c.cutRules(ctx, na, nb, true)
}

// heal removes a cut between two nodes; an uncut link is left alone.
func (c *Cluster) heal(ctx context.Context, a, b string) error {
	na, nb, err := c.linkEnds(a, b)
	if err != nil {
		return err
	}
	l := newLink(a, b)
	c.mu.Lock()
	wasCut := c.cuts[l]
	delete(c.cuts, l)
	c.mu.Unlock()
	if !wasCut {
		return nil
	}
	return c.cutRules(ctx, na, nb, false)
}

// linkEnds returns a link's two nodes, when links can be cut here.
func (c *Cluster) linkEnds(a, b string) (*Node, *Node, error) {
	if err := c.l.NetfilterErr(); err != nil {
		return nil, nil, err
	}
	na, err := c.node(a)
	if err != nil {
		return nil, nil, err
	}
	nb, err := c.node(b)
	return na, nb, err
}

// isolatePeers cuts the node off from every other node of the run
// (brokers, etcd members, name servers, controllers, gossip peers) and
// from none of the clients: the runner reaches nodes from outside the
// run's network, and a launcher's client nodes are not dropped.
func (c *Cluster) isolatePeers(ctx context.Context, name string) error {
	if err := c.l.NetfilterErr(); err != nil {
		return fmt.Errorf("isolate with clients: keep: %w", err)
	}
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if len(n.peersCut) > 0 {
		c.mu.Unlock()
		return fmt.Errorf("%s: %s is already isolated from its peers", c.rt, name)
	}
	for _, other := range c.order {
		if other != name && c.nodes[other].Role != RoleClient {
			n.peersCut = append(n.peersCut, other)
		}
	}
	c.mu.Unlock()
	if err := c.peerRules(ctx, n, true); err != nil {
		c.rejoinPeers(ctx, name) // remove what half applied
		return err
	}
	return nil
}

// rejoinPeers removes isolatePeers' rules; a node without them is left
// alone.
func (c *Cluster) rejoinPeers(ctx context.Context, name string) {
	n, err := c.node(name)
	if err != nil || c.l.NetfilterErr() != nil {
		return
	}
	_ = c.peerRules(ctx, n, false)
	c.mu.Lock()
	n.peersCut = nil
	c.mu.Unlock()
}

// rejoinAny undoes whatever isolation the node is under.
func (c *Cluster) rejoinAny(ctx context.Context, name string) error {
	n, ok := c.snapshot(name)
	if !ok {
		return fmt.Errorf("%s: no node %q", c.rt, name)
	}
	if len(n.peersCut) > 0 {
		c.rejoinPeers(ctx, name)
	}
	if n.isolated {
		return c.rejoin(ctx, name)
	}
	return nil
}

// healAll removes every cut and undoes every isolation.
func (c *Cluster) healAll(ctx context.Context) error {
	c.mu.Lock()
	var cuts []link
	for l := range c.cuts {
		cuts = append(cuts, l)
	}
	names := slices.Clone(c.order)
	c.mu.Unlock()
	var errs []error
	for _, l := range cuts {
		errs = append(errs, c.heal(ctx, l[0], l[1]))
	}
	for _, name := range names {
		errs = append(errs, c.rejoinAny(ctx, name))
	}
	return errors.Join(errs...)
}

// reapply puts a restarted node's packet filter rules back: its isolation,
// its isolation from peers, and the cuts of its links (on both ends: its
// address is new too).
func (c *Cluster) reapply(ctx context.Context, n *Node) error {
	c.mu.Lock()
	isolated, peers := n.isolated, len(n.peersCut) > 0
	var others []*Node
	for l := range c.cuts {
		switch n.Name {
		case l[0]:
			others = append(others, c.nodes[l[1]])
		case l[1]:
			others = append(others, c.nodes[l[0]])
		}
	}
	c.mu.Unlock()
	var errs []error
	if isolated {
		if _, ok := c.l.(Disconnector); !ok {
			errs = append(errs, c.isolateRules(ctx, n, true))
		}
	}
	if peers {
		errs = append(errs, c.peerRules(ctx, n, true))
	}
	for _, o := range others {
		errs = append(errs, c.cutRules(ctx, n, o, true))
	}
	return errors.Join(errs...)
}

// close removes everything the run created.
func (c *Cluster) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	return c.l.Close()
}
