package gossip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/poll"
)

// Sentinel errors.
var (
	ErrClosed     = errors.New("gossip: plane closed")
	ErrNoSeed     = errors.New("gossip: no seed answered")
	ErrNoMajority = errors.New("gossip: no majority")
)

// nodeMeta is what a member publishes in memberlist's node metadata: its
// Kafka address, and the replication offsets it holds per leader, summed,
// so replicas of a failed master can rank themselves.
type nodeMeta struct {
	Broker  broker.BrokerInfo `json:"b"`
	Offsets map[int32]int64   `json:"o,omitempty"`
}

// Stats count what the plane sent.
type Stats struct {
	Members      int   `json:"members"`
	UpdatesSent  int64 `json:"updates_sent"`
	RequestsSent int64 `json:"requests_sent"`
	BytesSent    int64 `json:"bytes_sent"` // gossip, requests and push-pull state, not memberlist's own probes
}

// Plane is one broker's gossip control plane; it implements
// broker.ControlPlane. Every broker runs one; there is no coordinator.
type Plane struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	ml     *memberlist.Memberlist
	spread *spreader
	meta   atomic.Pointer[[]byte]
	seq    atomic.Uint64
	reqSeq atomic.Uint64
	joinOn atomic.Bool // a background join is running

	saveKick chan struct{} // wakes saveLoop; nil without a state file
	saveMu   sync.Mutex    // serialises writes of the state file

	updatesSent, requestsSent, bytesSent atomic.Int64
	wire                                 wireCounts
	received                             [kindCount]msgCounts // by message kind
	stateChanges                         atomic.Int64         // merges that changed the state
	electionsWon, electionsLost          atomic.Int64
	failovers                            atomic.Int64 // won elections whose takeover was applied

	mu         sync.Mutex // guards the fields below
	started    bool
	closed     bool
	left       bool // Deregister ran: hand-off done, memberlist left
	formedNew  bool // this node formed a new cluster (form claimed every slot)
	self       broker.BrokerInfo
	st         *clusterState
	alive      map[int32]*memberlist.Node // members memberlist holds alive, self included
	infos      map[int32]nodeMeta
	pfail      []int32 // nodes this node cannot reach (Redis PFAIL)
	nextReport time.Time
	reports    map[int32]reportEntry // reporter -> its latest report
	failed     map[int32]time.Time   // nodes marked FAIL, since
	lastVote   uint64                // epoch of this master's last vote (slots)
	partVotes  map[string]uint64     // partition -> epoch voted for (ring)
	tried      map[string]uint64     // election key -> last epoch asked for
	elections  map[string]time.Time  // election key -> when to ask for votes
	running    map[string]bool       // election key -> a vote round is running
	nextTake   time.Time
	nextJoin   time.Time
	pending    map[uint64]chan response
	views      *deliverer
	dirty      bool
}

type reportEntry struct {
	targets []int32
	at      time.Time
}

var _ broker.ControlPlane = (*Plane)(nil)

