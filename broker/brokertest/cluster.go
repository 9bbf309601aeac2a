package brokertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/memplane"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// Timeout bounds every wait of the helper (start, leader election).
const Timeout = 15 * time.Second

// Option configures a Cluster.
type Option func(*options)

type options struct {
	brokers  int
	mutate   []func(*broker.Config)
	cp       func(id int32) broker.ControlPlane
	nw       *faultnet.Network
	logLevel slog.Level
}

// Brokers sets how many brokers start, with ids 1..n. Default 3.
func Brokers(n int) Option { return func(o *options) { o.brokers = n } }

// WithConfig changes each broker's configuration after the helper has filled
// it in (NodeID, Listen, DataDir, Dial, Logger and fast test timings are set;
// clear DataDir to keep logs in memory). Several are applied in order.
func WithConfig(f func(*broker.Config)) Option {
	return func(o *options) { o.mutate = append(o.mutate, f) }
}

// WithControlPlane makes f supply each broker's control plane, called again
// on every Restart. The default hands out handles of one memplane.Plane
// (Cluster.Plane); with this option Cluster.Plane is nil.
func WithControlPlane(f func(id int32) broker.ControlPlane) Option {
	return func(o *options) { o.cp = f }
}

// WithNetwork uses nw instead of a Network of the cluster's own; the caller
// closes it.
func WithNetwork(nw *faultnet.Network) Option { return func(o *options) { o.nw = nw } }

// LogLevel sets the level of the logs routed to t.Log. Default slog.LevelWarn.
func LogLevel(l slog.Level) Option { return func(o *options) { o.logLevel = l } }

// Cluster is a set of brokers running in the test's process on loopback
// ports. Its methods fail the test on error, so call them from the test's
// goroutine; Broker, Addrs and LeaderOf may be called from any goroutine.
type Cluster struct {
	// Plane is the control plane of every broker, nil with WithControlPlane.
	Plane *memplane.Plane
	// Net carries every connection between brokers. Brokers are named
	// Name(id) ("broker-1"); dial clients through Net.Dialer("client") to
	// subject them to faults too.
	Net *faultnet.Network

	t      testing.TB
	log    *slog.Logger
	opts   options
	newCP  func(id int32) broker.ControlPlane
	dir    string
	mu     sync.Mutex // guards nodes and their fields
	nodes  map[int32]*node
	closed bool
}

// node is one broker id across restarts.
type node struct {
	id      int32
	cfg     broker.Config // kept for restarts: same data dir, port if free
	b       *broker.Broker
	cp      broker.ControlPlane
	running bool
}

// Name is the faultnet node name of broker id.
func Name(id int32) string { return fmt.Sprintf("broker-%d", id) }

// New starts the brokers, waits until each sees all the others, and
// registers a cleanup that closes everything.
func New(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	o := options{brokers: 3, logLevel: slog.LevelWarn}
	for _, opt := range opts {
		opt(&o)
	}
	if o.brokers < 1 {
		t.Fatalf("brokertest: %d brokers", o.brokers)
	}
	log := testutil.Logger(t, o.logLevel) // first, so it outlives every cleanup below
	c := &Cluster{t: t, log: log, opts: o, dir: t.TempDir(), nodes: make(map[int32]*node), Net: o.nw, newCP: o.cp}
	if c.Net == nil {
		c.Net = faultnet.New(log.With("component", "faultnet"))
		t.Cleanup(func() { c.Net.Close() })
	}
	if c.newCP == nil {
		c.Plane = memplane.New(memplane.Options{Logger: log.With("component", "memplane")})
		t.Cleanup(func() { c.Plane.Close() })
		c.newCP = func(int32) broker.ControlPlane { return c.Plane.Handle() }
	}
	t.Cleanup(c.close)
	for id := int32(1); id <= int32(o.brokers); id++ {
		n := &node{id: id, cfg: c.config(id)}
		c.nodes[id] = n
		if err := c.start(n); err != nil {
			t.Fatalf("brokertest: start broker %d: %v", id, err)
		}
	}
	c.awaitMembership()
	return c
}

// config is the configuration broker id starts with.
func (c *Cluster) config(id int32) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.NodeID = id
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(c.dir, Name(id))
	cfg.Dial = c.Net.Dialer(Name(id))
	cfg.Logger = c.log
	// The fast timing profile, so failures show within seconds.
	cfg.ReplicaLagMax = 3 * time.Second
	cfg.ReplicaFetchWait = 200 * time.Millisecond
	cfg.ReplicaBackoff = 50 * time.Millisecond
	for _, f := range c.opts.mutate {
		f(&cfg)
	}
	return cfg
}

