package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeInProcess, TopologyName, Start)
}

var (
	// ErrNoTopic: a client or fault needs the topic before CreateTopic.
	ErrNoTopic = errors.New("jetstream: topic not created")
	// ErrNoLeader: a leader-of or follower-of target has no leader now.
	ErrNoLeader = errors.New("jetstream: stream has no leader")
)

// maxReplicas is JetStream's limit on a stream's replicas.
const maxReplicas = 5

// connectTimeout bounds one client dial (nats.go's default connect timeout).
const connectTimeout = 2 * time.Second

// StreamName is the stream that holds partition p of topic: "<topic>-<p>",
// with the dots of the topic (illegal in stream names) turned into '_'.
func StreamName(topic string, p int32) string {
	return strings.ReplaceAll(topic, ".", "_") + "-" + strconv.Itoa(int(p))
}

// Subject is the subject partition p of topic is published on: "<topic>.<p>".
func Subject(topic string, p int32) string {
	return topic + "." + strconv.Itoa(int(p))
}

// deployment is one embedded JetStream cluster under a scenario.
type deployment struct {
	env scenarios.Env
	log *slog.Logger
	c   *cluster
	w   *watcher

	admin   *nats.Conn
	adminJS jetstream.JetStream

	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	topic   string
	parts   int
	clients []*clientTrack
	conns   map[*nats.Conn]struct{} // open client connections, closed by Close
	faults  *nodes.Faults
	delays  map[[2]int]bool // links a delay fault slowed, to heal with their node
	closed  bool
	// streamServers are the servers holding each partition's stream, as found
	// after CreateTopic (nil until then or when unknown); see Placement.
	streamServers map[int32][]int

	// sampleMu serialises route samples; routeTotals (under mu) is the
	// cumulative route traffic, see ControlPlane.
	sampleMu    sync.Mutex
	routeTotals routeCount
}

// Start starts an embedded JetStream cluster of env.Spec.Cluster.Brokers
// servers on loopback ports, with file storage under env.DataDir, and
// returns once it has a meta leader.
func Start(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	n := env.Spec.Cluster.Brokers
	if n < 1 {
		return nil, fmt.Errorf("jetstream: cluster.brokers %d: need at least one server", n)
	}
	if env.DataDir == "" {
		return nil, errors.New("jetstream: no data directory")
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("topology", TopologyName)
	sync := syncFor(env.Spec.Cluster)
	log.Info("file store flush policy", "policy", sync.String(), "fsync", env.Spec.Cluster.Fsync)
	c, err := newCluster(ctx, log, env.DataDir, n, maxPayload(env.Spec.Workload.MessageSize), sync)
	if err != nil {
		return nil, err
	}
	d := &deployment{
		env:    env,
		log:    log,
		c:      c,
		stop:   make(chan struct{}),
		conns:  map[*nats.Conn]struct{}{},
		delays: map[[2]int]bool{},
	}
	d.faults = nodes.NewFaults(TopologyName, d)
	d.w = &watcher{c: c, history: newLeaderHistory(), streams: map[string]string{}}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.w.run(d.stop)
	}()
	d.admin, err = d.connect("admin", nil)
	if err == nil {
		d.adminJS, err = jetstream.New(d.admin)
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("jetstream: admin connection: %w", err)
	}
	return d, nil
}

// maxPayload is the server's max_payload: the default 1 MiB, or enough for
// the scenario's messages and their headers.
func maxPayload(size int) int32 {
	const def, headroom, limit = 1 << 20, 64 << 10, 64 << 20
	if size+headroom <= def {
		return def
	}
	return int32(min(size+headroom, limit))
}