// New validates cfg. Nothing runs before Register.
func New(cfg Config) (*Plane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := logs.OrDiscard(cfg.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	return &Plane{
		cfg: cfg, log: logger.With("placement", cfg.Placement),
		ctx: ctx, cancel: cancel,
		st:        newClusterState(),
		alive:     map[int32]*memberlist.Node{},
		infos:     map[int32]nodeMeta{},
		reports:   map[int32]reportEntry{},
		failed:    map[int32]time.Time{},
		partVotes: map[string]uint64{},
		tried:     map[string]uint64{},
		elections: map[string]time.Time{},
		running:   map[string]bool{},
		pending:   map[uint64]chan response{},
	}, nil
}

func nodeName(id int32) string { return "node-" + strconv.Itoa(int(id)) }

func nodeID(name string) (int32, bool) {
	s, ok := strings.CutPrefix(name, "node-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 32)
	return int32(v), err == nil && v >= 0
}

// Addr returns the gossip address other members and --seeds dial, once
// registered.
func (p *Plane) Addr() string {
	if p.ml == nil {
		return ""
	}
	return p.ml.LocalNode().Address()
}

// Register starts memberlist, forms or joins the cluster by the seed rule
// and returns once the broker is a member and the first view is delivered.
func (p *Plane) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	if self.ID < 0 || self.Addr == "" || onView == nil {
		return fmt.Errorf("gossip: register: node id %d, address %q, callback set %v", self.ID, self.Addr, onView != nil)
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.started:
		p.mu.Unlock()
		return errors.New("gossip: register: already registered")
	}
	p.started = true
	p.self = self
	p.log = p.log.With("node-id", self.ID)
	p.views = newDeliverer(onView)
	p.spread = newSpreader(p.cfg.GossipNodes, p.cfg.RetransmitMult, p.cfg.TellOnce, uint64(self.ID)+uint64(time.Now().UnixNano()))
	p.mu.Unlock()
	if err := p.openState(); err != nil {
		return err
	}
	p.setMeta(nodeMeta{Broker: self})

	mc, err := p.memberlistConfig(ctx, self.ID)
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = mc.Transport.Shutdown()
		return fmt.Errorf("gossip: start memberlist: %w", err)
	}
	addr := ml.LocalNode().Address()
	p.mu.Lock()
	p.ml = ml // under the lock for the metrics collector; the rest runs after Register
	p.st.nodes[self.ID] = addr
	p.alive[self.ID] = ml.LocalNode()
	p.infos[self.ID] = nodeMeta{Broker: self}
	p.mu.Unlock()
	p.log = p.log.With("gossip-addr", addr)
	if err := p.joinCluster(ctx, addr); err != nil {
		_ = p.Close()
		return err
	}
	// A restarted node leads again only in a new epoch (reclaim.go).
	p.mu.Lock()
	if !p.formedNew {
		if d := p.reclaimLocked(); d != nil {
			p.publishLocked(d)
		}
	}
	p.mu.Unlock()
	// Views go to the broker only from here: a node that loaded a saved
	// state must not act on it before the join merged the cluster's
	// newer one (a restarted master would lead slots taken over since),
	// nor lead in its previous life's epoch.
	p.goFunc(func() { p.views.run(p.ctx) })
	p.goFunc(p.spreadLoop)
	p.goFunc(p.cronLoop)
	p.mu.Lock()
	p.views.offer(p.viewLocked())
	p.mu.Unlock()
	return nil
}

func (p *Plane) memberlistConfig(ctx context.Context, id int32) (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	c.Name = nodeName(id)
	host, port, _ := net.SplitHostPort(p.cfg.Bind)
	c.BindAddr = host
	c.BindPort, _ = strconv.Atoi(port)
	c.AdvertisePort = c.BindPort
	if p.cfg.Advertise != "" {
		ah, ap, _ := net.SplitHostPort(p.cfg.Advertise)
		ip, err := resolveAdvertise(ctx, ah)
		if err != nil {
			return nil, err
		}
		c.AdvertiseAddr = ip
		c.AdvertisePort, _ = strconv.Atoi(ap)
	}
	c.ProbeInterval = p.cfg.ProbeInterval
	c.ProbeTimeout = p.cfg.ProbeTimeout
	c.SuspicionMult = p.cfg.SuspicionMult
	c.GossipInterval = p.cfg.GossipInterval
	c.GossipNodes = p.cfg.GossipNodes
	c.RetransmitMult = p.cfg.RetransmitMult
	c.PushPullInterval = p.cfg.PushPullInterval
	c.TCPTimeout = p.cfg.TCPTimeout
	c.GossipToTheDeadTime = p.cfg.PushPullInterval
	// A restarted broker comes back under its name with a new address.
	c.DeadNodeReclaimTime = p.cfg.ProbeInterval
	c.Delegate = delegate{p}
	c.Events = events{p}
	c.LogOutput = nil
	c.Logger = log.New(slogWriter{p.log}, "", 0)
	// memberlist's own UDP/TCP transport, wrapped by the runtime's (fault
	// injection) when it has one, then counted for the metrics: a packet
	// a cut link drops counts as sent, as on a real network.
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{c.BindAddr}, BindPort: c.BindPort, Logger: c.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: transport: %w", err)
	}
	if c.BindPort == 0 {
		c.BindPort = nt.GetAutoBindPort()
		if p.cfg.Advertise == "" {
			c.AdvertisePort = c.BindPort
		}
	}
	var tr memberlist.NodeAwareTransport = nt
	if p.cfg.WrapTransport != nil {
		tr = p.cfg.WrapTransport(tr)
	}
	c.Transport = newCountingTransport(tr, &p.wire)
	return c, nil
}

