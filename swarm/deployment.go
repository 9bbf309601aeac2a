package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/internal/metrics"
	ipoll "github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/ory/dockertest/v3"
	"github.com/segmentio/kafka-go"
)

// Roles, as swarm node labels name them (labelRoles).
const (
	roleBroker     = "broker"
	roleEtcd       = "etcd"
	roleNameserver = "nameserver"
	roleClient     = "client"
)

// Ports inside every task; the runner reaches them through ports published
// on the task's swarm node.
const (
	brokerPort     = 9092
	etcdPort       = 2379
	etcdPeerPort   = 2380
	nameserverPort = 9876
	metricsPort    = 9100
	loadgenPort    = 7070
)

// base is what both swarm drivers share: the services, the runner's
// Kafka probe, the load generators, fault application and detection.
type base struct {
	*cluster
	env     scenarios.Env
	spec    scenario.Spec
	timings scenario.Timings
	logger  *slog.Logger
	brokers []*node
	probe   *kclient.Client
	routes  *nodes.RouteLog
	gens    *loadgens
	faults  *nodes.Faults
	release func() // leaves a swarm this run initialised

	departures nodes.Departures

	bg     sync.WaitGroup
	stopBg context.CancelFunc
	bgCtx  context.Context
}

// imageCache holds the image built by this process.
var imageCache struct {
	sync.Mutex
	img image.Image
	ok  bool
}

func ensureImage(ctx context.Context, pool *dockertest.Pool, logger *slog.Logger) (image.Image, error) {
	imageCache.Lock()
	defer imageCache.Unlock()
	if imageCache.ok {
		return imageCache.img, nil
	}
	img, err := image.Build(ctx, pool, image.Options{Logger: logger})
	if errors.Is(err, image.ErrNoSource) {
		img, err = image.Local(pool)
	}
	if err != nil {
		return image.Image{}, err
	}
	imageCache.img, imageCache.ok = img, true
	return img, nil
}

// ImageEnv names an image every swarm node holds (e.g. brokerlab:local,
// loaded with docker save | docker load); when set, it is used as it is
// and nothing is built.
const ImageEnv = "BROKERLAB_SWARM_IMAGE"

func swarmImage(ctx context.Context, pool *dockertest.Pool, logger *slog.Logger) (image.Image, error) {
	ref := os.Getenv(ImageEnv)
	if ref == "" {
		return ensureImage(ctx, pool, logger)
	}
	repo, tag, ok := strings.Cut(ref, ":")
	if !ok || repo == "" || tag == "" {
		return image.Image{}, fmt.Errorf("swarm: %s=%q: want repository:tag", ImageEnv, ref)
	}
	return image.Image{Repository: repo, Tag: tag}, nil
}

// connect returns the engine's pool and its swarm API client.
func connect(ctx context.Context) (*dockertest.Pool, *engine, error) {
	pool, err := image.Connect(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("swarm: no engine answers at %s: %w", image.Endpoint(), err)
	}
	env, err := pool.Client.Version()
	if err != nil {
		return nil, nil, fmt.Errorf("swarm: engine version: %w", err)
	}
	eng, err := newEngine(pool.Client, image.Endpoint(), env.Get("ApiVersion"))
	if err != nil {
		return nil, nil, err
	}
	return pool, eng, nil
}

