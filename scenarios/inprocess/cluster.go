package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/segmentio/kafka-go"
)

// brokerNode is one broker of an in-process cluster; b is nil while it is
// down. A restarted broker keeps its address, as a real host would.
type brokerNode struct {
	id   int32
	name string
	cfg  broker.Config
	b    *broker.Broker
}

// auxNode is a control-plane node (etcd member, name server).
type auxNode struct {
	name    string
	addr    string
	up      bool
	kill    func() error
	restart func(ctx context.Context) error
}

// cluster is what both in-process drivers share: brokers on loopback behind
// a fault network, control-plane nodes, fault application and a membership
// monitor for detection times.
type cluster struct {
	spec    scenario.Spec
	timings scenario.Timings
	env     scenarios.Env
	net     *faultnet.Network
	logger  *slog.Logger
	routes  *nodes.RouteLog
	// KafkaClients build the deployment's producers and consumers (its
	// NewProducer and NewConsumer); the driver sets them with setClients.
	nodes.KafkaClients

	// newPlane returns broker id's control plane.
	newPlane func(id int32) (broker.ControlPlane, error)
	// liveIn reports the broker ids the control plane considers alive now
	// (nil when it cannot tell).
	liveIn func(ctx context.Context) []int32

	// faults dispatches fault steps; the driver sets it with itself as
	// the runtime, so that its Active is the one used.
	faults *nodes.Faults

	mu         sync.Mutex
	brokers    []*brokerNode
	aux        map[string]*auxNode
	auxOrder   []string
	departures nodes.Departures // when the control plane dropped a broker

	stopMonitor context.CancelFunc
	monitorDone chan struct{}
}

func newCluster(env scenarios.Env) *cluster {
	return &cluster{
		spec: env.Spec, timings: env.Spec.Timings(), env: env,
		net:    faultnet.New(env.Logger.With("component", "faultnet")),
		logger: env.Logger, routes: &nodes.RouteLog{},
		aux: map[string]*auxNode{},
	}
}

// brokerConfig is every broker's configuration in a scenario.
func (c *cluster) brokerConfig(id int32) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.NodeID = id
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(c.env.DataDir, "broker-"+strconv.Itoa(int(id)))
	cfg.ReplicaLagMax = c.timings.ReplicaLagMax
	if f := c.env.Spec.Cluster.Fsync; f != "" {
		cfg.Storage.Fsync = storage.FsyncPolicy(f)
	}
	if d := c.env.Spec.Cluster.FsyncInterval; d > 0 {
		cfg.Storage.FsyncInterval = d
	}
	cfg.ReplicaFetchWait = min(500*time.Millisecond, c.timings.ReplicaLagMax/4)
	cfg.Dial = c.net.Dialer(nodes.BrokerName(id))
	cfg.Logger = c.logger.With("component", "broker")
	// Every node serves its own registry on its own loopback port, as it
	// would on its own host.
	cfg.MetricsListen = "127.0.0.1:0"
	return cfg
}

// setClients sets the deployment's clients: every one dials through the
// fault network under its own name and reports routes to the log.
func (c *cluster) setClients(style producer.Style, newDiscovery func(string, func(discovery.Change)) (discovery.Discovery, error)) {
	c.KafkaClients = nodes.KafkaClients{
		NewDiscovery: newDiscovery,
		Style:        style,
		Dial:         func(name string) kclient.DialFunc { return c.net.Dialer(name) },
		Routes:       c.routes,
		Logger:       c.logger,
	}
}

// peerPlane is what the topologies whose control plane runs in the brokers
// (coordinator, gossip) share: clients bootstrap from the brokers, a topic
// is created once every broker sees its peers, and the control plane's
// traffic is read from the brokers' metrics endpoints, which are all the
// metrics targets.
type peerPlane struct {
	*cluster
	cost *scenarios.MetricsScraper // control-plane traffic, read from the brokers' endpoints
}

func newPeerPlane(env scenarios.Env, cost func(metrics.Samples) []analysis.CPSample) peerPlane {
	return peerPlane{cluster: newCluster(env), cost: scenarios.NewMetricsScraper(cost)}
}

