package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/internal/metrics"
	ipoll "github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/segmentio/kafka-go"
)

// Service ports inside every node.
const (
	brokerPort     = 9092
	etcdPort       = 2379
	etcdPeerPort   = 2380
	nameserverPort = 9876
	// metricsPort serves every broker's and name server's Prometheus
	// metrics (/metrics); etcd members serve theirs on etcdPort.
	metricsPort = 9100
)

// MetricsPort is the container port of a role's Prometheus endpoint, 0
// for a role without one.
func MetricsPort(role string) int {
	switch role {
	case RoleEtcd:
		return etcdPort
	case RoleBroker, RoleNameserver:
		return metricsPort
	}
	return 0
}

// metricsURL is a node's Prometheus endpoint as the runner reaches it.
func metricsURL(n *Node) string {
	return "http://" + n.RunnerAddr(MetricsPort(n.Role)) + metrics.Path
}

// nodeMetrics maps each of nodes to its metrics URL.
func nodeMetrics(out map[string]string, ns []*Node) map[string]string {
	if out == nil {
		out = map[string]string{}
	}
	for _, n := range ns {
		out[n.Name] = metricsURL(n)
	}
	return out
}

// base is what every driver shares, whatever the launcher: the nodes
// (Cluster), the runner's own Kafka probe (leader resolution, topic
// readiness), the clients, fault application and the detection record.
type base struct {
	*Cluster
	env     scenarios.Env
	spec    scenario.Spec
	timings scenario.Timings
	logger  *slog.Logger
	brokers []*Node // by broker id
	probe   *kclient.Client
	routes  *nodes.RouteLog
	clients Clients
	// faults dispatches fault steps; the driver sets it with itself as
	// the runtime, so that its Active is the one used.
	faults *nodes.Faults

	departures nodes.Departures // when the control plane dropped a broker

	bg     sync.WaitGroup
	stopBg context.CancelFunc
	bgCtx  context.Context
}

// newBase connects the runtime's launcher to its engine.
func newBase(ctx context.Context, env scenarios.Env, newLauncher NewLauncher) (*base, error) {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l, err := newLauncher(ctx, env, logger)
	if err != nil {
		return nil, err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	b := &base{
		Cluster: NewCluster(l, env.Runtime, logger.With("component", env.Runtime)),
		env:     env, spec: env.Spec, timings: env.Spec.Timings(), logger: logger,
		probe:  kclient.New(kclient.Config{ClientID: "brokerlab-runner", DialTimeout: 2 * time.Second}),
		routes: &nodes.RouteLog{},
		bgCtx:  bgCtx, stopBg: stop,
	}
	return b, nil
}

// go runs f in the background until Close.
func (b *base) goBg(f func(ctx context.Context)) {
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		f(b.bgCtx)
	}()
}

// brokerArgs are the flags every broker gets whatever its control plane.
func (b *base) brokerArgs(n *Node, id int) []string {
	return []string{"broker",
		"--id", strconv.Itoa(id),
		"--listen", "0.0.0.0:" + strconv.Itoa(brokerPort),
		"--advertise", n.Addr(),
		"--data", "/data/broker",
		"--replica-lag-max", b.timings.ReplicaLagMax.String(),
		"--replica-fetch-wait", min(500*time.Millisecond, b.timings.ReplicaLagMax/4).String(),
		"--metrics-listen", "0.0.0.0:" + strconv.Itoa(metricsPort),
		"--log-level", "warn",
		"--fsync", cmp.Or(b.spec.Cluster.Fsync, scenario.FsyncNever),
		"--fsync-interval", cmp.Or(b.spec.Cluster.FsyncInterval, time.Second).String(),
		"--record-synced", // power-loss.go cuts the files to these lengths
	}
}

// startBrokers adds, launches and waits for brokers 0..n-1; args gives each
// one's command line.
func (b *base) startBrokers(ctx context.Context, count int, args func(n *Node, id int) []string) error {
	for i := range count {
		n, err := b.Add(nodes.BrokerName(int32(i)), RoleBroker, brokerPort, metricsPort)
		if err != nil {
			return err
		}
		b.brokers = append(b.brokers, n)
	}
	return b.LaunchAll(ctx, b.brokers, func(i int, n *Node) []string { return args(n, i) })
}

