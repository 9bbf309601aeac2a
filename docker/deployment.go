package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/docker/image"
	ipoll "github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/inprocess"
	"github.com/ory/dockertest/v3"
	"github.com/segmentio/kafka-go"
)

// Service ports inside every container.
const (
	brokerPort     = 9092
	etcdPort       = 2379
	etcdPeerPort   = 2380
	nameserverPort = 9876
)

// base is what both docker drivers share: the containers, the runner's own
// Kafka probe (leader resolution, topic readiness), the clients, fault
// application and the detection record.
type base struct {
	*cluster
	env     scenarios.Env
	spec    scenarios.Spec
	timings scenarios.Timings
	logger  *slog.Logger
	brokers []*node // by broker id
	probe   *kclient.Client
	routes  *inprocess.RouteLog
	clients inprocess.KafkaClients
	// controller names the coordinator's controller broker; nil where the
	// topology has none.
	controller func(ctx context.Context) (int32, error)

	mu         sync.Mutex
	lastKilled string
	departures inprocess.Departures // when the control plane dropped a broker

	bg     sync.WaitGroup
	stopBg context.CancelFunc
	bgCtx  context.Context
}

// imageCache holds the image built by this process: every deployment of a
// run (and every test of a test binary) shares one build.
var imageCache struct {
	sync.Mutex
	img image.Image
	ok  bool
}

// ensureImage builds the image from the source tree once per process, or
// falls back to brokerlab:local when there is no source tree here.
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

