package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// RouteLog records the route changes of every client, so that a runner can
// tell when all of them moved off a failed node.
type RouteLog struct {
	// Forward, when set, also receives every change Record keeps (a remote
	// load generator passes its clients' changes on to the runner).
	Forward func(discovery.Change)

	mu      sync.Mutex
	changes []discovery.Change
}

// Record keeps one change; it is an OnRoute callback.
func (l *RouteLog) Record(c discovery.Change) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
	if l.Forward != nil {
		l.Forward(c)
	}
}

// Converged returns when the last client stopped using addr after since:
// every (client, partition) whose route was addr at since must have changed
// to another address (or none); the latest such change is the answer. Zero
// when a client never moved or none used addr.
func (l *RouteLog) Converged(addr string, since time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	type key struct {
		client    string
		partition int32
	}
	current := map[key]string{}
	moved := map[key]time.Time{}
	for _, c := range l.changes {
		if c.Client == "" {
			continue // a discovery's own refresh, not a client using it
		}
		k := key{c.Client, c.Partition}
		if !c.At.After(since) {
			current[k] = c.Addr
			continue
		}
		if current[k] == addr {
			if _, ok := moved[k]; !ok && c.Addr != addr {
				moved[k] = c.At
			}
		}
	}
	var last time.Time
	users := 0
	for k, a := range current {
		if a != addr {
			continue
		}
		users++
		at, ok := moved[k]
		if !ok {
			return time.Time{}
		}
		if at.After(last) {
			last = at
		}
	}
	if users == 0 {
		return time.Time{}
	}
	return last
}

// KafkaClients builds brokerlab's Kafka-protocol producers and consumers for
// a deployment. Drivers of every runtime share it.
type KafkaClients struct {
	// NewDiscovery returns a fresh discovery for the client named name;
	// onChange must be set as its OnChange so that route changes the
	// client learns (not only those it acts on) count for convergence.
	NewDiscovery func(name string, onChange func(discovery.Change)) (discovery.Discovery, error)
	// Style is the producer's partitioning and retry style.
	Style producer.Style
	// Dial returns the dialer of the client named name; nil uses net.Dialer.
	Dial func(name string) kclient.DialFunc
	// Routes receives every client's route changes.
	Routes *RouteLog
	Logger *slog.Logger
}

// learned records a discovery's route change as its client's: a producer
// that stops writing to a dead master never sends a request that would show
// the move, but its route has moved.
func (k *KafkaClients) learned(name string) func(discovery.Change) {
	return func(c discovery.Change) {
		c.Client = name
		k.Routes.Record(c)
	}
}

func (k *KafkaClients) dial(name string) kclient.DialFunc {
	if k.Dial == nil {
		return nil
	}
	return k.Dial(name)
}

// NewProducer returns a producer of the workload's share cfg.
func (k *KafkaClients) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	name := fmt.Sprintf("producer-%d", cfg.ID)
	d, err := k.NewDiscovery(name, k.learned(name))
	if err != nil {
		return nil, err
	}
	pc := producer.DefaultConfig()
	if k.Style == producer.StyleRocketMQ {
		pc = producer.DefaultRocketMQConfig()
	}
	w := cfg.Workload
	pc.Discovery, pc.Topic, pc.ProducerID, pc.Name = d, cfg.Topic, cfg.ID, name
	pc.Rate, pc.MessageSize, pc.Keys = cfg.Rate, w.MessageSize, w.Keys > 0
	if cfg.Rate > 0 {
		// Exactly the schedule's messages, even if the producer starts
		// late; the deadline in Run is the backstop.
		pc.Count = int64(cfg.Rate * cfg.Duration.Seconds())
	}
	if w.BatchSize > 0 {
		pc.BatchSize = w.BatchSize
	}
	pc.Linger, pc.Acks, pc.Retries = w.Linger, int16(w.Acks), w.Retries
	if w.Timeout > 0 {
		pc.DeliveryTimeout, pc.DrainTimeout = w.Timeout, w.Timeout
		pc.RequestTimeout = min(pc.RequestTimeout, w.Timeout)
	}
	pc.OnRoute = k.Routes.Record
	pc.Dial = k.dial(name)
	pc.Logger = k.Logger.With("client", name)
	p, err := producer.New(pc)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return &kafkaProducer{p: p, d: d, start: cfg.Start, duration: cfg.Duration, style: pc.Style}, nil
}

type kafkaProducer struct {
	p        *producer.Producer
	d        discovery.Discovery
	start    time.Time
	duration time.Duration
	style    producer.Style
}