// start starts brokers 0..n-1 (newPlane set) and the Kafka-style clients.
func (p peerPlane) start(ctx context.Context, n int) error {
	p.liveIn = p.liveInPeerViews
	if err := p.startBrokers(ctx, n); err != nil {
		return err
	}
	p.setClients(producer.StyleKafka, func(name string, onChange func(discovery.Change)) (discovery.Discovery, error) {
		cfg := nodes.BootstrapConfig(p.spec)
		cfg.Brokers = p.addrs()
		cfg.Dial = p.net.Dialer(name)
		cfg.OnChange = onChange
		cfg.Logger = p.logger.With("component", "discovery", "client", name)
		return discovery.NewBootstrap(cfg)
	})
	p.monitor()
	return nil
}

// CreateTopic waits until every broker sees its peers, then creates the
// topic through a broker.
func (p peerPlane) CreateTopic(ctx context.Context, t scenario.Topic) error {
	if err := p.awaitPeerViews(ctx); err != nil {
		return err
	}
	return p.createTopic(ctx, t)
}

// ControlPlane reads the control plane's traffic from every broker's
// metrics endpoint (a killed broker keeps the values last read, a
// restarted one's counters are carried over).
func (p peerPlane) ControlPlane() []analysis.CPSample {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return p.cost.Sample(ctx, p.brokerMetrics())
}

// MetricsTargets are the brokers' endpoints: the control plane runs in
// them (etcd members are embedded in the runner's process and serve none
// of their own).
func (p peerPlane) MetricsTargets() map[string]string { return p.brokerMetrics() }

// startBrokers starts brokers 0..n-1.
func (c *cluster) startBrokers(ctx context.Context, n int) error {
	for i := range n {
		node := &brokerNode{id: int32(i), name: nodes.BrokerName(int32(i)), cfg: c.brokerConfig(int32(i))}
		c.brokers = append(c.brokers, node)
		if err := c.startBroker(ctx, node); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) startBroker(ctx context.Context, n *brokerNode) error {
	cp, err := c.newPlane(n.id)
	if err != nil {
		return err
	}
	b, err := broker.New(n.cfg, cp)
	if err != nil {
		_ = cp.Close()
		return err
	}
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	n.cfg.Listen = b.Addr() // a restart comes back on the same address
	n.cfg.MetricsListen = b.MetricsAddr()
	c.net.Register(n.name, b.Addr())
	c.mu.Lock()
	n.b = b
	c.mu.Unlock()
	return nil
}

// running returns the brokers that are up.
func (c *cluster) running() []*broker.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*broker.Broker
	for _, n := range c.brokers {
		if n.b != nil {
			out = append(out, n.b)
		}
	}
	return out
}

// brokerMetrics maps every broker, up or not, to its metrics URL.
func (c *cluster) brokerMetrics() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.brokers))
	for _, n := range c.brokers {
		if n.cfg.MetricsListen != "" {
			out[n.name] = "http://" + n.cfg.MetricsListen + metrics.Path
		}
	}
	return out
}

// liveInPeerViews is a liveIn for planes that give every broker a view of
// the live brokers (coordinator, gossip): a broker is live while some
// other running broker's view lists it, and detected down once every other
// one dropped it. A broker cut off from the cluster keeps a stale view (a
// coordinator's cached registrations, where it may still name itself
// controller; a gossip node's last members), and its word about itself
// does not count; with one broker running, it does; with none, nobody can
// tell (nil).
func (c *cluster) liveInPeerViews(context.Context) []int32 {
	running := c.running()
	if len(running) == 0 {
		return nil
	}
	seen := map[int32]bool{}
	for _, b := range running {
		for _, bi := range b.View().Brokers {
			if bi.ID != b.ID() || len(running) == 1 {
				seen[bi.ID] = true
			}
		}
	}
	out := make([]int32, 0, len(seen))
	for _, n := range c.brokers {
		if seen[n.id] {
			out = append(out, n.id)
		}
	}
	return out
}

// addrs are the addresses of every broker, up or not.
func (c *cluster) addrs() []string {
	var out []string
	for _, n := range c.brokers {
		out = append(out, n.cfg.Listen)
	}
	return out
}