// newBase connects to the engine, makes sure the image exists and creates
// the run's network.
func newBase(ctx context.Context, env scenarios.Env) (*base, error) {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := image.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: no engine answers at %s: %w", image.Endpoint(), err)
	}
	img, err := ensureImage(ctx, pool, logger)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(ctx, pool, img, logger.With("component", "docker"))
	if err != nil {
		return nil, err
	}
	bgCtx, stop := context.WithCancel(context.Background())
	b := &base{
		cluster: c, env: env, spec: env.Spec, timings: env.Spec.Timings(), logger: logger,
		probe:  kclient.New(kclient.Config{ClientID: "brokerlab-runner", DialTimeout: 2 * time.Second}),
		routes: &inprocess.RouteLog{},
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

// brokerAddrs are every broker's address, up or not.
func (b *base) brokerAddrs() []string {
	out := make([]string, len(b.brokers))
	for i, n := range b.brokers {
		out[i] = n.addr()
	}
	return out
}

// brokerArgs are the flags every broker gets whatever its control plane.
func (b *base) brokerArgs(n *node, id int) []string {
	return []string{"broker",
		"--id", strconv.Itoa(id),
		"--listen", "0.0.0.0:" + strconv.Itoa(brokerPort),
		"--advertise", n.addr(),
		"--data", "/data/broker",
		"--replica-lag-max", b.timings.ReplicaLagMax.String(),
		"--replica-fetch-wait", min(500*time.Millisecond, b.timings.ReplicaLagMax/4).String(),
		"--log-level", "warn",
	}
}

// startBrokers adds, launches and waits for brokers 0..n-1; args gives each
// one's command line.
func (b *base) startBrokers(ctx context.Context, count int, args func(n *node, id int) []string) error {
	for i := range count {
		n, err := b.add(inprocess.BrokerName(int32(i)), brokerPort)
		if err != nil {
			return err
		}
		b.brokers = append(b.brokers, n)
	}
	return b.launchAll(ctx, b.brokers, func(i int, n *node) []string { return args(n, i) })
}

// metadata asks every broker the runner can reach for the topics'
// metadata; it returns the answers it got.
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
func (b *base) createTopic(ctx context.Context, t scenarios.Topic, ready func(ctx context.Context) error) error {
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
		return fmt.Errorf("docker: brokers never saw each other: %w", err)
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
		return fmt.Errorf("docker: no broker to create %s through: %v", t.Name, err)
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
		return fmt.Errorf("docker: create topic %s: %w", t.Name, err)
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

func (b *base) topicReady(ctx context.Context, t scenarios.Topic) error {
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

// resolve turns a target into node names ("broker 2", "etcd 0", ...).
func (b *base) resolve(ctx context.Context, t scenarios.Target) ([]string, error) {
	switch t.Kind {
	case scenarios.TargetBroker:
		if t.Index < 0 || t.Index >= len(b.brokers) {
			return nil, fmt.Errorf("no broker %d", t.Index)
		}
		return []string{inprocess.BrokerName(int32(t.Index))}, nil
	case scenarios.TargetLeaderOf, scenarios.TargetFollowerOf:
		return b.resolvePartition(ctx, t)
	case "controller": // the coordinator role's active member
		if b.controller == nil {
			return nil, scenarios.ErrNotApplicable
		}
		id, err := b.controller(ctx)
		if err != nil {
			return nil, err
		}
		return []string{inprocess.BrokerName(id)}, nil
	case "nameserver", "etcd":
		prefix := string(t.Kind) + " "
		var names []string
		for _, name := range b.names() {
			if strings.HasPrefix(name, prefix) && (t.Index < 0 || name == prefix+strconv.Itoa(t.Index)) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: no %s", scenarios.ErrNotApplicable, t)
		}
		return names, nil
	case scenarios.TargetKilled:
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.lastKilled == "" {
			return nil, errors.New("nothing was killed")
		}
		return strings.Split(b.lastKilled, ","), nil
	}
	return nil, fmt.Errorf("%w: target %s", scenarios.ErrNotApplicable, t)
}

// resolvePartition finds the leader or a follower of TOPIC/P from Kafka
// Metadata, as a client would.
func (b *base) resolvePartition(ctx context.Context, t scenarios.Target) ([]string, error) {
	pm, ok := b.partition(ctx, t.Topic, t.Partition)
	if !ok {
		return nil, fmt.Errorf("no broker reports %s/%d", t.Topic, t.Partition)
	}
	if t.Kind == scenarios.TargetLeaderOf {
		if pm.Leader < 0 {
			return nil, fmt.Errorf("%s/%d has no leader", t.Topic, t.Partition)
		}
		return []string{inprocess.BrokerName(pm.Leader)}, nil
	}
	for _, set := range [][]int32{pm.ISR, pm.Replicas} {
		for _, r := range set {
			if r != pm.Leader {
				return []string{inprocess.BrokerName(r)}, nil
			}
		}
	}
	return nil, fmt.Errorf("%s/%d has no follower", t.Topic, t.Partition)
}

// apply executes a fault step (Deployment.Apply).
func (b *base) apply(ctx context.Context, step scenarios.Step, resolved string) (string, error) {
	if step.Action == scenarios.ActionHeal && step.Target.Kind == scenarios.TargetAll {
		return "all", b.healAll(ctx)
	}
	var nodes []string
	switch {
	case resolved != "":
		nodes = strings.Split(resolved, ",")
	case step.Target.Kind == scenarios.TargetLink:
		if len(step.Target.Link) != 2 {
			return "", errors.New("a link has two ends")
		}
		x, err := b.resolve(ctx, step.Target.Link[0])
		if err != nil {
			return "", err
		}
		y, err := b.resolve(ctx, step.Target.Link[1])
		if err != nil {
			return "", err
		}
		nodes = []string{x[0] + " - " + y[0]}
	default:
		var err error
		if nodes, err = b.resolve(ctx, step.Target); err != nil {
			return "", err
		}
	}
	joined := strings.Join(nodes, ",")
	for _, n := range nodes {
		if err := b.applyOne(ctx, step, n); err != nil {
			return joined, err
		}
	}
	if step.Action == scenarios.ActionKill || step.Action == scenarios.ActionPause {
		b.mu.Lock()
		b.lastKilled = joined
		b.mu.Unlock()
	}
	return joined, nil
}

func (b *base) applyOne(ctx context.Context, step scenarios.Step, name string) error {
	if x, y, ok := strings.Cut(name, " - "); ok {
		switch step.Action {
		case scenarios.ActionCut:
			return b.cut(x, y)
		case scenarios.ActionHeal:
			return b.heal(x, y)
		case scenarios.ActionDelay:
			return fmt.Errorf("%w: delay under docker (the engine's kernel has no per-destination qdisc here; use the in-process runtime)", scenarios.ErrNotApplicable)
		}
		return fmt.Errorf("%w: %s on a link", scenarios.ErrNotApplicable, step.Action)
	}
	switch step.Action {
	case scenarios.ActionKill:
		return b.kill(ctx, name)
	case scenarios.ActionRestart:
		return b.restart(ctx, name)
	case scenarios.ActionPause:
		return b.pause(name)
	case scenarios.ActionResume:
		return b.resume(name)
	case scenarios.ActionIsolate:
		return b.isolate(ctx, name)
	case scenarios.ActionHeal:
		n, ok := b.snapshot(name)
		if !ok {
			return fmt.Errorf("no node %q", name)
		}
		if n.isolated {
			return b.rejoin(ctx, name)
		}
		return nil
	}
	return fmt.Errorf("%w: %s on a node", scenarios.ErrNotApplicable, step.Action)
}

// departed records that the control plane dropped broker id at.
func (b *base) departed(id int32, at time.Time) {
	b.departures.Record(id, at)
	b.logger.Debug("control plane dropped a broker", "node-id", id, "at", at)
}

// detected is Deployment.Detected: the first departure of the broker named
// node at or after since.
func (b *base) detected(node string, since time.Time) time.Time {
	return b.departures.Detected(node, since)
}

// converged is Deployment.Converged: when every client stopped using the
// broker's address.
func (b *base) converged(node string, since time.Time) time.Time {
	id, ok := inprocess.BrokerID(node)
	if !ok || int(id) >= len(b.brokers) {
		return time.Time{}
	}
	return b.routes.Converged(b.brokers[id].addr(), since)
}

// close stops background work and removes every container and the network.
func (b *base) close() error {
	b.stopBg()
	b.bg.Wait()
	_ = b.probe.Close()
	return b.cluster.close()
}