// RetryOrder says how the producer's style retries (scenarios.RetryReporter).
func (p *kafkaProducer) RetryOrder() string { return p.style.RetryOrder() }

// Run starts the schedule at Start and ends it at Start+Duration.
func (p *kafkaProducer) Run(ctx context.Context, sink func(history.Send)) error {
	defer p.d.Close()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(p.start)):
	}
	rctx, cancel := context.WithDeadline(ctx, p.start.Add(p.duration))
	defer cancel()
	return p.p.Run(rctx, sink)
}

// NewConsumer returns a consumer of cfg's partitions.
func (k *KafkaClients) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	name := fmt.Sprintf("consumer-%d", cfg.ID)
	d, err := k.NewDiscovery(name, k.learned(name))
	if err != nil {
		return nil, err
	}
	cc := consumer.DefaultConfig()
	cc.Discovery, cc.Topic, cc.ConsumerID, cc.Name, cc.Partitions = d, cfg.Topic, cfg.ID, name, cfg.Partitions
	cc.MaxWait = 100 * time.Millisecond
	cc.OnRoute = k.Routes.Record
	cc.Dial = k.dial(name)
	cc.Logger = k.Logger.With("client", name)
	c, err := consumer.New(cc)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return &kafkaConsumer{c: c, d: d}, nil
}

type kafkaConsumer struct {
	c *consumer.Consumer
	d discovery.Discovery

	mu    sync.Mutex
	since time.Time
}

func (c *kafkaConsumer) Run(ctx context.Context, sink func(history.Receive)) error {
	defer c.d.Close()
	return c.c.Run(ctx, sink)
}

// CaughtUp reports whether the consumer has read up to high watermarks it
// learned after the first CaughtUp call (when the producers had finished).
func (c *kafkaConsumer) CaughtUp(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if c.since.IsZero() {
		c.since = time.Now()
	}
	since := c.since
	c.mu.Unlock()
	return c.c.CaughtUp(since), nil
}

// Reads implements scenarios.PartitionReader.
func (c *kafkaConsumer) Reads() []analysis.PartitionRead {
	ps := c.c.Progress()
	out := make([]analysis.PartitionRead, len(ps))
	for i, p := range ps {
		out[i] = analysis.PartitionRead{Partition: p.Partition, Position: p.Position, HighWatermark: p.HighWatermark, LastErr: p.LastErr}
	}
	return out
}

// LogReaches implements scenarios.PartitionReader.
func (c *kafkaConsumer) LogReaches(ctx context.Context, partition int32, offset int64) (bool, error) {
	return c.c.LogReaches(ctx, partition, offset)
}

// BootstrapConfig is the Kafka-style discovery of a scenario's clients:
// metadata max age from the scenario's timings and, as Kafka's
// request.timeout.ms bounds Metadata and Produce alike, the producers'
// request timeout (at most the workload's send timeout). Brokers, Dial,
// OnChange and Logger are still to be set.
func BootstrapConfig(spec scenario.Spec) discovery.BootstrapConfig {
	cfg := discovery.DefaultBootstrapConfig()
	cfg.MetadataMaxAge = spec.Timings().MetadataMaxAge
	if t := spec.Workload.Timeout; t > 0 {
		cfg.RequestTimeout = min(cfg.RequestTimeout, t)
	}
	return cfg
}

// NameServerTimings are a scenario's name-server timings: the profile's,
// with the scenario's heartbeat, scan, expiry and route poll.
func NameServerTimings(spec scenario.Spec) nameserver.Timings {
	t := nameserver.Production()
	if spec.Cluster.Profile == scenario.ProfileFast {
		t = nameserver.Fast()
	}
	st := spec.Timings()
	t.Heartbeat, t.Scan, t.Expiry, t.RoutePoll = st.Heartbeat, st.ScanInterval, st.BrokerExpiry, st.RoutePoll
	return t
}

// NameServersConfig is the RocketMQ-style discovery of a scenario's
// clients from the name servers at addrs: the profile's defaults, the
// scenario's route poll, fault avoidance with the timings' latency table.
// Dial, OnChange and Logger are still to be set.
func NameServersConfig(spec scenario.Spec, t nameserver.Timings, addrs []string) discovery.NameServersConfig {
	cfg := discovery.DefaultNameServersConfig()
	if spec.Cluster.Profile == scenario.ProfileFast {
		cfg = discovery.FastNameServersConfig()
	}
	cfg.NameServers = addrs
	cfg.PollInterval = spec.Timings().RoutePoll
	cfg.FaultAvoidance = true
	cfg.Faults = t.Faults
	return cfg
}
