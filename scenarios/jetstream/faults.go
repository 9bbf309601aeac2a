package jetstream

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The deployment is the jetstream runtime of the fault dispatcher
// (nodes.Runtime), which resolves targets and applies steps; Apply is
// Deployment.Apply through it. Every action is supported on servers
// ("broker N", "leader-of T/P", "follower-of T/P", "killed"):
//   - kill: the server is cut off, shut down and its connections reset (see
//     cluster.kill); restart starts it again on the same ports and store.
//   - pause/resume: faultnet stalls every link of the server (routes and
//     clients), as if its process were stopped. Unlike SIGSTOP its timers
//     keep running, as they do for brokerlab's brokers under the same fault.
//   - cut/heal/isolate/delay: faultnet on the route links and client links.
//     Delay jitter is not supported. Healing a server also heals its links.
//
// Role targets (controller, name server, etcd) do not exist in JetStream:
// its descriptor declares no roles.
func (d *deployment) Apply(ctx context.Context, step scenario.Step, node string) (string, error) {
	return d.faults.Apply(ctx, step, node)
}

// Nodes are the servers, "broker 0" to "broker N-1".
func (d *deployment) Nodes() []string {
	out := make([]string, len(d.c.nodes))
	for i := range d.c.nodes {
		out[i] = nodeTarget(i)
	}
	return out
}

// Replicas: the stream's current leader, and its other running replicas
// by server number.
func (d *deployment) Replicas(ctx context.Context, topic string, p int32) (nodes.Replicas, error) {
	stream, err := d.streamOf(scenario.Target{Kind: scenario.TargetLeaderOf, Topic: topic, Partition: p})
	if err != nil {
		return nodes.Replicas{}, err
	}
	leader := d.w.history.current(stream)
	if srv := d.c.nodes[max(leader, 0)].server(); leader < 0 || srv == nil {
		return nodes.Replicas{}, fmt.Errorf("%w: %s", ErrNoLeader, stream)
	}
	r := nodes.Replicas{Leader: nodeTarget(leader)}
	followers, err := d.followers(ctx, stream, leader)
	if err != nil {
		return r, err
	}
	for _, i := range followers {
		r.Followers = append(r.Followers, nodeTarget(i))
	}
	return r, nil
}

// Active: JetStream has no role in charge that a scenario can target.
func (d *deployment) Active(_ context.Context, role string) (string, error) {
	return "", nodes.NotApplicable("jetstream has no %s", role)
}

// server returns the index of the server named node.
func (d *deployment) server(node string) (int, error) {
	if i := d.parseNode(node); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("jetstream: no server %q", node)
}

func (d *deployment) Kill(_ context.Context, node string) error {
	i, err := d.server(node)
	if err != nil {
		return err
	}
	n := d.c.nodes[i]
	d.sampleRoutes() // count its route traffic up to now
	if err := d.c.kill(n); err != nil {
		return err
	}
	// A restarted process is not paused; isolation is the network's and
	// stays.
	n.mu.Lock()
	paused := n.paused
	n.paused = false
	n.mu.Unlock()
	if paused {
		d.c.nw.Resume(n.name)
	}
	return nil
}

func (d *deployment) Restart(_ context.Context, node string) error {
	i, err := d.server(node)
	if err != nil {
		return err
	}
	n := d.c.nodes[i]
	if n.server() != nil {
		return fmt.Errorf("jetstream: %s is running", n.name)
	}
	return d.c.start(n)
}

func (d *deployment) Pause(_ context.Context, node string) error {
	return d.setPaused(node, true)
}

func (d *deployment) Resume(_ context.Context, node string) error {
	return d.setPaused(node, false)
}

func (d *deployment) setPaused(node string, paused bool) error {
	i, err := d.server(node)
	if err != nil {
		return err
	}
	n := d.c.nodes[i]
	n.mu.Lock()
	n.paused = paused
	n.mu.Unlock()
	if paused {
		d.c.nw.Pause(n.name)
	} else {
		d.c.nw.Resume(n.name)
	}
	return nil
}

func (d *deployment) Isolate(_ context.Context, node string) error {
	i, err := d.server(node)
	if err != nil {
		return err
	}
	n := d.c.nodes[i]
	n.mu.Lock()
	n.isolated = true
	n.mu.Unlock()
	d.c.nw.Isolate(n.name)
	return nil
}

// Rejoin undoes an isolation of the server and heals its cut and delayed
// links.
func (d *deployment) Rejoin(_ context.Context, node string) error {
	i, err := d.server(node)
	if err != nil {
		return err
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
	return nil
}

// link returns the servers at both ends of a link.
func (d *deployment) link(a, b string) (int, int, error) {
	i, err := d.server(a)
	if err != nil {
		return -1, -1, err
	}
	j, err := d.server(b)
	if err != nil {
		return -1, -1, err
	}
	return i, j, nil
}

func (d *deployment) Cut(_ context.Context, a, b string) error {
	i, j, err := d.link(a, b)
	if err != nil {
		return err
	}
	d.c.nw.Cut(nodeName(i), nodeName(j))
	return nil
}

func (d *deployment) Heal(_ context.Context, a, b string) error {
	i, j, err := d.link(a, b)
	if err != nil {
		return err
	}
	d.healLink(i, j)
	return nil
}

func (d *deployment) Delay(_ context.Context, a, b string, latency, jitter time.Duration) error {
	if jitter > 0 {
		return nodes.NotApplicable("jetstream: delay jitter is not supported (faultnet delays are fixed)")
	}
	i, j, err := d.link(a, b)
	if err != nil {
		return err
	}
	d.c.nw.Delay(nodeName(i), nodeName(j), latency)
	d.mu.Lock()
	d.delays[[2]int{i, j}] = true
	d.mu.Unlock()
	return nil
}

// HealAll undoes every cut, isolation and delay; paused servers stay
// paused.
func (d *deployment) HealAll(context.Context) error {
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
	return nil
}

// nodeTarget is the resolved form of server i: "broker i".
func nodeTarget(i int) string { return nodes.BrokerName(int32(i)) }

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

// streamOf returns the stream of a leader-of or follower-of target.
func (d *deployment) streamOf(t scenario.Target) (string, error) {
	parts, err := d.topicInfo(t.Topic)
	if err != nil {
		return "", err
	}
	if t.Partition < 0 || int(t.Partition) >= parts {
		return "", fmt.Errorf("jetstream: %q: partition out of range [0, %d)", t, parts)
	}
	return StreamName(t.Topic, t.Partition), nil
}

// followers returns the running replicas of stream other than its leader,
// lowest-numbered first.
func (d *deployment) followers(ctx context.Context, stream string, leader int) ([]int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := d.adminJS.Stream(cctx, stream)
	if err != nil {
		return nil, fmt.Errorf("jetstream: stream %s: %w", stream, err)
	}
	var idx []int
	if ci := s.CachedInfo().Cluster; ci != nil {
		for _, r := range ci.Replicas {
			if i := d.c.nodeIndex(r.Name); i >= 0 && i != leader && d.c.nodes[i].server() != nil {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	return idx, nil
}

// parseNode reads "broker N" back; -1 for anything else.
func (d *deployment) parseNode(node string) int {
	t, err := scenario.ParseTarget(node)
	if err != nil || t.Kind != scenario.TargetBroker || t.Index < 0 || t.Index >= len(d.c.nodes) {
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