// connect opens a client connection named name through faultnet, to any
// server, reconnecting forever with nats.go's defaults otherwise. tr, if
// set, records which server the connection uses.
func (d *deployment) connect(name string, tr *clientTrack) (*nats.Conn, error) {
	d.c.addClient(name)
	dial := d.c.nw.Dialer(name)
	opts := []nats.Option{
		nats.Name(name),
		nats.SetCustomDialer(dialer(dial)),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			d.log.Debug("nats client", "client", name, "error", err)
		}),
	}
	if tr != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(*nats.Conn, error) { tr.conn(time.Now(), -1) }),
			nats.ReconnectHandler(func(nc *nats.Conn) { tr.conn(time.Now(), d.c.nodeIndex(nc.ConnectedServerName())) }),
		)
	}
	nc, err := nats.Connect(strings.Join(d.c.clientURLs(), ","), opts...)
	if err != nil {
		return nil, err
	}
	if tr != nil {
		tr.conn(time.Now(), d.c.nodeIndex(nc.ConnectedServerName()))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		nc.Close()
		return nil, errors.New("jetstream: deployment closed")
	}
	d.conns[nc] = struct{}{}
	return nc, nil
}

// release closes a client connection and forgets it.
func (d *deployment) release(nc *nats.Conn) {
	nc.Close()
	d.mu.Lock()
	delete(d.conns, nc)
	d.mu.Unlock()
}

// dialer adapts a faultnet dial function to nats.go.
type dialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	return f(ctx, network, addr)
}

// track registers a client for convergence figures.
func (d *deployment) track(name string) *clientTrack {
	tr := newClientTrack(name)
	d.mu.Lock()
	d.clients = append(d.clients, tr)
	d.mu.Unlock()
	return tr
}

// topicInfo returns the topic and its partition count; ErrNoTopic before
// CreateTopic.
func (d *deployment) topicInfo(topic string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.topic == "" || d.topic != topic {
		return 0, fmt.Errorf("%w: %q", ErrNoTopic, topic)
	}
	return d.parts, nil
}