// metadata asks every broker the runner can reach for the topics'
// metadata; it returns the answers it got.
func (b *base) metadata(ctx context.Context, topics []string) []kclient.Metadata {
	var out []kclient.Metadata
	for _, n := range b.brokers {
		if !b.reachable(n.Name) {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, time.Second)
		md, err := b.probe.Metadata(mctx, n.addr(), topics)
		cancel()
		if err != nil {
			b.probe.Disconnect(n.addr())
			continue
		}
		out = append(out, md)
	}
	return out
}

// partition returns the newest state of topic/p any reachable broker
// reports: highest leader epoch, a partition with a leader before one
// without.
func (b *base) partition(ctx context.Context, topic string, p int32) (kclient.PartitionMetadata, bool) {
	var best kclient.PartitionMetadata
	found := false
	for _, md := range b.metadata(ctx, []string{topic}) {
		for _, t := range md.Topics {
			if t.Name != topic {
				continue
			}
			for _, pm := range t.Partitions {
				if pm.ID != p {
					continue
				}
				better := !found || pm.LeaderEpoch > best.LeaderEpoch ||
					(pm.LeaderEpoch == best.LeaderEpoch && best.Leader < 0 && pm.Leader >= 0)
				if better {
					best, found = pm, true
				}
			}
		}
	}
	return best, found
}

