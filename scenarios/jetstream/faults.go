package jetstream

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
)

// Apply executes one fault step on the servers. Every action is supported on
// servers ("broker N", "leader-of T/P", "follower-of T/P", "killed"):
//   - kill: the server is cut off, shut down and its connections reset (see
//     cluster.kill); restart starts it again on the same ports and store.
//   - pause/resume: faultnet stalls every link of the server (routes and
//     clients), as if its process were stopped. Unlike SIGSTOP its timers
//     keep running, as they do for brokerlab's brokers under the same fault.
//   - cut/heal/isolate/delay: faultnet on the route links and client links.
//     Delay jitter is not supported.
//
// Controller, name server and etcd targets do not exist in JetStream.
func (d *deployment) Apply(ctx context.Context, step scenarios.Step, node string) (string, error) {
	if node != "" {
		t, err := scenarios.ParseTarget(node)
		if err != nil {
			return "", fmt.Errorf("jetstream: resolved node %q: %w", node, err)
		}
		step.Target = t
	}
	switch step.Action {
	case scenarios.ActionKill, scenarios.ActionRestart, scenarios.ActionPause, scenarios.ActionResume, scenarios.ActionIsolate:
		i, err := d.resolve(ctx, step.Target)
		if err != nil {
			return "", err
		}
		return nodeTarget(i), d.applyNode(ctx, step.Action, i)
	case scenarios.ActionCut, scenarios.ActionDelay:
		a, b, err := d.resolveLink(ctx, step.Target)
		if err != nil {
			return "", err
		}
		resolved := nodeTarget(a) + " - " + nodeTarget(b)
		if step.Action == scenarios.ActionCut {
			d.c.nw.Cut(nodeName(a), nodeName(b))
			return resolved, nil
		}
		if step.Jitter > 0 {
			return resolved, fmt.Errorf("%w: jetstream: delay jitter is not supported (faultnet delays are fixed)", scenarios.ErrNotApplicable)
		}
		d.c.nw.Delay(nodeName(a), nodeName(b), step.Latency)
		d.mu.Lock()
		d.delays[[2]int{a, b}] = true
		d.mu.Unlock()
		return resolved, nil
	case scenarios.ActionHeal:
		return d.heal(ctx, step.Target)
	}
	return "", fmt.Errorf("%w: jetstream: action %q", scenarios.ErrNotApplicable, step.Action)
}

// nodeTarget is the resolved form of server i: "broker i".
func nodeTarget(i int) string { return string(scenarios.TargetBroker) + " " + strconv.Itoa(i) }

// applyNode runs a node action on server i.
func (d *deployment) applyNode(ctx context.Context, a scenarios.Action, i int) error {
	n := d.c.nodes[i]
	switch a {
	case scenarios.ActionKill:
		d.sampleRoutes() // count its route traffic up to now
		if err := d.c.kill(n); err != nil {
			return err
		}
		// A restarted process is not paused; isolation is the network's
		// and stays.
		n.mu.Lock()
		paused := n.paused
		n.paused = false
		n.mu.Unlock()
		if paused {
			d.c.nw.Resume(n.name)
		}
		d.setLastHit(i)
	case scenarios.ActionRestart:
		if n.server() != nil {
			return fmt.Errorf("jetstream: %s is running", n.name)
		}
		if err := d.c.start(n); err != nil {
			return err
		}
	case scenarios.ActionPause:
		n.mu.Lock()
		n.paused = true
		n.mu.Unlock()
		d.c.nw.Pause(n.name)
		d.setLastHit(i)
	case scenarios.ActionResume:
		n.mu.Lock()
		n.paused = false
		n.mu.Unlock()
		d.c.nw.Resume(n.name)
	case scenarios.ActionIsolate:
		n.mu.Lock()
		n.isolated = true
		n.mu.Unlock()
		d.c.nw.Isolate(n.name)
	}
	return nil
}

func (d *deployment) setLastHit(i int) {
	d.mu.Lock()
	d.lastHit = i
	d.mu.Unlock()
}