// start runs a new broker instance for n, on its previous port when that is
// free (a restarted Kafka broker keeps its listener), else on a new one.
func (c *Cluster) start(n *node) error {
	b, cp, err := c.launch(n.cfg, n.id)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && n.cfg.Listen != "127.0.0.1:0" {
		c.log.Warn("brokertest: previous port taken, using a new one", "node-id", n.id, "listen", n.cfg.Listen)
		n.cfg.Listen = "127.0.0.1:0"
		b, cp, err = c.launch(n.cfg, n.id)
	}
	if err != nil {
		return err
	}
	c.Net.Register(Name(n.id), b.Addr())
	c.mu.Lock()
	n.b, n.cp, n.running = b, cp, true
	if n.cfg.Advertise == "" {
		n.cfg.Listen = b.Addr()
	}
	c.mu.Unlock()
	return nil
}

func (c *Cluster) launch(cfg broker.Config, id int32) (*broker.Broker, broker.ControlPlane, error) {
	cp := c.newCP(id)
	b, err := broker.New(cfg, cp)
	if err != nil {
		cp.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		b.Kill()
		cp.Close()
		return nil, nil, err
	}
	return b, cp, nil
}

// awaitMembership waits until every running broker's view lists every
// running broker.
func (c *Cluster) awaitMembership() {
	c.t.Helper()
	testutil.Eventually(c.t, Timeout, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, n := range c.sortedLocked() {
			if !n.running {
				continue
			}
			v := n.b.View()
			for _, m := range c.nodes {
				if _, ok := v.Broker(m.id); m.running && !ok {
					return fmt.Errorf("broker %d does not see broker %d yet", n.id, m.id)
				}
			}
		}
		return nil
	})
}

// IDs returns every broker id, running or not.
func (c *Cluster) IDs() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []int32
	for _, n := range c.sortedLocked() {
		ids = append(ids, n.id)
	}
	return ids
}

// Broker returns the running instance of broker id, or nil.
func (c *Cluster) Broker(id int32) *broker.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[id]; n != nil && n.running {
		return n.b
	}
	return nil
}

// Running reports whether broker id is running.
func (c *Cluster) Running(id int32) bool { return c.Broker(id) != nil }

// Addrs returns the addresses of the running brokers, by id.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.sortedLocked() {
		if n.running {
			out = append(out, n.b.Addr())
		}
	}
	return out
}

// Kill crashes broker id (broker.Kill: nothing flushed, no deregistration).
// With the memplane, leadership stays until the test calls Plane.Failover.
func (c *Cluster) Kill(id int32) {
	c.t.Helper()
	c.takeDown(id, func(b *broker.Broker) error { b.Kill(); return nil })
}

// takeDown ends running broker id with end and marks it down.
func (c *Cluster) takeDown(id int32, end func(*broker.Broker) error) error {
	c.t.Helper()
	n := c.runningNode(id)
	err := end(n.b)
	c.mu.Lock()
	n.running = false
	c.mu.Unlock()
	return err
}

// PowerLoss crashes broker id as a power failure would (broker.PowerLoss):
// its logs lose every write no fsync covered. Restart brings it back on
// what survived.
func (c *Cluster) PowerLoss(id int32) {
	c.t.Helper()
	c.takeDown(id, func(b *broker.Broker) error { b.PowerLoss(); return nil })
}

// Stop shuts broker id down gracefully (broker.Close).
func (c *Cluster) Stop(id int32) {
	c.t.Helper()
	if err := c.takeDown(id, (*broker.Broker).Close); err != nil {
		c.t.Fatalf("brokertest: stop broker %d: %v", id, err)
	}
}

// Restart starts a new instance of a stopped broker with the same
// configuration and data dir, a new control-plane handle, and its name
// registered again in Net.
func (c *Cluster) Restart(id int32) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	c.mu.Unlock()
	switch {
	case n == nil:
		c.t.Fatalf("brokertest: no broker %d", id)
	case n.running:
		c.t.Fatalf("brokertest: restart broker %d: it is running; Kill or Stop it first", id)
	}
	if err := c.start(n); err != nil {
		c.t.Fatalf("brokertest: restart broker %d: %v", id, err)
	}
}

func (c *Cluster) runningNode(id int32) *node {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	c.mu.Unlock()
	if n == nil || !n.running {
		c.t.Fatalf("brokertest: broker %d is not running", id)
	}
	return n
}