// createTopic creates the topic through a broker (Kafka CreateTopics, as
// the in-process runtime does) and waits until every reachable broker
// reports a leader for every partition and ready (when set) agrees.
func (b *base) createTopic(ctx context.Context, t scenario.Topic, ready func(ctx context.Context) error) error {
	// Every broker must be registered, and seen by every broker, before
	// replicas are placed, or the controller may refuse the replication
	// factor.
	if err := poll(ctx, 50*time.Millisecond, func() error {
		mds := b.metadata(ctx, nil)
		if len(mds) == 0 {
			return errors.New("no broker answers Metadata")
		}
		for _, md := range mds {
			if len(md.Brokers) != len(b.brokers) {
				return fmt.Errorf("a broker sees %d of %d brokers", len(md.Brokers), len(b.brokers))
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s: brokers never saw each other: %w", b.rt, err)
	}
	var conn *kafka.Conn
	var err error
	for _, n := range b.brokers {
		if !b.reachable(n.Name) {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err = (&kafka.Dialer{Timeout: 5 * time.Second}).DialContext(dctx, "tcp", n.addr())
		cancel()
		if err == nil {
			break
		}
	}
	if conn == nil {
		return fmt.Errorf("%s: no broker to create %s through: %v", b.rt, t.Name, err)
	}
	defer conn.Close()
	entries := []kafka.ConfigEntry{
		{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(t.MinInsync)},
		{ConfigName: "unclean.leader.election.enable", ConfigValue: strconv.FormatBool(t.UncleanElection)},
	}
	if t.Fanout != "" {
		entries = append(entries, kafka.ConfigEntry{ConfigName: "brokerlab.fanout", ConfigValue: t.Fanout})
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.Replication, ConfigEntries: entries}); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("%s: create topic %s: %w", b.rt, t.Name, err)
	}
	return poll(ctx, 50*time.Millisecond, func() error {
		if err := b.topicReady(ctx, t); err != nil {
			return err
		}
		if ready != nil {
			return ready(ctx)
		}
		return nil
	})
}

func (b *base) topicReady(ctx context.Context, t scenario.Topic) error {
	mds := b.metadata(ctx, []string{t.Name})
	if len(mds) == 0 {
		return errors.New("no broker answers Metadata")
	}
	for _, md := range mds {
		var tm *kclient.TopicMetadata
		for i := range md.Topics {
			if md.Topics[i].Name == t.Name {
				tm = &md.Topics[i]
			}
		}
		if tm == nil || tm.Err != nil || len(tm.Partitions) != t.Partitions {
			return fmt.Errorf("a broker does not see %s with %d partitions yet", t.Name, t.Partitions)
		}
		for _, p := range tm.Partitions {
			if p.Leader < 0 {
				return fmt.Errorf("%s/%d has no leader yet", t.Name, p.ID)
			}
		}
	}
	return nil
}

// poll calls f every interval until it succeeds or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	return ipoll.Until(ctx, 0, interval, f)
}

// The base is the runtime of the fault dispatcher (nodes.Runtime): every
// action goes through the Cluster to the launcher. Drivers override Active
// for their roles.

// Nodes lists the node names in creation order (not a launcher's client
// nodes).
func (b *base) Nodes() []string { return b.names() }

// Replicas finds the leader and followers of topic/p from Kafka Metadata,
// as a client would.
func (b *base) Replicas(ctx context.Context, topic string, p int32) (nodes.Replicas, error) {
	pm, ok := b.partition(ctx, topic, p)
	if !ok {
		return nodes.Replicas{}, fmt.Errorf("no broker reports %s/%d", topic, p)
	}
	return nodes.ReplicasOf(pm.Leader, pm.ISR, pm.Replicas), nil
}

// Active: the base has no role in charge of anything.
func (b *base) Active(_ context.Context, role string) (string, error) {
	return "", nodes.NotApplicable("no %s", role)
}

// Apply is Deployment.Apply through the driver's dispatcher.
func (b *base) Apply(ctx context.Context, step scenario.Step, node string) (string, error) {
	return b.faults.Apply(ctx, step, node)
}

func (b *base) Kill(ctx context.Context, node string) error    { return b.kill(ctx, node) }
func (b *base) Restart(ctx context.Context, node string) error { return b.restart(ctx, node) }
func (b *base) Pause(ctx context.Context, node string) error   { return b.pause(ctx, node) }
func (b *base) Resume(ctx context.Context, node string) error  { return b.resume(ctx, node) }
func (b *base) Isolate(ctx context.Context, node string) error { return b.isolate(ctx, node) }
func (b *base) Cut(ctx context.Context, x, y string) error     { return b.cut(ctx, x, y) }
func (b *base) Heal(ctx context.Context, x, y string) error    { return b.heal(ctx, x, y) }
func (b *base) HealAll(ctx context.Context) error              { return b.healAll(ctx) }

// Rejoin undoes an isolation, and an isolation from peers; a node under
// neither is left alone.
func (b *base) Rejoin(ctx context.Context, node string) error { return b.rejoinAny(ctx, node) }

// IsolatePeers cuts node off from every other node of the run and from
// none of the clients (nodes.PeerIsolator).
func (b *base) IsolatePeers(ctx context.Context, node string) error {
	return b.isolatePeers(ctx, node)
}

// Delay is not available: no per-destination qdisc is set up.
func (b *base) Delay(context.Context, string, string, time.Duration, time.Duration) error {
	return nodes.NotApplicable("delay under %s (no per-destination qdisc here; use the in-process runtime)", b.rt)
}

// startClients asks the launcher for the run's clients, which find the
// cluster as spec says and report their routes to the log.
func (b *base) startClients(ctx context.Context, spec ClientSpec) error {
	spec.Routes, spec.Logger = b.routes, b.logger
	c, err := b.l.Clients(ctx, b.Cluster, spec)
	if err != nil {
		return err
	}
	b.clients = c
	return nil
}

// bootstrapClients are Kafka-style clients: Metadata from any broker.
func (b *base) bootstrapClients(ctx context.Context) error {
	cfg := nodes.BootstrapConfig(b.spec)
	cfg.Brokers = peerAddrs(b.brokers)
	return b.startClients(ctx, ClientSpec{Style: producer.StyleKafka, Bootstrap: &cfg})
}

// NewProducer and NewConsumer are Deployment's, through the driver's
// clients.
func (b *base) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	return b.clients.NewProducer(cfg)
}

func (b *base) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	return b.clients.NewConsumer(cfg)
}

// ControlPlane: nothing measured, for a driver whose control-plane
// counters no endpoint exports (gossip keeps them inside the brokers).
func (b *base) ControlPlane() []analysis.CPSample { return nil }

// departed records that the control plane dropped broker id at.
func (b *base) departed(id int32, at time.Time) {
	b.departures.Record(id, at)
	b.logger.Debug("control plane dropped a broker", "node-id", id, "at", at)
}

// Detected is Deployment.Detected: the first departure of the broker named
// node at or after since.
func (b *base) Detected(node string, since time.Time) time.Time {
	return b.departures.Detected(node, since)
}

// Converged is Deployment.Converged: when every client stopped using the
// broker's address on the run's network.
func (b *base) Converged(node string, since time.Time) time.Time {
	id, ok := nodes.BrokerID(node)
	if !ok || int(id) >= len(b.brokers) {
		return time.Time{}
	}
	return b.routes.Converged(b.brokers[id].Addr(), since)
}

// close stops background work and removes everything the run created.
func (b *base) close() error {
	b.stopBg()
	b.bg.Wait()
	_ = b.probe.Close()
	return b.Cluster.close()
}