// joinCluster applies the seed rule (Akka's): the first seed forms the
// cluster alone when no other seed answers within SeedTimeout; any other
// node joins through whichever seed answers, retrying until ctx ends. For
// the first seed an answer counts only from a formed cluster (Akka answers
// InitJoin only from members): seeds started at the same moment all answer
// memberlist's join before any has formed, and the first seed, joining
// them, would otherwise never claim the slots.
func (p *Plane) joinCluster(ctx context.Context, self string) error {
	var others []string
	first := len(p.cfg.Seeds) == 0 || sameAddr(p.cfg.Seeds[0], self)
	for _, s := range p.cfg.Seeds {
		if !sameAddr(s, self) {
			others = append(others, s)
		}
	}
	deadline := time.Now().Add(p.cfg.SeedTimeout)
	for {
		if len(others) > 0 {
			if n, err := p.ml.Join(others); n > 0 && (!first || p.formed()) {
				p.log.Info("joined the cluster", "seeds", others, "answered", n)
				return nil
			} else if n > 0 {
				p.log.Debug("seeds answered, none of them formed yet", "seeds", others, "answered", n)
			} else if err != nil {
				p.log.Debug("no seed answered", "seeds", others, "error", err)
			}
		}
		if first && !time.Now().Before(deadline) {
			p.form()
			return nil
		}
		t := time.NewTimer(p.cfg.JoinRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gossip: register: %w: %w", ErrNoSeed, ctx.Err())
		case <-p.ctx.Done():
			t.Stop()
			return ErrClosed
		case <-t.C:
		}
	}
}

// formed reports whether the state this node holds (merged from the seeds
// it joined) shows a formed cluster: under slots, some node owns slots; the
// ring has nothing to form.
func (p *Plane) formed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Placement != PlacementSlots || len(p.st.masters()) > 0
}

// form makes this node the whole cluster: under slots it claims every
// slot (what redis-cli --cluster create does for the first master).
func (p *Plane) form() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Info("forming the cluster alone (first seed, no other seed answered)")
	if p.cfg.Placement == PlacementSlots && len(p.st.masters()) == 0 {
		p.st.epoch++
		p.formedNew = true
		c := slotClaim{Start: 0, End: Slots - 1, Owner: p.self.ID, Epoch: p.st.epoch}
		p.st.mergeSlots(c)
		p.publishLocked(&delta{Epoch: p.st.epoch, Slots: []slotClaim{c}})
	}
}

func sameAddr(a, b string) bool {
	if a == b {
		return true
	}
	ta, err1 := net.ResolveTCPAddr("tcp", a)
	tb, err2 := net.ResolveTCPAddr("tcp", b)
	return err1 == nil && err2 == nil && ta.Port == tb.Port && ta.IP.Equal(tb.IP)
}

// goFunc runs f on a goroutine Close waits for.
func (p *Plane) goFunc(f func()) { p.wg.Go(f) }

// Deregister leaves the cluster gracefully: first the node hands its slots
// (gossip-ring: its partitions) to live in-sync replicas in a new epoch and
// tells every member, then asks every leader to drop it from their ISRs
// (see handoff.go), then memberlist tells the others it left, so they stop counting on it without waiting for the failure
// detector. Idempotent.
func (p *Plane) Deregister(ctx context.Context) error {
	if p.ml == nil {
		return nil
	}
	p.mu.Lock()
	if p.left || p.closed {
		p.mu.Unlock()
		return nil
	}
	p.left = true
	d := p.handoffLocked()
	p.mu.Unlock()
	if d != nil {
		p.tellAll(ctx, d)
	}
	p.leaveISRs(ctx)
	timeout := p.cfg.TCPTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return p.ml.Leave(timeout)
}

// Close stops the plane; without Deregister first the others see a crash.
// Idempotent.
func (p *Plane) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		if p.ml != nil {
			_ = p.ml.Shutdown()
		}
	})
	p.wg.Wait()
	return nil
}

// Stats returns what the plane sent so far.
func (p *Plane) Stats() Stats {
	s := Stats{UpdatesSent: p.updatesSent.Load(), RequestsSent: p.requestsSent.Load(), BytesSent: p.bytesSent.Load()}
	p.mu.Lock()
	s.Members = len(p.alive)
	p.mu.Unlock()
	return s
}

func (p *Plane) setMeta(m nodeMeta) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	p.meta.Store(&b)
}

// publishLocked applies nothing (the caller has) and starts spreading d.
// Lock should be held.
func (p *Plane) publishLocked(d *delta) {
	if d.empty() || p.spread == nil {
		return
	}
	d.Epoch = max(d.Epoch, p.st.epoch)
	id := updateID{origin: p.self.ID, seq: p.seq.Add(1)}
	msg, err := encode(kindUpdate, update{Origin: id.origin, Seq: id.seq, Via: p.self.ID, Delta: d})
	if err != nil {
		p.log.Error("encode update", "error", err)
		return
	}
	p.spread.add(id, msg, "", time.Now())
	p.dirty = true
	p.kickSaveLocked()
}