// awaitPeerViews waits until every running broker's view lists every
// broker: a controller places replicas over the brokers it sees, and may
// refuse the replication factor before they are all registered. (Name
// servers place topics themselves; their brokers learn their peers only
// at their route poll, 30 s in production, so that topology does not
// wait here.)
func (c *cluster) awaitPeerViews(ctx context.Context) error {
	bs := c.running()
	for {
		all := true
		for _, b := range bs {
			all = all && len(b.View().Brokers) == len(c.brokers)
		}
		if all {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("brokers never saw each other: %w", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond) // polling the brokers' views
	}
}

// createTopic creates the scenario's topic through a broker (Kafka
// CreateTopics) and waits until every running broker sees a leader for
// every partition.
func (c *cluster) createTopic(ctx context.Context, t scenario.Topic) error {
	bs := c.running()
	if len(bs) == 0 {
		return errors.New("no broker is running")
	}
	conn, err := kafka.DialContext(ctx, "tcp", bs[0].Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	entries := []kafka.ConfigEntry{
		{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(t.MinInsync)},
		{ConfigName: "unclean.leader.election.enable", ConfigValue: strconv.FormatBool(t.UncleanElection)},
	}
	if t.Fanout != "" {
		entries = append(entries, kafka.ConfigEntry{ConfigName: "brokerlab.fanout", ConfigValue: t.Fanout})
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.Replication, ConfigEntries: entries}); err != nil {
		return err
	}
	for {
		if err := c.topicReady(t); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		}
		time.Sleep(50 * time.Millisecond) // polling the brokers' views
	}
}

func (c *cluster) topicReady(t scenario.Topic) error {
	for _, b := range c.running() {
		tv, ok := b.View().Topic(t.Name)
		if !ok || len(tv.Partitions) != t.Partitions {
			return fmt.Errorf("broker %d does not see %s yet", b.ID(), t.Name)
		}
		for _, p := range tv.Partitions {
			if p.Leader < 0 {
				return fmt.Errorf("broker %d: %s/%d has no leader", b.ID(), t.Name, p.Partition)
			}
		}
	}
	return nil
}

// partitionState returns the newest state of topic/p any running broker
// knows (highest leader epoch, then version).
func (c *cluster) partitionState(topic string, p int32) (broker.PartitionState, bool) {
	var best broker.PartitionState
	found := false
	for _, b := range c.running() {
		tv, ok := b.View().Topic(topic)
		if !ok || int(p) >= len(tv.Partitions) {
			continue
		}
		st := tv.Partitions[p]
		if !found || st.LeaderEpoch > best.LeaderEpoch || (st.LeaderEpoch == best.LeaderEpoch && st.Version > best.Version) {
			best, found = st, true
		}
	}
	return best, found
}

// The cluster is the in-process runtime of the fault dispatcher
// (nodes.Runtime): kill and restart act on the node's process, everything
// else on the fault network. A driver embedding it overrides Active for
// its roles.

// Nodes lists the brokers, then the control-plane nodes in start order.
func (c *cluster) Nodes() []string {
	out := make([]string, 0, len(c.brokers)+len(c.auxOrder))
	for _, n := range c.brokers {
		out = append(out, n.name)
	}
	return append(out, c.auxOrder...)
}

// Replicas reads topic/p from the newest state a running broker knows.
func (c *cluster) Replicas(_ context.Context, topic string, p int32) (nodes.Replicas, error) {
	st, ok := c.partitionState(topic, p)
	if !ok {
		return nodes.Replicas{}, fmt.Errorf("no partition %s/%d", topic, p)
	}
	return nodes.ReplicasOf(st.Leader, st.ISR, st.Replicas), nil
}

// Active: the cluster itself has no role in charge of anything.
func (c *cluster) Active(_ context.Context, role string) (string, error) {
	return "", nodes.NotApplicable("no %s", role)
}

// Apply is Deployment.Apply through the driver's dispatcher.
func (c *cluster) Apply(ctx context.Context, step scenario.Step, node string) (string, error) {
	return c.faults.Apply(ctx, step, node)
}

func (c *cluster) Pause(_ context.Context, node string) error   { c.net.Pause(node); return nil }
func (c *cluster) Resume(_ context.Context, node string) error  { c.net.Resume(node); return nil }
func (c *cluster) Isolate(_ context.Context, node string) error { c.net.Isolate(node); return nil }
func (c *cluster) Rejoin(_ context.Context, node string) error  { c.net.Rejoin(node); return nil }
func (c *cluster) Cut(_ context.Context, a, b string) error     { c.net.Cut(a, b); return nil }
func (c *cluster) HealAll(context.Context) error                { c.net.HealAll(); return nil }