// heal undoes cuts, isolations and delays: of one link, of every link of one
// node, or all of them ("all").
func (d *deployment) heal(ctx context.Context, t scenarios.Target) (string, error) {
	switch t.Kind {
	case scenarios.TargetAll:
		d.c.nw.HealAll() // also resumes paused nodes: pause them again
		for _, n := range d.c.nodes {
			n.mu.Lock()
			n.isolated = false
			paused := n.paused
			n.mu.Unlock()
			if paused {
				d.c.nw.Pause(n.name)
			}
		}
		d.mu.Lock()
		clear(d.delays)
		d.mu.Unlock()
		return string(scenarios.TargetAll), nil
	case scenarios.TargetLink:
		a, b, err := d.resolveLink(ctx, t)
		if err != nil {
			return "", err
		}
		d.healLink(a, b)
		return nodeTarget(a) + " - " + nodeTarget(b), nil
	}
	i, err := d.resolve(ctx, t)
	if err != nil {
		return "", err
	}
	n := d.c.nodes[i]
	n.mu.Lock()
	n.isolated = false
	n.mu.Unlock()
	d.c.nw.Rejoin(n.name)
	for j := range d.c.nodes {
		if j != i {
			d.healLink(i, j)
		}
	}
	return nodeTarget(i), nil
}

// healLink removes a cut and a delay between servers a and b.
func (d *deployment) healLink(a, b int) {
	d.c.nw.Heal(nodeName(a), nodeName(b))
	d.mu.Lock()
	delayed := d.delays[[2]int{a, b}] || d.delays[[2]int{b, a}]
	delete(d.delays, [2]int{a, b})
	delete(d.delays, [2]int{b, a})
	d.mu.Unlock()
	if delayed {
		d.c.nw.Delay(nodeName(a), nodeName(b), 0)
	}
}

// resolve turns a node target into a server index.
func (d *deployment) resolve(ctx context.Context, t scenarios.Target) (int, error) {
	switch t.Kind {
	case scenarios.TargetBroker:
		if t.Index < 0 || t.Index >= len(d.c.nodes) {
			return -1, fmt.Errorf("jetstream: broker %d: the cluster has servers 0..%d", t.Index, len(d.c.nodes)-1)
		}
		return t.Index, nil
	case scenarios.TargetKilled:
		d.mu.Lock()
		i := d.lastHit
		d.mu.Unlock()
		if i < 0 {
			return -1, fmt.Errorf("jetstream: %q: no server was killed or paused", t)
		}
		return i, nil
	case scenarios.TargetLeaderOf, scenarios.TargetFollowerOf:
		stream, err := d.streamOf(t)
		if err != nil {
			return -1, err
		}
		leader := d.w.history.current(stream)
		if srv := d.c.nodes[max(leader, 0)].server(); leader < 0 || srv == nil {
			return -1, fmt.Errorf("%w: %s", ErrNoLeader, stream)
		}
		if t.Kind == scenarios.TargetLeaderOf {
			return leader, nil
		}
		return d.follower(ctx, stream, leader)
	}
	return -1, fmt.Errorf("%w: jetstream has no %s", scenarios.ErrNotApplicable, t.Kind)
}

// streamOf returns the stream of a leader-of or follower-of target.
func (d *deployment) streamOf(t scenarios.Target) (string, error) {
	parts, err := d.topicInfo(t.Topic)
	if err != nil {
		return "", err
	}
	if t.Partition < 0 || int(t.Partition) >= parts {
		return "", fmt.Errorf("jetstream: %q: partition out of range [0, %d)", t, parts)
	}
	return StreamName(t.Topic, t.Partition), nil
}