// spreadLoop sends each round's updates.
func (p *Plane) spreadLoop() {
	poll.Every(p.ctx, p.cfg.GossipInterval, nil, func(now time.Time) {
		for _, o := range p.spread.round(p.peers(), now) {
			p.send(o.to, o.msg, false)
			p.updatesSent.Add(1)
		}
	})
}

// peers returns the other live members.
func (p *Plane) peers() []*memberlist.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*memberlist.Node, 0, len(p.alive))
	for _, id := range sortedKeys(p.alive) {
		if id != p.self.ID {
			out = append(out, p.alive[id])
		}
	}
	return out
}

// send sends msg to node: by UDP when it fits a packet and reliable is
// false, else over TCP.
func (p *Plane) send(to *memberlist.Node, msg []byte, reliable bool) {
	p.bytesSent.Add(int64(len(msg)))
	var err error
	if !reliable && len(msg) < 1200 {
		err = p.ml.SendBestEffort(to, msg)
	} else {
		err = p.ml.SendReliable(to, msg)
	}
	if err != nil && p.ctx.Err() == nil {
		p.log.Debug("gossip send failed", "to", to.Name, "error", err)
	}
}

// onMessage handles one user message.
func (p *Plane) onMessage(b []byte) {
	m, err := decode(b)
	if err != nil {
		p.log.Warn("message rejected", "error", err)
		return
	}
	p.countReceived(m, len(b))
	switch {
	case m.update != nil:
		p.onUpdate(m.update)
	case m.request != nil:
		p.goFunc(func() { p.answer(m.request) })
	case m.response != nil:
		p.mu.Lock()
		ch := p.pending[m.response.ID]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- *m.response:
			default:
			}
		}
	}
}

func (p *Plane) onUpdate(u *update) {
	if p.spread == nil {
		return
	}
	fwd := *u
	fwd.Via = p.self.ID
	msg, err := encode(kindUpdate, fwd)
	if err != nil {
		return
	}
	if !p.spread.add(updateID{u.Origin, u.Seq}, msg, nodeName(u.Via), time.Now()) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applyLocked(u.Delta)
}

// applyLocked merges d into the state. Lock should be held.
func (p *Plane) applyLocked(d *delta) {
	res, _ := p.st.merge(d)
	defer func() {
		if res.changed {
			p.stateChanges.Add(1)
		}
	}()
	now := time.Now()
	for _, r := range d.Reports {
		if r.Reporter != p.self.ID {
			p.reports[r.Reporter] = reportEntry{targets: slices.Clone(r.Targets), at: now}
		}
	}
	for _, f := range d.Fails {
		if _, ok := p.failed[f]; !ok && f != p.self.ID {
			p.failed[f] = now
			p.log.Info("node marked failed by a peer", "failed-node", f)
			res.changed = true
		}
	}
	if res.changed {
		p.views.offer(p.viewLocked())
		p.kickSaveLocked()
	}
}

// viewLocked builds the broker's view. Lock should be held.
func (p *Plane) viewLocked() broker.ClusterView {
	v := broker.ClusterView{ClusterID: p.cfg.ClusterID, ControllerID: -1}
	for _, id := range sortedKeys(p.alive) {
		if info, ok := p.infos[id]; ok {
			v.Brokers = append(v.Brokers, info.Broker)
		}
	}
	if len(v.Brokers) > 0 {
		v.ControllerID = v.Brokers[0].ID
	}
	for _, t := range p.st.sortedTopics() {
		if t.Deleted {
			// Tombstones are kept and gossiped, so every later view
			// announces the deletion until the name is created again.
			v.DeletedTopics = append(v.DeletedTopics, t.Config.Name)
			continue
		}
		tv := broker.TopicView{Config: t.Config}
		for i, r := range t.Parts {
			leader, epoch := p.leaderLocked(t, int32(i))
			tv.Partitions = append(tv.Partitions, broker.PartitionState{
				Topic: t.Config.Name, Partition: int32(i), Replicas: slices.Clone(r.Replicas),
				Leader: leader, LeaderEpoch: epoch, ISR: slices.Clone(r.ISR), Version: r.Version,
				MinInsync: t.Config.MinInsync, Fanout: t.Config.Fanout,
			})
		}
		v.Topics = append(v.Topics, tv)
	}
	return v
}