// IsolatePeers cuts node from every node registered with the fault network
// (brokers, their gossip ports, etcd members, name servers, controllers);
// clients dial under names of their own, never registered, and keep their
// links. Rejoin undoes it.
func (c *cluster) IsolatePeers(_ context.Context, node string) error {
	c.net.IsolatePeers(node)
	return nil
}

// Heal removes a cut and a delay between a and b.
func (c *cluster) Heal(_ context.Context, a, b string) error {
	c.net.Delay(a, b, 0)
	c.net.Loss(a, b, 0)
	c.net.Heal(a, b)
	return nil
}

// Loss makes the link between a and b lose a fraction p of its packets
// (faultnet.Loss: retransmission delays, no data lost).
func (c *cluster) Loss(_ context.Context, a, b string, p float64) error {
	c.net.Loss(a, b, p)
	return nil
}

// Delay slows the link between a and b; faultnet delays are fixed, so the
// jitter is not applied.
func (c *cluster) Delay(_ context.Context, a, b string, latency, _ time.Duration) error {
	c.net.Delay(a, b, latency)
	return nil
}

// Kill stops a broker (its data stays) or a control-plane node abruptly.
func (c *cluster) Kill(_ context.Context, node string) error {
	if aux, ok := c.aux[node]; ok {
		if !aux.up {
			return fmt.Errorf("%s is already down", node)
		}
		aux.up = false
		return aux.kill()
	}
	n := c.brokerNode(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	c.mu.Lock()
	b := n.b
	n.b = nil
	c.mu.Unlock()
	if b == nil {
		return fmt.Errorf("%s is already down", node)
	}
	b.Kill()
	return nil
}

// Restart starts a killed node again on its address and data.
func (c *cluster) Restart(ctx context.Context, node string) error {
	if aux, ok := c.aux[node]; ok {
		if aux.up {
			return fmt.Errorf("%s is already up", node)
		}
		if err := aux.restart(ctx); err != nil {
			return err
		}
		aux.up = true
		return nil
	}
	n := c.brokerNode(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	c.mu.Lock()
	up := n.b != nil
	c.mu.Unlock()
	if up {
		return fmt.Errorf("%s is already up", node)
	}
	return c.startBroker(ctx, n)
}

func (c *cluster) brokerNode(name string) *brokerNode {
	for _, n := range c.brokers {
		if n.name == name {
			return n
		}
	}
	return nil
}

// addAux adds a control-plane node; its name is a role member's
// (nodes.MemberName).
func (c *cluster) addAux(n *auxNode) {
	c.aux[n.name] = n
	c.auxOrder = append(c.auxOrder, n.name)
}

// monitor polls the control plane's idea of live brokers every 50 ms and
// records when each broker drops out: the detection time of a fault.
func (c *cluster) monitor() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopMonitor, c.monitorDone = cancel, make(chan struct{})
	go func() {
		defer close(c.monitorDone)
		nodes.WatchLive(ctx, 50*time.Millisecond, c.liveIn, &c.departures)
	}()
}

// Detected is when the control plane dropped the broker named node, at or
// after since.
func (c *cluster) Detected(node string, since time.Time) time.Time {
	return c.departures.Detected(node, since)
}

// Converged is when every client stopped using the broker named node.
func (c *cluster) Converged(node string, since time.Time) time.Time {
	id, ok := nodes.BrokerID(node)
	if !ok || int(id) >= len(c.brokers) {
		return time.Time{}
	}
	return c.routes.Converged(c.brokers[id].cfg.Listen, since)
}

// close stops everything; brokers first, then the control plane nodes.
func (c *cluster) close() error {
	if c.stopMonitor != nil {
		c.stopMonitor()
		<-c.monitorDone
	}
	var errs []error
	c.mu.Lock()
	var bs []*broker.Broker
	for _, n := range c.brokers {
		if n.b != nil {
			bs = append(bs, n.b)
			n.b = nil
		}
	}
	c.mu.Unlock()
	for _, b := range bs {
		b.Kill() // nothing to flush: the data dir is thrown away
	}
	for _, a := range c.aux {
		if a.up {
			if err := a.kill(); err != nil {
				errs = append(errs, err)
			}
			a.up = false
		}
	}
	errs = append(errs, c.net.Close())
	return errors.Join(errs...)
}

// hostPort strips a URL scheme from an endpoint.
func hostPort(endpoint string) string {
	if _, rest, ok := strings.Cut(endpoint, "://"); ok {
		return rest
	}
	return endpoint
}