// newBase connects, joins or forms the swarm, makes sure the image exists,
// creates the run's network and starts the load generators.
func newBase(ctx context.Context, env scenarios.Env) (*base, error) {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, eng, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	self, release, err := acquireSwarm(ctx, eng, logger)
	if err != nil {
		return nil, err
	}
	img, err := swarmImage(ctx, pool, logger)
	if err != nil {
		release()
		return nil, err
	}
	c, err := newCluster(ctx, pool, eng, img, self, logger.With("component", "swarm"))
	if err != nil {
		release()
		return nil, err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	b := &base{
		cluster: c, env: env, spec: env.Spec, timings: env.Spec.Timings(), logger: logger,
		probe:   kclient.New(kclient.Config{ClientID: "brokerlab-runner", DialTimeout: 2 * time.Second}),
		routes:  &nodes.RouteLog{},
		release: release,
		bgCtx:   bgCtx, stopBg: stop,
	}
	return b, nil
}

// startLoadgens runs one load generator service per swarm node that takes
// clients (at most one per client of the workload) and waits until they
// serve. style and disc describe how their clients find the cluster.
func (b *base) startLoadgens(ctx context.Context, style producer.Style, disc func(*session)) error {
	hosts := 0
	for _, h := range b.hosts {
		if h.takes(roleClient) {
			hosts++
		}
	}
	w := b.spec.Workload
	count := max(min(hosts, max(w.Producers, 1)+max(w.Consumers, 1)), 1)
	var gens []*node
	for i := range count {
		n, err := b.add(nodes.MemberName("loadgen", i), roleClient, loadgenPort)
		if err != nil {
			return err
		}
		gens = append(gens, n)
	}
	err := b.launchAll(ctx, gens, func(int, *node) []string {
		return []string{"loadgen", "--listen", "0.0.0.0:" + strconv.Itoa(loadgenPort), "--log-level", "warn"}
	})
	if err != nil {
		return err
	}
	b.gens = &loadgens{nodes: gens, routes: b.routes, style: style, discovery: disc, logger: b.logger}
	return nil
}

func (b *base) goBg(f func(ctx context.Context)) {
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		f(b.bgCtx)
	}()
}

// advertisedBrokers are every broker's overlay address.
func (b *base) advertisedBrokers() []string {
	out := make([]string, len(b.brokers))
	for i, n := range b.brokers {
		out[i] = n.advertised()
	}
	return out
}

func (b *base) brokerArgs(n *node, id int) []string {
	return []string{"broker",
		"--id", strconv.Itoa(id),
		"--listen", "0.0.0.0:" + strconv.Itoa(brokerPort),
		"--advertise", n.advertised(),
		"--data", "/data/broker",
		"--replica-lag-max", b.timings.ReplicaLagMax.String(),
		"--replica-fetch-wait", min(500*time.Millisecond, b.timings.ReplicaLagMax/4).String(),
		"--metrics-listen", "0.0.0.0:" + strconv.Itoa(metricsPort),
		"--log-level", "warn",
	}
}

func (b *base) startBrokers(ctx context.Context, count int, args func(n *node, id int) []string) error {
	for i := range count {
		n, err := b.add(nodes.BrokerName(int32(i)), roleBroker, brokerPort, metricsPort)
		if err != nil {
			return err
		}
		b.brokers = append(b.brokers, n)
	}
	return b.launchAll(ctx, b.brokers, func(i int, n *node) []string { return args(n, i) })
}