// leaderLocked returns a partition's leader and leader epoch: under slots
// the slot's master (when it is a replica) and the slot's config epoch,
// under the ring the record's leader. Lock should be held.
func (p *Plane) leaderLocked(t *topicRec, part int32) (int32, int32) {
	r := t.Parts[part]
	if p.cfg.Placement == PlacementRing {
		return r.Leader, r.Epoch
	}
	s := Slot(PartitionKey(t.Config.Name, part))
	owner, epoch := p.st.owner[s], int32(p.st.slotEpoch[s])
	if !slices.Contains(r.Replicas, owner) {
		return -1, epoch
	}
	return owner, epoch
}

// delegate is memberlist's view of the plane.
type delegate struct{ p *Plane }

func (d delegate) NodeMeta(limit int) []byte {
	b := d.p.meta.Load()
	if b == nil || len(*b) > limit {
		return nil
	}
	return *b
}

func (d delegate) NotifyMsg(b []byte) { d.p.onMessage(slices.Clone(b)) }

func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

func (d delegate) LocalState(join bool) []byte {
	d.p.mu.Lock()
	full := d.p.st.full()
	d.p.mu.Unlock()
	b, err := encode(kindState, full)
	if err != nil {
		return nil
	}
	d.p.bytesSent.Add(int64(len(b)))
	return b
}

func (d delegate) MergeRemoteState(buf []byte, join bool) {
	m, err := decode(buf)
	if err != nil || m.state == nil {
		d.p.log.Warn("remote state rejected", "error", err)
		return
	}
	d.p.countReceived(m, len(buf))
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	d.p.applyLocked(m.state)
}

// events tracks memberlist's membership.
type events struct{ p *Plane }

func (e events) NotifyJoin(n *memberlist.Node)   { e.p.memberUp(n) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.p.memberUp(n) }
func (e events) NotifyLeave(n *memberlist.Node) {
	id, ok := nodeID(n.Name)
	if !ok {
		return
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == p.self.ID {
		return
	}
	delete(p.alive, id)
	p.log.Info("member down", "member", id)
	if p.views != nil {
		p.views.offer(p.viewLocked())
	}
}

func (p *Plane) memberUp(n *memberlist.Node) {
	id, ok := nodeID(n.Name)
	if !ok {
		return
	}
	var meta nodeMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.Broker.ID != id {
		p.log.Warn("member with bad metadata", "member", n.Name)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, was := p.alive[id]; !was && id != p.self.ID {
		p.log.Info("member up", "member", id, "addr", meta.Broker.Addr)
	}
	// A copy: n is memberlist's own record, which it keeps updating
	// under its own lock while send reads the address.
	nc := *n
	p.alive[id] = &nc
	p.infos[id] = meta
	if p.st.nodes[id] != n.Address() {
		p.st.nodes[id] = n.Address()
		p.kickSaveLocked()
	}
	if p.views != nil {
		p.views.offer(p.viewLocked())
	}
}

// slogWriter routes memberlist's log lines to slog at debug level
// (warnings and errors at warn).
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	if strings.Contains(line, "[ERR]") || strings.Contains(line, "[WARN]") {
		w.log.Warn("memberlist", "line", line)
	} else {
		w.log.Debug("memberlist", "line", line)
	}
	return len(b), nil
}

var _ io.Writer = slogWriter{}

// deliverer hands views to the broker one at a time, newest only.
type deliverer struct {
	fn   func(broker.ClusterView)
	kick chan struct{}

	mu   sync.Mutex // guards next and last
	next *broker.ClusterView
	last *broker.ClusterView
}

func newDeliverer(fn func(broker.ClusterView)) *deliverer {
	return &deliverer{fn: fn, kick: make(chan struct{}, 1)}
}

// offer queues v unless it equals the last view offered.
func (d *deliverer) offer(v broker.ClusterView) {
	d.mu.Lock()
	if d.last != nil && reflect.DeepEqual(*d.last, v) {
		d.mu.Unlock()
		return
	}
	d.last, d.next = &v, &v
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *deliverer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		d.mu.Lock()
		v := d.next
		d.next = nil
		d.mu.Unlock()
		if v != nil && ctx.Err() == nil {
			d.fn(*v)
		}
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// resolveAdvertise turns an advertised host name into the address
// memberlist needs (a node that knows only its name on the network, such
// as a swarm task, whose name resolves to its current address). The name
// may not resolve at once while the network registers the node: up to 10 s
// of retries.
func resolveAdvertise(ctx context.Context, host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", host)
		if err == nil && len(ips) > 0 {
			return ips[0].String(), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("gossip: advertise %q does not resolve: %v", host, err)
		case <-time.After(200 * time.Millisecond): // waiting for the network's DNS
		}
	}
}
