package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/mailbox"
	"github.com/brokerlab/brokerlab/internal/poll"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// RegistrarConfig configures a broker's side of the nameserver topology.
type RegistrarConfig struct {
	// NameServers are the host:port of every name server; the broker
	// registers with each of them.
	NameServers []string `yaml:"nameservers" json:"nameservers"`
	// Cluster and Group name the broker group (RocketMQ brokerClusterName,
	// brokerName).
	Cluster string `yaml:"cluster" json:"cluster"`
	Group   string `yaml:"group" json:"group"`
	// BrokerID is the broker's place in its group: 0 is the master, which
	// leads every queue of the group; larger ids are slaves.
	BrokerID int32 `yaml:"broker_id" json:"broker_id"`
	// HeartbeatInterval is how often the broker registers with every name
	// server (RocketMQ registerNameServerPeriod: 30 s).
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	// RoutePollInterval is how often the broker pulls routes and cluster
	// info to build its view (RocketMQ pollNameServerInterval: 30 s).
	RoutePollInterval time.Duration `yaml:"route_poll_interval" json:"route_poll_interval"`
	// MasterProbeInterval is how often a slave dials its group's master at
	// the address the routes last gave (RocketMQ's HA client reconnects to
	// its master every 5 s, whatever the name servers say). When the
	// answer disagrees with the view (the master answers but is not
	// routed, or is routed but does not answer) the slave pulls routes at
	// once instead of at the next poll. 0 turns the probe off. Masters
	// ignore it.
	MasterProbeInterval time.Duration `yaml:"master_probe_interval" json:"master_probe_interval"`
	// RequestTimeout bounds one request to a name server.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// Mode is the group's replication mode, "sync" (default) or "async";
	// the master's setting is the one that counts.
	Mode string `yaml:"replication_mode" json:"replication_mode"`
	// DataDir keeps the group's topic configuration (topics.json); empty
	// keeps it in memory only, so a restarted broker relearns it from the
	// routes of its group's other members.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// MaxFrameBytes is the largest frame accepted from a name server.
	MaxFrameBytes int `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// Controllers, when set, turns on controller mode (RocketMQ 5, see
	// ctrlmode.go): the controllers at these addresses decide the group's
	// master, and BrokerID only names the broker in its group.
	Controllers []string `yaml:"controllers" json:"controllers"`
	// ControllerHeartbeat is how often the broker heartbeats to the
	// controller leader in controller mode (RocketMQ
	// brokerHeartbeatInterval: 1 s).
	ControllerHeartbeat time.Duration `yaml:"controller_heartbeat" json:"controller_heartbeat"`
	// Dial opens connections to name servers; nil uses net.Dialer. Tests
	// pass faultnet's dialer here.
	Dial DialFunc `yaml:"-" json:"-"`
	// Logger receives the registrar's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultRegistrarConfig returns a registrar configuration with the
// production timings; NameServers and Group are still to be set.
func DefaultRegistrarConfig() RegistrarConfig { return Production().RegistrarConfig() }

// Validate reports the first invalid setting.
func (c RegistrarConfig) Validate() error {
	switch {
	case len(c.NameServers) == 0:
		return errors.New("nameserver: at least one name server address is required")
	case slices.Contains(c.NameServers, ""):
		return errors.New("nameserver: empty name server address")
	case c.Cluster == "":
		return errors.New("nameserver: cluster is required")
	case c.Group == "":
		return errors.New("nameserver: group is required")
	case c.BrokerID < 0:
		return errors.New("nameserver: broker id must be >= 0 (0 is the master)")
	case c.HeartbeatInterval <= 0:
		return errors.New("nameserver: heartbeat interval must be positive")
	case c.RoutePollInterval <= 0:
		return errors.New("nameserver: route poll interval must be positive")
	case c.MasterProbeInterval < 0:
		return errors.New("nameserver: master probe interval must not be negative")
	case c.RequestTimeout <= 0:
		return errors.New("nameserver: request timeout must be positive")
	case c.Mode != "" && c.Mode != ModeSync && c.Mode != ModeAsync:
		return fmt.Errorf("nameserver: replication mode %q (sync, async)", c.Mode)
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("nameserver: max frame bytes %d is below 1024", c.MaxFrameBytes)
	case len(c.Controllers) > 0 && c.ControllerHeartbeat <= 0:
		return errors.New("nameserver: controller heartbeat must be positive in controller mode")
	}
	return nil
}

func (c RegistrarConfig) mode() string {
	if c.Mode == "" {
		return ModeSync
	}
	return c.Mode
}

// RegistrarStats count one registrar's traffic to one name server. Byte
// counts include the 4-byte frame prefix.
type RegistrarStats struct {
	NameServer       string `json:"name_server"`
	Connected        bool   `json:"connected"`
	Registrations    int64  `json:"registrations"`
	RegisterBytesOut int64  `json:"register_bytes_out"`
	RegisterBytesIn  int64  `json:"register_bytes_in"`
	// Failures are registration attempts that failed, failed dials
	// included.
	Failures int64 `json:"failures"`
}

// Registrar connects one broker to the nameserver topology and implements
// broker.ControlPlane: it registers with every name server every heartbeat,
// holds the group's topic configuration, and builds the broker's views from
// the routes a name server reports.
type Registrar struct {
	cfg   RegistrarConfig
	log   *slog.Logger
	store *topicStore
	pool  *pool

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	registered chan struct{} // closed by the first accepted registration
	regOnce    sync.Once
	pollKick   chan struct{}
	pollOK     atomic.Bool // last poll succeeded (for logging changes only)
	pollSeq    atomic.Uint64

	mu           sync.Mutex // guards the fields below
	started      bool
	closed       bool
	deregistered bool
	self         broker.BrokerInfo
	sessions     []*session
	snap         *snapshot
	snapSeq      uint64 // pollSeq of snap
	snapEpoch    uint64 // name server epoch and version of snap
	snapVersion  uint64
	dirty        bool   // local changes (topics) not in the last view
	masterAddr   string // slave: the group master's address the routes last gave
	isr          map[partKey]*isrEntry
	views        *mailbox.Latest[broker.ClusterView] // to the broker, newest only, unchanged views skipped

	// Controller mode only (ctrlmode.go).
	ctrl        *controller.Client
	ctrlState   *controller.GroupState
	ctrlChanged chan struct{}              // closed and replaced at every new state
	caught      map[int32]map[partKey]bool // expansion requests: broker id -> partitions
}

var _ broker.ControlPlane = (*Registrar)(nil)

// NewRegistrar validates cfg and loads the group's topic configuration.
func NewRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	log = log.With("cluster", cfg.Cluster, "group", cfg.Group, "broker-id", cfg.BrokerID)
	store, err := openTopicStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var ctrl *controller.Client
	if len(cfg.Controllers) > 0 {
		ccfg := controller.ClientConfig{Controllers: cfg.Controllers, Cluster: cfg.Cluster, Group: cfg.Group,
			BrokerID: cfg.BrokerID + 1, HeartbeatInterval: cfg.ControllerHeartbeat, RequestTimeout: cfg.RequestTimeout,
			MaxFrameBytes: cfg.MaxFrameBytes, Dial: controller.DialFunc(cfg.Dial), Logger: log}
		if ctrl, err = controller.NewClient(ccfg); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Registrar{
		ctrl:        ctrl,
		ctrlChanged: make(chan struct{}),
		caught:      make(map[int32]map[partKey]bool),
		cfg:         cfg,
		log:         log,
		store:       store,
		pool:        newPool(cfg.NameServers, cfg.Dial, cfg.RequestTimeout, cfg.MaxFrameBytes, log),
		ctx:         ctx,
		cancel:      cancel,
		registered:  make(chan struct{}),
		pollKick:    make(chan struct{}, 1),
		isr:         make(map[partKey]*isrEntry),
		views:       mailbox.New(sameView),
	}, nil
}

// Register starts registering self with every name server and returns once
// one of them accepted the registration and the first view was delivered
// (or ctx ended: the registrar then stops and the error wraps
// broker.ErrControlPlaneDown).
func (r *Registrar) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	if self.ID < 0 || self.Addr == "" {
		return fmt.Errorf("nameserver: register: %w: node id %d, address %q", ErrBadRequest, self.ID, self.Addr)
	}
	if onView == nil {
		return fmt.Errorf("nameserver: register: %w: nil view callback", ErrBadRequest)
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return fmt.Errorf("nameserver: register: %w", ErrClosed)
	case r.started:
		r.mu.Unlock()
		return errors.New("nameserver: register: already registered")
	}
	r.started = true
	r.self = self
	r.log = r.log.With("node-id", self.ID)
	for _, addr := range r.cfg.NameServers {
		r.sessions = append(r.sessions, &session{r: r, addr: addr, kick: make(chan struct{}, 1)})
	}
	sessions := r.sessions
	r.mu.Unlock()

	r.goFunc(func() { r.views.Run(r.ctx.Done(), onView) })
	if r.ctrl != nil {
		if err := r.startController(ctx, self); err != nil {
			_ = r.Close()
			return err
		}
	}
	for _, s := range sessions {
		r.goFunc(func() { s.run(r.ctx) })
	}
	select {
	case <-r.registered:
	case <-ctx.Done():
		_ = r.Close()
		return fmt.Errorf("nameserver: register: %w: %w", ErrNoNameServer, ctx.Err())
	case <-r.ctx.Done():
		return fmt.Errorf("nameserver: register: %w", ErrClosed)
	}
	if err := r.poll(ctx); err != nil {
		r.offerLocalView() // the broker still needs a first view
	}
	r.goFunc(r.pollLoop)
	if r.ctrl == nil && r.cfg.BrokerID != MasterID && r.cfg.MasterProbeInterval > 0 { // controller mode: the controllers say who is master
		r.goFunc(r.probeMaster)
	}
	return nil
}

// goFunc runs f on a goroutine Close waits for.
func (r *Registrar) goFunc(f func()) { r.wg.Go(f) }

// markRegistered notes that a name server accepted a registration.
func (r *Registrar) markRegistered() {
	r.regOnce.Do(func() { close(r.registered) })
}

// Stats returns per-name-server counters of the registrations sent.
func (r *Registrar) Stats() []RegistrarStats {
	r.mu.Lock()
	sessions := slices.Clone(r.sessions)
	r.mu.Unlock()
	out := make([]RegistrarStats, len(sessions))
	for i, s := range sessions {
		out[i] = s.stats()
	}
	return out
}

// Deregister is a graceful leave. In controller mode the broker first
// leaves the controllers (controller.Client.Leave): a master is replaced by
// another member of the SyncStateSet before the call returns, and the
// broker's view follows. Then it tells every name server it leaves
// (RocketMQ's unregisterBrokerAll on shutdown) and stops heartbeats. A
// classic group has no master switch: there Deregister unregisters and
// returns broker.ErrNoHandoff. Views keep coming until Close.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	if r.deregistered {
		r.mu.Unlock()
		return nil
	}
	r.deregistered = true
	sessions := slices.Clone(r.sessions)
	r.mu.Unlock()
	var leaveErr error
	if r.ctrl != nil {
		if _, err := r.ctrl.Leave(ctx); err != nil {
			leaveErr = fmt.Errorf("nameserver: leave the controllers: %w", err)
		}
	}
	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.unregister(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(append(errs, leaveErr)...); err != nil {
		return err
	}
	if r.ctrl == nil {
		return broker.ErrNoHandoff
	}
	return nil
}

// Close stops heartbeats and polling and closes every connection; name
// servers drop the broker at once when they see its registration
// connection close. onView is not called after Close returns. Idempotent.
func (r *Registrar) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		sessions := slices.Clone(r.sessions)
		r.mu.Unlock()
		r.cancel()
		if r.ctrl != nil {
			_ = r.ctrl.Close()
		}
		for _, s := range sessions {
			s.closePeer()
		}
		r.pool.close()
	})
	r.wg.Wait()
	return nil
}

// topicsChanged re-registers with every name server now and refreshes the
// view, so a topic change is visible everywhere without waiting for the
// next heartbeat.
func (r *Registrar) topicsChanged() {
	r.mu.Lock()
	sessions := slices.Clone(r.sessions)
	r.dirty = true
	r.mu.Unlock()
	for _, s := range sessions {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	r.kickPoll()
}

func (r *Registrar) kickPoll() {
	select {
	case r.pollKick <- struct{}{}:
	default:
	}
}

// onPush serves a name server's request on a registration connection.
func (r *Registrar) onPush(p *peer, req inbound) {
	var (
		changed bool
		err     error
	)
	switch req.Type {
	case typeTopicConfig:
		var push topicConfigPush
		if err = decodeBody(req.Body, &push); err == nil {
			changed, err = r.store.put(push.Topic)
			if changed {
				r.log.Info("topic created", "topic", push.Topic.Name, "queues", push.Topic.Queues,
					"first-partition", push.Topic.FirstPartition)
			}
		}
	case typeTopicDelete:
		var push topicDeletePush
		if err = decodeBody(req.Body, &push); err == nil {
			changed, err = r.store.remove(push.Name)
			if changed {
				r.log.Info("topic deleted", "topic", push.Name)
			}
		}
	default:
		err = fmt.Errorf("%w: unknown request type %q", ErrBadRequest, req.Type)
	}
	if err != nil {
		r.log.Warn("name server request rejected", "type", req.Type, "error", err)
	}
	_, _ = p.reply(req.ID, struct{}{}, err)
	if changed {
		r.topicsChanged()
	}
}

// registerRequest is what the broker registers now.
func (r *Registrar) registerRequest() RegisterRequest {
	r.mu.Lock()
	self := r.self
	id, epoch := r.registeredIDLocked(), r.masterEpochLocked()
	r.mu.Unlock()
	return RegisterRequest{
		Cluster:     r.cfg.Cluster,
		Group:       r.cfg.Group,
		BrokerID:    id,
		NodeID:      self.ID,
		Addr:        self.Addr,
		Rack:        self.Rack,
		Mode:        r.cfg.mode(),
		MasterEpoch: epoch,
		Topics:      r.store.list(),
	}
}

func (r *Registrar) pollLoop() {
	poll.Every(r.ctx, r.cfg.RoutePollInterval, r.pollKick, func(time.Time) { _ = r.poll(r.ctx) })
}

// poll pulls all routes and the cluster info from a name server, adopts
// topics its group hosts that it lacks, and offers the new view. The name
// server answers "unchanged" when the registrar's copy is current, which
// keeps idle polls of many topics cheap.
func (r *Registrar) poll(ctx context.Context) error {
	seq := r.pollSeq.Add(1)
	r.mu.Lock()
	req := snapshotRequest{Epoch: r.snapEpoch, Version: r.snapVersion}
	r.mu.Unlock()
	var reply snapshotReply
	err := r.pool.do(ctx, 0, func(ctx context.Context, p *peer) error {
		_, err := p.call(ctx, typeSnapshot, req, &reply)
		return err
	})
	if err != nil {
		if r.pollOK.Swap(false) && r.ctx.Err() == nil {
			r.log.Warn("route poll failed, keeping the last view", "error", err)
		}
		return err
	}
	if !r.pollOK.Swap(true) {
		r.log.Debug("route poll succeeded")
	}
	var snap *snapshot
	if !reply.Unchanged {
		snap = newSnapshot(reply)
		if r.adopt(snap.routes) {
			r.topicsChanged()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.snapSeq {
		return nil // a poll that started later has answered already
	}
	r.snapSeq, r.snapEpoch, r.snapVersion = seq, reply.Epoch, reply.Version
	if snap != nil {
		r.snap = snap
		r.masterLocked() // remember the master's address while it is routed
	}
	if snap != nil || r.dirty {
		r.dirty = false
		r.views.Offer(r.viewLocked())
	}
	return nil
}

// probeMaster runs on a slave. RocketMQ's slave keeps dialling its master
// every 5 s whether the name servers route it or not, so it follows a
// restarted master within seconds; the route poll alone (30 s in
// production) would leave a returning master without followers (its high
// watermark stuck, acks=all failing, nothing readable) for that long. Every
// MasterProbeInterval it dials the master's last known address; when the
// answer disagrees with the last route (reachable but not routed, or routed
// but unreachable) it pulls the routes at once.
func (r *Registrar) probeMaster() {
	poll.Every(r.ctx, r.cfg.MasterProbeInterval, nil, func(time.Time) {
		r.mu.Lock()
		addr, routed := r.masterLocked()
		r.mu.Unlock()
		if addr == "" {
			return // never routed yet: nothing to dial
		}
		if up := r.dialMaster(addr); up != routed {
			r.log.Debug("master probe disagrees with the route, polling now", "master", addr, "reachable", up, "routed", routed)
			r.kickPoll()
		}
	})
}

// dialMaster reports whether a TCP connection to addr opens within the
// request timeout; it closes it at once.
func (r *Registrar) dialMaster(addr string) bool {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RequestTimeout)
	defer cancel()
	conn, err := defaultDial(r.cfg.Dial)(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// masterLocked returns the address of this broker's group master, as the
// last route gave it (remembered after the master left the route), and
// whether the last route has it. Lock should be held.
func (r *Registrar) masterLocked() (addr string, routed bool) {
	if r.snap != nil {
		for _, g := range r.snap.info.Groups {
			if g.Cluster != r.cfg.Cluster || g.Group != r.cfg.Group {
				continue
			}
			for _, m := range g.Members {
				if m.BrokerID == MasterID && m.Addr != "" {
					r.masterAddr = m.Addr
					return m.Addr, true
				}
			}
		}
	}
	return r.masterAddr, false
}

// newSnapshot puts each group's members (sent once, in the cluster info)
// back into the routes.
func newSnapshot(reply snapshotReply) *snapshot {
	members := make(map[groupKey][]Member, len(reply.Info.Groups))
	for _, g := range reply.Info.Groups {
		members[groupKey{g.Cluster, g.Group}] = g.Members
	}
	for i := range reply.Routes {
		for j := range reply.Routes[i].Groups {
			g := &reply.Routes[i].Groups[j]
			g.Members = members[groupKey{g.Cluster, g.Group}]
		}
	}
	return &snapshot{routes: reply.Routes, info: reply.Info}
}

// offerLocalView offers a view built from what the broker knows alone.
func (r *Registrar) offerLocalView() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.views.Offer(r.viewLocked())
}

// adopt adds to the store the topics the routes place on this broker's
// group that it does not hold yet: a slave that missed a push, or a broker
// restarted without its DataDir, learns them from its group's other
// members (RocketMQ's slaves copy the master's topic config likewise).
func (r *Registrar) adopt(routes []TopicRoute) bool {
	changed := false
	for _, rt := range routes {
		for _, g := range rt.Groups {
			if g.Cluster != r.cfg.Cluster || g.Group != r.cfg.Group {
				continue
			}
			t := GroupTopic{Name: rt.Topic, Queues: g.Queues, FirstPartition: g.FirstPartition, Partitions: rt.Partitions,
				ReplicationFactor: rt.ReplicationFactor, MinInsync: rt.MinInsync, Fanout: rt.Fanout}
			if _, ok := r.store.get(t.Name); ok {
				continue
			}
			if r.store.isDeleted(t.Name) {
				// A route read before a deletion push arrived must not bring
				// the topic back (the name server would then recreate it from
				// this broker's next registration). A topic created again under
				// that name reaches the group by its creation push.
				continue
			}
			ok, err := r.store.put(t)
			if err != nil {
				r.log.Warn("cannot adopt topic from route", "topic", t.Name, "error", err)
				continue
			}
			if ok {
				r.log.Info("topic adopted from route", "topic", t.Name, "queues", t.Queues)
				changed = true
			}
		}
	}
	return changed
}

// CreateTopics asks a name server to place each topic over the cluster's
// groups (see CreateTopicRequest) and returns once it has, with the view
// refreshed.
func (r *Registrar) CreateTopics(ctx context.Context, topics []broker.TopicConfig) []error {
	errs := make([]error, len(topics))
	ok := false
	for i, t := range topics {
		req := CreateTopicRequest{Config: t, Cluster: r.cfg.Cluster}
		errs[i] = r.pool.do(ctx, 3*r.cfg.RequestTimeout, func(ctx context.Context, p *peer) error {
			_, err := p.call(ctx, typeCreateTopic, req, &createTopicReply{})
			return err
		})
		ok = ok || errs[i] == nil
	}
	if ok {
		_ = r.poll(ctx)
	}
	return errs
}

// DeleteTopics asks a name server to delete each topic from its groups.
func (r *Registrar) DeleteTopics(ctx context.Context, names []string) []error {
	errs := make([]error, len(names))
	ok := false
	for i, name := range names {
		errs[i] = r.pool.do(ctx, 3*r.cfg.RequestTimeout, func(ctx context.Context, p *peer) error {
			_, err := p.call(ctx, typeDeleteTopic, deleteTopicRequest{Name: name}, nil)
			return err
		})
		ok = ok || errs[i] == nil
	}
	if ok {
		_ = r.poll(ctx)
	}
	return errs
}

// sameView reports whether two views are equal, so that a poll answering
// what the broker already has does not wake it.
func sameView(a, b broker.ClusterView) bool { return reflect.DeepEqual(a, b) }
