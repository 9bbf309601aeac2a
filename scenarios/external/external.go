// Package external is the "kafka-external" topology (runtime "inprocess"):
// the scenario's workload and checker against any Kafka-protocol cluster the
// user already runs, reached at the bootstrap addresses of Env.Bootstrap
// (`brokerlab run --bootstrap host:port`) or else the scenario's
// external.bootstrap. It gives a yardstick from a real Kafka (or Redpanda,
// or any compatible) deployment next to brokerlab's topologies.
//
// Clients are brokerlab's own Kafka-protocol producer and consumer, exactly
// as the coordinator topology uses them (scenarios/nodes.KafkaClients,
// bootstrap discovery with the scenario's metadata max age), so the client
// side of every figure is the same.
//
// The cluster is not brokerlab's to touch: every fault is skipped with
// scenarios.ErrNotApplicable (the report shows the reason with each fault),
// detection and convergence times are unknown, and there are no
// control-plane counters (a Kafka cluster's controller traffic is not
// visible to its clients).
//
// CreateTopic creates the scenario's topic with its partitions and
// replication (other settings, such as min.insync.replicas, are the
// cluster's). A topic that already exists is used as it is if its partition
// count matches; whatever it held before the run is read by the consumers
// but not recorded, so the checker sees this run's messages only. The topic
// is left in place when the deployment closes.
package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/history"
	ipoll "github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeInProcess, TopologyName, Start)
}

var (
	// ErrNoBootstrap: neither Env.Bootstrap nor external.bootstrap names a
	// broker.
	ErrNoBootstrap = errors.New("external: no bootstrap address (use --bootstrap host:port or external.bootstrap)")
	// ErrUnreachable: no bootstrap address accepted a connection.
	ErrUnreachable = errors.New("external: no bootstrap broker reachable")
	// ErrTopicMismatch: the topic exists with another partition count.
	ErrTopicMismatch = errors.New("external: existing topic does not match the scenario")
)

// reachTimeout bounds the reachability check of one bootstrap address.
const reachTimeout = 5 * time.Second