// metadata asks every broker the runner can reach, through its published
// port, for the topics' metadata.
func (b *base) metadata(ctx context.Context, topics []string) []kclient.Metadata {
	var out []kclient.Metadata
	for _, n := range b.brokers {
		if !b.reachable(n.name) {
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

// createTopic creates the topic through a broker's published port and
// waits until every reachable broker reports a leader for every partition
// and ready (when set) agrees.
func (b *base) createTopic(ctx context.Context, t scenario.Topic, ready func(ctx context.Context) error) error {
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
		return fmt.Errorf("swarm: brokers never saw each other: %w", err)
	}
	var conn *kafka.Conn
	var err error
	for _, n := range b.brokers {
		if !b.reachable(n.name) {
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
		return fmt.Errorf("swarm: no broker to create %s through: %v", t.Name, err)
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
		return fmt.Errorf("swarm: create topic %s: %w", t.Name, err)
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

func poll(ctx context.Context, interval time.Duration, f func() error) error {
	return ipoll.Until(ctx, 0, interval, f)
}

// metricsURL is a node's Prometheus endpoint as the runner reaches it.
func metricsURL(n *node) string {
	port := metricsPort
	if n.role == roleEtcd {
		port = etcdPort
	}
	return "http://" + n.runnerAddr(port) + metrics.Path
}

func nodeMetrics(out map[string]string, ns []*node) map[string]string {
	if out == nil {
		out = map[string]string{}
	}
	for _, n := range ns {
		out[n.name] = metricsURL(n)
	}
	return out
}

// The base is the swarm runtime of the fault dispatcher (nodes.Runtime).

// Nodes lists the cluster's nodes (not the load generators).
func (b *base) Nodes() []string { return b.names() }

func (b *base) Replicas(ctx context.Context, topic string, p int32) (nodes.Replicas, error) {
	pm, ok := b.partition(ctx, topic, p)
	if !ok {
		return nodes.Replicas{}, fmt.Errorf("no broker reports %s/%d", topic, p)
	}
	return nodes.ReplicasOf(pm.Leader, pm.ISR, pm.Replicas), nil
}

func (b *base) Active(_ context.Context, role string) (string, error) {
	return "", nodes.NotApplicable("no %s", role)
}

func (b *base) Apply(ctx context.Context, step scenario.Step, node string) (string, error) {
	return b.faults.Apply(ctx, step, node)
}

func (b *base) Kill(ctx context.Context, node string) error    { return b.kill(ctx, node) }
func (b *base) Restart(ctx context.Context, node string) error { return b.restart(ctx, node) }
func (b *base) Pause(_ context.Context, node string) error     { return b.pause(node) }
func (b *base) Resume(_ context.Context, node string) error    { return b.resume(node) }
func (b *base) Isolate(ctx context.Context, node string) error { return b.isolate(ctx, node) }
func (b *base) Rejoin(_ context.Context, node string) error    { return b.rejoin(node) }
func (b *base) Cut(_ context.Context, x, y string) error       { return b.cut(x, y) }
func (b *base) Heal(_ context.Context, x, y string) error      { return b.heal(x, y) }
func (b *base) HealAll(context.Context) error                  { return b.healAll() }

// Delay is not available under swarm.
func (b *base) Delay(context.Context, string, string, time.Duration, time.Duration) error {
	return nodes.NotApplicable("delay under swarm (no per-destination qdisc here; use the in-process runtime)")
}

func (b *base) departed(id int32, at time.Time) {
	b.departures.Record(id, at)
	b.logger.Debug("control plane dropped a broker", "node-id", id, "at", at)
}

func (b *base) Detected(node string, since time.Time) time.Time {
	return b.departures.Detected(node, since)
}

// Converged is when every client (on the load generators) stopped using
// the broker's overlay address, from the route changes they sent back.
func (b *base) Converged(node string, since time.Time) time.Time {
	id, ok := nodes.BrokerID(node)
	if !ok || int(id) >= len(b.brokers) {
		return time.Time{}
	}
	return b.routes.Converged(b.brokers[id].advertised(), since)
}

func (b *base) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	return b.gens.NewProducer(cfg)
}

func (b *base) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	return b.gens.NewConsumer(cfg)
}

// ClockOffset is the largest clock offset between the runner and a load
// generator measured so far (load generator minus runner).
func (b *base) ClockOffset() time.Duration {
	if b.gens == nil {
		return 0
	}
	b.gens.mu.Lock()
	defer b.gens.mu.Unlock()
	return b.gens.maxOffset
}

// close stops background work, removes every service, the network and the
// volumes, and leaves a swarm this run formed.
func (b *base) close() error {
	b.stopBg()
	b.bg.Wait()
	_ = b.probe.Close()
	if b.gens != nil && b.gens.maxOffset != 0 {
		b.logger.Info("load generator clocks", "largest-offset", b.ClockOffset())
	}
	err := b.cluster.close()
	b.release()
	return err
}

// joinAddrs formats endpoints for a flag.
func joinAddrs(ns []*node, f func(*node) string) string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = f(n)
	}
	return strings.Join(out, ",")
}
