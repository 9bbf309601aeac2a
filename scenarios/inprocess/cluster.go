package inprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
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
	spec    scenarios.Spec
	timings scenarios.Timings
	env     scenarios.Env
	net     *faultnet.Network
	logger  *slog.Logger
	routes  *RouteLog

	// newPlane returns broker id's control plane.
	newPlane func(id int32) (broker.ControlPlane, error)
	// liveIn reports the broker ids the control plane considers alive now
	// (nil when it cannot tell).
	liveIn func(ctx context.Context) []int32

	mu         sync.Mutex
	brokers    []*brokerNode
	aux        map[string]*auxNode
	lastKilled string
	departures Departures // when the control plane dropped a broker

	stopMonitor context.CancelFunc
	monitorDone chan struct{}
}

func newCluster(env scenarios.Env) *cluster {
	return &cluster{
		spec: env.Spec, timings: env.Spec.Timings(), env: env,
		net:    faultnet.New(env.Logger.With("component", "faultnet")),
		logger: env.Logger, routes: &RouteLog{},
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
	cfg.ReplicaFetchWait = min(500*time.Millisecond, c.timings.ReplicaLagMax/4)
	cfg.Dial = c.net.Dialer(BrokerName(id))
	cfg.Logger = c.logger.With("component", "broker")
	return cfg
}

// kafkaClients builds the deployment's clients: every one dials through
// the fault network under its own name and reports routes to the log.
func (c *cluster) kafkaClients(style producer.Style, newDiscovery func(string, func(discovery.Change)) (discovery.Discovery, error)) KafkaClients {
	return KafkaClients{
		NewDiscovery: newDiscovery,
		Style:        style,
		Dial:         func(name string) kclient.DialFunc { return c.net.Dialer(name) },
		Routes:       c.routes,
		Logger:       c.logger,
	}
}

// startBrokers starts brokers 0..n-1.
func (c *cluster) startBrokers(ctx context.Context, n int) error {
	for i := range n {
		node := &brokerNode{id: int32(i), name: BrokerName(int32(i)), cfg: c.brokerConfig(int32(i))}
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
func (c *cluster) createTopic(ctx context.Context, t scenarios.Topic) error {
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

func (c *cluster) topicReady(t scenarios.Topic) error {
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

// resolve turns a target into node names ("broker 2", "etcd 0", ...).
func (c *cluster) resolve(t scenarios.Target, controller func() (int32, bool)) ([]string, error) {
	switch t.Kind {
	case scenarios.TargetBroker:
		if t.Index < 0 || t.Index >= len(c.brokers) {
			return nil, fmt.Errorf("no broker %d", t.Index)
		}
		return []string{BrokerName(int32(t.Index))}, nil
	case scenarios.TargetLeaderOf, scenarios.TargetFollowerOf:
		st, ok := c.partitionState(t.Topic, t.Partition)
		if !ok {
			return nil, fmt.Errorf("no partition %s/%d", t.Topic, t.Partition)
		}
		if t.Kind == scenarios.TargetLeaderOf {
			if st.Leader < 0 {
				return nil, fmt.Errorf("%s/%d has no leader", t.Topic, t.Partition)
			}
			return []string{BrokerName(st.Leader)}, nil
		}
		for _, r := range st.ISR {
			if r != st.Leader {
				return []string{BrokerName(r)}, nil
			}
		}
		for _, r := range st.Replicas {
			if r != st.Leader {
				return []string{BrokerName(r)}, nil
			}
		}
		return nil, fmt.Errorf("%s/%d has no follower", t.Topic, t.Partition)
	case "controller": // the coordinator role's active member
		if controller == nil {
			return nil, scenarios.ErrNotApplicable
		}
		id, ok := controller()
		if !ok {
			return nil, errors.New("no controller known")
		}
		return []string{BrokerName(id)}, nil
	case "nameserver", "etcd":
		prefix := string(t.Kind) + " "
		if t.Index >= 0 {
			name := prefix + strconv.Itoa(t.Index)
			if _, ok := c.aux[name]; !ok {
				return nil, fmt.Errorf("%w: no %s", scenarios.ErrNotApplicable, name)
			}
			return []string{name}, nil
		}
		var names []string
		for name := range c.aux {
			if strings.HasPrefix(name, prefix) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: no %s", scenarios.ErrNotApplicable, t.Kind)
		}
		slices.Sort(names)
		return names, nil
	case scenarios.TargetKilled:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.lastKilled == "" {
			return nil, errors.New("nothing was killed")
		}
		return strings.Split(c.lastKilled, ","), nil
	}
	return nil, fmt.Errorf("%w: target %s", scenarios.ErrNotApplicable, t)
}

// apply executes a fault step.
func (c *cluster) apply(ctx context.Context, step scenarios.Step, resolvedNode string, controller func() (int32, bool)) (string, error) {
	if step.Action == scenarios.ActionHeal && step.Target.Kind == scenarios.TargetAll {
		c.net.HealAll()
		return "all", nil
	}
	var nodes []string
	var err error
	switch {
	case resolvedNode != "":
		nodes = strings.Split(resolvedNode, ",")
	case step.Target.Kind == scenarios.TargetLink:
		if len(step.Target.Link) != 2 {
			return "", errors.New("a link has two ends")
		}
		a, err := c.resolve(step.Target.Link[0], controller)
		if err != nil {
			return "", err
		}
		b, err := c.resolve(step.Target.Link[1], controller)
		if err != nil {
			return "", err
		}
		nodes = []string{a[0] + " - " + b[0]}
	default:
		if nodes, err = c.resolve(step.Target, controller); err != nil {
			return "", err
		}
	}
	joined := strings.Join(nodes, ",")
	for _, n := range nodes {
		if err := c.applyOne(ctx, step, n); err != nil {
			return joined, err
		}
	}
	switch step.Action {
	case scenarios.ActionKill, scenarios.ActionPause:
		c.mu.Lock()
		c.lastKilled = joined
		c.mu.Unlock()
	}
	return joined, nil
}

func (c *cluster) applyOne(ctx context.Context, step scenarios.Step, node string) error {
	if a, b, ok := strings.Cut(node, " - "); ok {
		switch step.Action {
		case scenarios.ActionCut:
			c.net.Cut(a, b)
		case scenarios.ActionHeal:
			c.net.Delay(a, b, 0)
			c.net.Heal(a, b)
		case scenarios.ActionDelay:
			c.net.Delay(a, b, step.Latency)
		default:
			return fmt.Errorf("%w: %s on a link", scenarios.ErrNotApplicable, step.Action)
		}
		return nil
	}
	switch step.Action {
	case scenarios.ActionPause:
		c.net.Pause(node)
		return nil
	case scenarios.ActionResume:
		c.net.Resume(node)
		return nil
	case scenarios.ActionIsolate:
		c.net.Isolate(node)
		return nil
	case scenarios.ActionHeal:
		c.net.Rejoin(node)
		return nil
	case scenarios.ActionKill, scenarios.ActionRestart:
	default:
		return fmt.Errorf("%w: %s on a node", scenarios.ErrNotApplicable, step.Action)
	}
	if aux, ok := c.aux[node]; ok {
		if step.Action == scenarios.ActionKill {
			if !aux.up {
				return fmt.Errorf("%s is already down", node)
			}
			aux.up = false
			return aux.kill()
		}
		if aux.up {
			return fmt.Errorf("%s is already up", node)
		}
		if err := aux.restart(ctx); err != nil {
			return err
		}
		aux.up = true
		return nil
	}
	for _, n := range c.brokers {
		if n.name != node {
			continue
		}
		c.mu.Lock()
		b := n.b
		if step.Action == scenarios.ActionKill {
			n.b = nil
		}
		c.mu.Unlock()
		if step.Action == scenarios.ActionKill {
			if b == nil {
				return fmt.Errorf("%s is already down", node)
			}
			b.Kill()
			return nil
		}
		if b != nil {
			return fmt.Errorf("%s is already up", node)
		}
		return c.startBroker(ctx, n)
	}
	return fmt.Errorf("no node %q", node)
}

// monitor polls the control plane's idea of live brokers every 50 ms and
// records when each broker drops out: the detection time of a fault.
func (c *cluster) monitor() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopMonitor, c.monitorDone = cancel, make(chan struct{})
	go func() {
		defer close(c.monitorDone)
		prev := map[int32]bool{}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			live := c.liveIn(ctx)
			if live == nil {
				continue
			}
			now := map[int32]bool{}
			for _, id := range live {
				now[id] = true
			}
			for id := range prev {
				if !now[id] {
					c.departures.Record(id, time.Now())
				}
			}
			prev = now
		}
	}()
}

// detected is when the control plane dropped the broker named node, at or
// after since.
func (c *cluster) detected(node string, since time.Time) time.Time {
	return c.departures.Detected(node, since)
}

// converged is when every client stopped using the broker named node.
func (c *cluster) converged(node string, since time.Time) time.Time {
	id, ok := BrokerID(node)
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