// CreateTopic creates one stream per partition (see StreamName and Subject)
// with the topic's replication, file storage and limits retention, and
// returns once every stream has a leader.
func (d *deployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	if t.Partitions < 1 {
		return fmt.Errorf("jetstream: topic %q: %d partitions", t.Name, t.Partitions)
	}
	if t.Replication < 1 || t.Replication > maxReplicas || t.Replication > len(d.c.nodes) {
		return fmt.Errorf("jetstream: topic %q: replication %d must be 1..%d and at most the %d servers", t.Name, t.Replication, maxReplicas, len(d.c.nodes))
	}
	groups := map[string]string{}
	for p := range int32(t.Partitions) {
		cfg := jetstream.StreamConfig{
			Name:      StreamName(t.Name, p),
			Subjects:  []string{Subject(t.Name, p)},
			Replicas:  t.Replication,
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
		}
		var info *jetstream.StreamInfo
		// The meta leader may not know every peer yet right after start.
		err := poll(ctx, 30*time.Second, func() error {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s, err := d.adminJS.CreateOrUpdateStream(cctx, cfg)
			if err != nil {
				return err
			}
			info = s.CachedInfo()
			return nil
		})
		if err != nil {
			return fmt.Errorf("jetstream: create stream %s: %w", cfg.Name, err)
		}
		if info.Cluster != nil {
			groups[cfg.Name] = info.Cluster.RaftGroup
		} else {
			groups[cfg.Name] = ""
		}
	}
	d.mu.Lock()
	d.topic, d.parts = t.Name, t.Partitions
	d.mu.Unlock()
	d.w.watchStreams(groups)
	err := poll(ctx, 30*time.Second, func() error {
		for s := range groups {
			if d.w.history.current(s) < 0 {
				return fmt.Errorf("stream %s has no leader", s)
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := d.adminJS.Stream(cctx, s)
			cancel()
			if err != nil {
				return fmt.Errorf("stream %s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if d.c.clustered() {
		d.spreadLeaders(ctx, t)
		return nil
	}
	d.setMembers(t.Partitions, func(int32) ([]int, error) { return []int{0}, nil })
	return nil
}

// spreadLeaders moves stream leaders so that they are spread over the
// servers as Kafka spreads preferred leaders: partition p goes to the member
// of its stream that leads the fewest partitions so far, ties broken from
// server p mod N on (with every server a member: server p mod N). JetStream
// picks a random member instead, which can put every partition's leader on
// one server and make "leader-of T/0" a fault on the whole topic. Leaders are
// moved with JetStream's leader step-down naming the preferred server (what
// `nats stream cluster balance` does); a move that does not happen is
// logged and left.
func (d *deployment) spreadLeaders(ctx context.Context, t scenario.Topic) {
	n := len(d.c.nodes)
	led := make([]int, n)
	all := map[int32][]int{}
	defer func() { d.setMembers(t.Partitions, func(p int32) ([]int, error) { return all[p], nil }) }()
	for p := range int32(t.Partitions) {
		stream := StreamName(t.Name, p)
		members, err := d.members(ctx, stream)
		all[p] = members
		if err != nil || len(members) == 0 {
			d.log.Warn("stream members", "stream", stream, "error", err)
			continue
		}
		want := members[0]
		for _, m := range members[1:] {
			rot := func(i int) int { return (i - int(p)%n + n) % n }
			if led[m] < led[want] || led[m] == led[want] && rot(m) < rot(want) {
				want = m
			}
		}
		led[want]++
		if err := d.moveLeader(ctx, stream, want); err != nil {
			d.log.Warn("stream leader not moved", "stream", stream, "to", nodeName(want), "error", err)
		}
	}
}

// members returns the servers that hold stream.
func (d *deployment) members(ctx context.Context, stream string) ([]int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := d.adminJS.Stream(cctx, stream)
	if err != nil {
		return nil, err
	}
	ci := s.CachedInfo().Cluster
	if ci == nil {
		return nil, nil
	}
	var out []int
	if i := d.c.nodeIndex(ci.Leader); i >= 0 {
		out = append(out, i)
	}
	for _, r := range ci.Replicas {
		if i := d.c.nodeIndex(r.Name); i >= 0 {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out, nil
}

// moveLeader asks the leader of stream to hand over to server to and waits
// until it has.
func (d *deployment) moveLeader(ctx context.Context, stream string, to int) error {
	if d.w.history.current(stream) == to {
		return nil
	}
	req, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": nodeName(to)}})
	if err != nil {
		return err
	}
	return poll(ctx, 15*time.Second, func() error {
		if d.w.history.current(stream) == to {
			return nil
		}
		msg, err := d.admin.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		if err != nil {
			return err
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return errors.New(resp.Error.Description)
		}
		// Wait for the hand-over before asking again.
		return poll(ctx, 3*time.Second, func() error {
			if d.w.history.current(stream) != to {
				return fmt.Errorf("leader is broker %d", d.w.history.current(stream))
			}
			return nil
		})
	})
}

// NewProducer returns a producer for cfg.
func (d *deployment) NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error) {
	if _, err := d.topicInfo(cfg.Topic); err != nil {
		return nil, err
	}
	if err := checkWorkload(cfg); err != nil {
		return nil, err
	}
	return &producer{d: d, cfg: cfg, name: "producer-" + strconv.Itoa(int(cfg.ID))}, nil
}

// NewConsumer returns a consumer for cfg.
func (d *deployment) NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error) {
	parts, err := d.topicInfo(cfg.Topic)
	if err != nil {
		return nil, err
	}
	ps := cfg.Partitions
	if ps == nil {
		for p := range int32(parts) {
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		if p < 0 || int(p) >= parts {
			return nil, fmt.Errorf("jetstream: consumer %d: partition %d out of range [0, %d)", cfg.ID, p, parts)
		}
	}
	return newConsumer(d, cfg, ps), nil
}

// Close stops the watcher, every client connection and every server, and
// removes the servers' store directories.
func (d *deployment) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()
	close(d.stop)
	d.wg.Wait()
	for nc := range conns {
		nc.Close()
	}
	d.c.close()
	var errs []error
	for _, n := range d.c.nodes {
		if err := os.RemoveAll(filepath.Join(d.c.dir, n.name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