// Start checks that a bootstrap broker of the external cluster accepts
// connections and returns a deployment on it.
func Start(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	addrs := env.Bootstrap
	if len(addrs) == 0 {
		addrs = env.Spec.External.Bootstrap
	}
	if len(addrs) == 0 {
		return nil, ErrNoBootstrap
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("topology", TopologyName)
	if err := reachable(ctx, addrs); err != nil {
		return nil, err
	}
	d := &deployment{log: log, addrs: slices.Clone(addrs), maxAge: env.Spec.Timings().MetadataMaxAge}
	admin, err := d.bootstrap("admin", nil)
	if err != nil {
		return nil, err
	}
	d.admin = admin
	d.clients = nodes.KafkaClients{
		NewDiscovery: d.newDiscovery,
		Style:        producer.StyleKafka,
		Routes:       &nodes.RouteLog{},
		Logger:       log,
	}
	return d, nil
}

// reachable succeeds once one of addrs accepts a TCP connection.
func reachable(ctx context.Context, addrs []string) error {
	var errs []error
	for _, a := range addrs {
		dctx, cancel := context.WithTimeout(ctx, reachTimeout)
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", a)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// deployment is a workload on an external cluster.
type deployment struct {
	log     *slog.Logger
	addrs   []string
	maxAge  time.Duration
	admin   *discovery.Bootstrap
	clients nodes.KafkaClients

	mu     sync.Mutex
	topic  string
	base   map[int32]int64 // first offset of this run, by partition
	closed bool
}

// newDiscovery returns bootstrap discovery of the external cluster for the
// client named name.
func (d *deployment) newDiscovery(name string, onChange func(discovery.Change)) (discovery.Discovery, error) {
	return d.bootstrap(name, onChange)
}

func (d *deployment) bootstrap(name string, onChange func(discovery.Change)) (*discovery.Bootstrap, error) {
	cfg := discovery.DefaultBootstrapConfig()
	cfg.Brokers = d.addrs
	if d.maxAge > 0 {
		cfg.MetadataMaxAge = d.maxAge
	}
	cfg.OnChange = onChange
	cfg.Logger = d.log.With("component", "discovery", "client", name)
	b, err := discovery.NewBootstrap(cfg)
	if err != nil {
		return nil, fmt.Errorf("external: %s: %w", name, err)
	}
	return b, nil
}

// CreateTopic creates the topic (an existing one is reused when its
// partition count matches), waits until every partition has a leader and
// notes where each partition ends, so that older messages are not recorded.
func (d *deployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	if t.Partitions < 1 || t.Replication < 1 {
		return fmt.Errorf("external: topic %q: %d partitions, replication %d", t.Name, t.Partitions, t.Replication)
	}
	if err := d.admin.CreateTopic(ctx, t.Name, int32(t.Partitions), int16(t.Replication)); err != nil {
		return fmt.Errorf("external: create topic %s: %w", t.Name, err)
	}
	var route discovery.Route
	err := poll(ctx, 30*time.Second, func() error {
		d.admin.Invalidate(t.Name)
		r, err := d.admin.Route(ctx, t.Name)
		if err != nil {
			return err
		}
		if len(r.Partitions) != t.Partitions {
			return fmt.Errorf("%w: %s has %d partitions, the scenario %d", ErrTopicMismatch, t.Name, len(r.Partitions), t.Partitions)
		}
		for _, p := range r.Partitions {
			if p.Leader == "" {
				return fmt.Errorf("partition %d has no leader", p.ID)
			}
		}
		route = r
		return nil
	})
	if err != nil {
		return fmt.Errorf("external: topic %s: %w", t.Name, err)
	}
	base, err := d.ends(ctx, t.Name, route)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.topic, d.base = t.Name, base
	d.mu.Unlock()
	for p, off := range base {
		if off > 0 {
			d.log.Info("reusing topic: older messages are read but not recorded", "topic", t.Name, "partition", p, "offset", off)
		}
	}
	return nil
}

// ends asks each partition's leader for its log end offset.
func (d *deployment) ends(ctx context.Context, topic string, r discovery.Route) (map[int32]int64, error) {
	c := kclient.New(kclient.Config{ClientID: "brokerlab-admin"})
	defer c.Close()
	base := map[int32]int64{}
	for _, p := range r.Partitions {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		off, err := c.ListOffsets(rctx, p.Leader, topic, p.ID, kclient.Latest)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("external: end offset of %s/%d: %w", topic, p.ID, err)
		}
		base[p.ID] = off
	}
	return base, nil
}

// NewProducer returns brokerlab's Kafka producer for cfg.
func (d *deployment) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	if err := d.checkTopic(cfg.Topic); err != nil {
		return nil, err
	}
	return d.clients.NewProducer(cfg)
}

// NewConsumer returns brokerlab's Kafka consumer for cfg, recording only
// messages at or after the offsets the partitions ended at on CreateTopic.
func (d *deployment) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	if err := d.checkTopic(cfg.Topic); err != nil {
		return nil, err
	}
	c, err := d.clients.NewConsumer(cfg)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	base := d.base
	d.mu.Unlock()
	return &consumer{Consumer: c, base: base}, nil
}

func (d *deployment) checkTopic(topic string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.topic == "" || topic != d.topic {
		return fmt.Errorf("external: topic %q was not created", topic)
	}
	return nil
}

// consumer filters out what a reused topic held before the run.
type consumer struct {
	scenarios.Consumer
	base map[int32]int64
}

func (c *consumer) Run(ctx context.Context, sink func(history.Receive)) error {
	return c.Consumer.Run(ctx, func(r history.Receive) {
		if r.Offset >= c.base[r.Partition] {
			sink(r)
		}
	})
}

// Apply skips every fault: brokerlab cannot inject faults into a cluster it
// does not run.
func (d *deployment) Apply(context.Context, scenario.Step, string) (string, error) {
	return "", fmt.Errorf("%w: kafka-external injects no faults into an external cluster", scenarios.ErrNotApplicable)
}

// Detected is always zero: the external control plane is not observed.
func (d *deployment) Detected(string, time.Time) time.Time { return time.Time{} }

// Converged is always zero: no fault is ever applied.
func (d *deployment) Converged(string, time.Time) time.Time { return time.Time{} }

// ControlPlane returns no samples: a Kafka cluster's controller traffic is
// not visible to its clients.
func (d *deployment) ControlPlane() []analysis.CPSample { return nil }

// Close releases the admin client; the topic and its data stay.
func (d *deployment) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.admin.Close()
}

// poll calls f every 50 ms until it succeeds, ctx ends or timeout passes; a
// topic that exists with another shape ends it at once.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	return ipoll.Until(ctx, timeout, 50*time.Millisecond, func() error {
		err := f()
		if errors.Is(err, ErrTopicMismatch) {
			return ipoll.Stop(err)
		}
		return err
	})
}