// follower returns the lowest-numbered running replica of stream other than
// its leader.
func (d *deployment) follower(ctx context.Context, stream string, leader int) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := d.adminJS.Stream(cctx, stream)
	if err != nil {
		return -1, fmt.Errorf("jetstream: stream %s: %w", stream, err)
	}
	var idx []int
	if ci := s.CachedInfo().Cluster; ci != nil {
		for _, r := range ci.Replicas {
			if i := d.c.nodeIndex(r.Name); i >= 0 && i != leader && d.c.nodes[i].server() != nil {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		return -1, fmt.Errorf("jetstream: stream %s has no running follower", stream)
	}
	return slices.Min(idx), nil
}

// resolveLink resolves both ends of a link target to servers.
func (d *deployment) resolveLink(ctx context.Context, t scenarios.Target) (int, int, error) {
	if t.Kind != scenarios.TargetLink || len(t.Link) != 2 {
		return -1, -1, fmt.Errorf("jetstream: %q is not a link", t)
	}
	a, err := d.resolve(ctx, t.Link[0])
	if err != nil {
		return -1, -1, err
	}
	b, err := d.resolve(ctx, t.Link[1])
	if err != nil {
		return -1, -1, err
	}
	if a == b {
		return -1, -1, fmt.Errorf("jetstream: %q: both ends are broker %d", t, a)
	}
	return a, b, nil
}

// parseNode reads "broker N" back; -1 for anything else.
func (d *deployment) parseNode(node string) int {
	t, err := scenarios.ParseTarget(node)
	if err != nil || t.Kind != scenarios.TargetBroker || t.Index < 0 || t.Index >= len(d.c.nodes) {
		return -1
	}
	return t.Index
}

// Detected returns when the cluster first acted on the loss of node: the
// earliest election, after since, of a new leader for a raft group (the meta
// group or a stream) that node led at since. A server that led nothing is
// never marked dead by JetStream (raft groups go on with a quorum and
// nothing is elected), so it gives zero.
func (d *deployment) Detected(node string, since time.Time) time.Time {
	i := d.parseNode(node)
	if i < 0 {
		return time.Time{}
	}
	var first time.Time
	for _, g := range d.w.history.ledAt(i, since) {
		if e, ok := d.w.history.electedAfter(g, i, since); ok && (first.IsZero() || e.at.Before(first)) {
			first = e.at
		}
	}
	return first
}

// Converged returns when every client was working again around node: for
// each stream node led at since, once its new leader was elected, every
// producer that had written the partition before since got an ack on it, and
// every consumer that had read it got a delivery; and every client connection
// that was on node reconnected to another server. Zero when one of these has
// not happened, or when nothing depended on node.
func (d *deployment) Converged(node string, since time.Time) time.Time {
	i := d.parseNode(node)
	if i < 0 {
		return time.Time{}
	}
	d.mu.Lock()
	clients := slices.Clone(d.clients)
	topic := d.topic
	d.mu.Unlock()

	var last time.Time
	later := func(t time.Time) {
		if t.After(last) {
			last = t
		}
	}
	for _, tr := range clients {
		if tr.serverAt(since) != i {
			continue
		}
		t := tr.reconnectedAfter(i, since)
		if t.IsZero() {
			return time.Time{}
		}
		later(t)
	}
	for _, g := range d.w.history.ledAt(i, since) {
		if g == metaGroup {
			continue // clients never talk to the meta leader
		}
		e, ok := d.w.history.electedAfter(g, i, since)
		if !ok {
			return time.Time{}
		}
		later(e.at)
		p, ok := partitionOf(topic, g)
		if !ok {
			continue
		}
		for _, tr := range clients {
			a := tr.part(p)
			if !a.before(since) {
				continue
			}
			t := a.firstAtOrAfter(e.at)
			if t.IsZero() {
				return time.Time{}
			}
			later(t)
		}
	}
	return last
}

// partitionOf reads the partition back from a stream name of topic.
func partitionOf(topic, stream string) (int32, bool) {
	prefix := StreamName(topic, 0)
	prefix = prefix[:len(prefix)-1]
	if len(stream) <= len(prefix) || stream[:len(prefix)] != prefix {
		return 0, false
	}
	p, err := strconv.Atoi(stream[len(prefix):])
	if err != nil || p < 0 {
		return 0, false
	}
	return int32(p), true
}