// LeaderOf returns the leader of a partition as the control plane has it
// (-1: none or unknown). Without the memplane it is read from the newest
// view (highest leader epoch) any running broker holds.
func (c *Cluster) LeaderOf(topic string, partition int32) int32 {
	st, ok := c.state(topic, partition)
	if !ok {
		return -1
	}
	return st.Leader
}

// state returns the newest known state of a partition.
func (c *Cluster) state(topic string, partition int32) (broker.PartitionState, bool) {
	if c.Plane != nil {
		return c.Plane.State(topic, partition)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var best broker.PartitionState
	found := false
	for _, n := range c.nodes {
		if !n.running {
			continue
		}
		tv, ok := n.b.View().Topic(topic)
		if !ok || int(partition) >= len(tv.Partitions) || partition < 0 {
			continue
		}
		if st := tv.Partitions[partition]; !found || st.LeaderEpoch > best.LeaderEpoch {
			best, found = st, true
		}
	}
	return best, found
}

// WaitLeader waits until the partition has a leader that is running and
// acts as leader in the current leader epoch, and returns its id.
func (c *Cluster) WaitLeader(topic string, partition int32) int32 {
	c.t.Helper()
	return c.waitLeader(c.t, topic, partition)
}

func (c *Cluster) waitLeader(t testing.TB, topic string, partition int32) int32 {
	t.Helper()
	var leader int32
	testutil.Eventually(t, Timeout, func() error {
		st, ok := c.state(topic, partition)
		switch {
		case !ok:
			return fmt.Errorf("%s/%d: no such partition", topic, partition)
		case st.Leader < 0:
			return fmt.Errorf("%s/%d: no leader", topic, partition)
		}
		b := c.Broker(st.Leader)
		if b == nil {
			return fmt.Errorf("%s/%d: leader %d is not running", topic, partition, st.Leader)
		}
		for _, rs := range b.Status() {
			if rs.Topic == topic && rs.Partition == partition && rs.Role == "leader" && rs.LeaderEpoch == st.LeaderEpoch {
				leader = st.Leader
				return nil
			}
		}
		return fmt.Errorf("%s/%d: broker %d does not lead in epoch %d yet", topic, partition, st.Leader, st.LeaderEpoch)
	})
	return leader
}

// WaitISR waits until the partition's ISR, as the control plane has it,
// contains every id in want.
func (c *Cluster) WaitISR(topic string, partition int32, want ...int32) {
	c.t.Helper()
	testutil.Eventually(c.t, Timeout, func() error {
		st, ok := c.state(topic, partition)
		if !ok {
			return fmt.Errorf("%s/%d: no such partition", topic, partition)
		}
		for _, id := range want {
			if !st.InISR(id) {
				return fmt.Errorf("%s/%d: ISR %v lacks %d", topic, partition, st.ISR, id)
			}
		}
		return nil
	})
}

// CreateTopic creates a topic through a running broker's control plane and
// waits until every partition has a leader that knows it.
func (c *Cluster) CreateTopic(t testing.TB, cfg broker.TopicConfig) {
	t.Helper()
	var cp broker.ControlPlane
	c.mu.Lock()
	for _, n := range c.sortedLocked() {
		if n.running {
			cp = n.cp
			break
		}
	}
	c.mu.Unlock()
	if cp == nil {
		t.Fatalf("brokertest: create topic %q: no broker is running", cfg.Name)
	}
	// A broker just (re)started may not be registered yet, and replicas
	// are placed over the registered ones.
	c.awaitMembership()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := cp.CreateTopics(ctx, []broker.TopicConfig{cfg})[0]; err != nil {
		t.Fatalf("brokertest: create topic %q: %v", cfg.Name, err)
	}
	for p := range cfg.Partitions {
		c.waitLeader(t, cfg.Name, p)
	}
}

// sortedLocked returns the nodes by id. Lock should be held.
func (c *Cluster) sortedLocked() []*node {
	out := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *node) int { return int(a.id - b.id) })
	return out
}

// close shuts every running broker down, in parallel.
func (c *Cluster) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var running []*node
	for _, n := range c.nodes {
		if n.running {
			running = append(running, n)
			n.running = false
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range running {
		wg.Go(func() {
			if err := n.b.Close(); err != nil {
				c.log.Warn("brokertest: close broker", "node-id", n.id, "error", err)
			}
		})
	}
	wg.Wait()
}
