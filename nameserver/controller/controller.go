package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/brokerlab/brokerlab/internal/lifecycle"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/poll"
)

// Stats are a controller's counters since it started. Broker bytes count
// the frames of broker connections (4-byte prefix included).
type Stats struct {
	Leader         bool  `json:"leader"`
	Brokers        int64 `json:"brokers"` // broker connections open now
	Heartbeats     int64 `json:"heartbeats"`
	Requests       int64 `json:"requests"`
	BrokerBytesIn  int64 `json:"broker_bytes_in"`
	BrokerBytesOut int64 `json:"broker_bytes_out"`
	RaftBytesIn    int64 `json:"raft_bytes_in"`
	RaftBytesOut   int64 `json:"raft_bytes_out"`
	Proposals      int64 `json:"proposals"`
	Elections      int64 `json:"elections"` // master elections this controller ran as leader
	// Raft: the current term, the leader's id (0: none known) and how
	// often the leader this controller knows of changed.
	Term          uint64 `json:"term"`
	RaftLeader    uint64 `json:"raft_leader"`
	LeaderChanges int64  `json:"leader_changes"`
	// Applied state changes (the same on every controller):
	// MasterSwitches counts elections applied (a new master or none),
	// SyncStateSetChanges every new SyncStateSet epoch.
	MasterSwitches      int64 `json:"master_switches"`
	SyncStateSetChanges int64 `json:"sync_state_set_changes"`
	// ActiveBrokers are the brokers the leader holds alive now (0 on a
	// follower, which tracks no liveness).
	ActiveBrokers int64 `json:"active_brokers"`
}

// brokerKey identifies a broker across groups.
type brokerKey struct {
	cluster, group string
	id             int32
}

// liveness is the leader's memory of one broker's heartbeats (RocketMQ's
// BrokerLiveInfo). It is not replicated: a new leader starts every known
// broker with a fresh timeout.
type liveness struct {
	lastSeen time.Time
	conn     *conn // nil when not connected to this controller
	closed   bool  // its connection closed: inactive at once
	left     bool  // it left gracefully: heartbeats still in flight do not revive it
}

// Controller is one member of the controller quorum: a Raft node over the
// group state machine, a server for brokers and a leader-only detector of
// failed masters.
type Controller struct {
	cfg Config
	log *slog.Logger

	life   *lifecycle.Owner // listener, goroutines, Close
	ctx    context.Context  // ends at Close, or when the Raft log fails
	cancel context.CancelFunc
	kick   chan struct{} // look for masters to elect now

	storage *raft.MemoryStorage
	disk    *diskLog // nil without a data dir
	node    raft.Node
	senders []*sender // by id-1; nil for self
	lead    atomic.Uint64
	reqSeq  atomic.Uint64

	mu          sync.Mutex // guards the fields below
	isLeader    bool
	sm          *stateMachine
	waiters     map[uint64]chan applyResult
	live        map[brokerKey]*liveness
	conns       map[*conn]struct{} // broker connections
	accepted    map[*conn]struct{} // every accepted connection, closed by Close
	closedBytes [2]int64           // in, out of closed broker connections

	heartbeats, requests, proposals, elections, raftOut, raftIn atomic.Int64
	term                                                        atomic.Uint64
	leaderChanges, masterSwitches, sssChanges                   atomic.Int64
	byType                                                      [len(requestTypes) + 1]atomic.Int64 // by requestTypes index; the last: unknown

	msrv *metrics.Server // nil without MetricsListen
}

// ListenPeers opens n loopback listeners for a controller set run on one
// machine and returns them with their addresses, the set's Peers: every
// controller needs every peer's address before any starts (pass each its
// listener as Config.Listener). On an error it closes what it opened.
func ListenPeers(ctx context.Context, n int) ([]net.Listener, []string, error) {
	lns, addrs := make([]net.Listener, n), make([]string, n)
	var lc net.ListenConfig
	for i := range n {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns[:i] {
				_ = l.Close()
			}
			return nil, nil, err
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	return lns, addrs, nil
}

// New validates cfg and returns a controller that is not yet serving.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	life := lifecycle.New()
	ctx, cancel := context.WithCancel(life.Context())
	return &Controller{
		cfg:      cfg,
		life:     life,
		log:      log.With("controller-id", cfg.ID),
		ctx:      ctx,
		cancel:   cancel,
		kick:     make(chan struct{}, 1),
		sm:       newStateMachine(),
		waiters:  make(map[uint64]chan applyResult),
		live:     make(map[brokerKey]*liveness),
		conns:    make(map[*conn]struct{}),
		accepted: make(map[*conn]struct{}),
	}, nil
}

// Start listens, starts the Raft node and serves until Close. ctx bounds
// only the start itself.
func (c *Controller) Start(ctx context.Context) error {
	addr := c.cfg.Peers[c.cfg.ID-1]
	if c.cfg.Listen != "" {
		addr = c.cfg.Listen
	}
	ln, err := c.life.Listen(ctx, addr, c.cfg.Listener)
	switch {
	case errors.Is(err, lifecycle.ErrClosed):
		return fmt.Errorf("controller: start: %w", ErrClosed)
	case err != nil:
		return fmt.Errorf("controller: listen: %w", err)
	}
	if err := c.startRaft(); err != nil {
		_ = c.Close()
		return err
	}
	msrv, err := metrics.Serve(ctx, c.cfg.MetricsListen, c.cfg.MetricsProcess, c.log, c.Collector())
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("controller: %w", err)
	}
	c.mu.Lock()
	c.msrv = msrv
	c.mu.Unlock()
	c.senders = make([]*sender, len(c.cfg.Peers))
	for i, addr := range c.cfg.Peers {
		if uint64(i+1) == c.cfg.ID {
			continue
		}
		s := &sender{id: uint64(i + 1), addr: addr, ch: make(chan *raftpb.Message, 4096)}
		c.senders[i] = s
		c.goFunc(func() { c.runSender(s) })
	}
	c.log.Info("controller listening", "addr", ln.Addr().String(), "peers", c.cfg.Peers)
	c.goFunc(c.raftLoop)
	c.goFunc(func() { c.accept(ln) })
	c.goFunc(c.scanLoop)
	return nil
}

// Addr returns the listening address, or "" before Start.
func (c *Controller) Addr() string { return c.life.Addr() }

// MetricsAddr returns the Prometheus endpoint's address, or "" when the
// controller serves none.
func (c *Controller) MetricsAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msrv.Addr()
}

// IsLeader reports whether this controller is the Raft leader now.
func (c *Controller) IsLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isLeader
}

// Group returns this controller's applied state of a group.
func (c *Controller) Group(cluster, group string) (GroupState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.sm.get(cluster, group)
	if ok && c.isLeader {
		g.Inactive = c.inactiveLocked(g, time.Now())
	}
	return g, ok
}

// Stats returns the controller's counters.
func (c *Controller) Stats() Stats {
	st := Stats{Heartbeats: c.heartbeats.Load(), Requests: c.requests.Load(), Proposals: c.proposals.Load(),
		Elections: c.elections.Load(), RaftBytesOut: c.raftOut.Load(), RaftBytesIn: c.raftIn.Load(),
		Term: c.term.Load(), RaftLeader: c.lead.Load(), LeaderChanges: c.leaderChanges.Load(),
		MasterSwitches: c.masterSwitches.Load(), SyncStateSetChanges: c.sssChanges.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Leader = c.isLeader
	st.Brokers = int64(len(c.conns))
	if c.isLeader {
		now := time.Now()
		for k := range c.live {
			if c.aliveLocked(k, now) {
				st.ActiveBrokers++
			}
		}
	}
	st.BrokerBytesIn, st.BrokerBytesOut = c.closedBytes[0], c.closedBytes[1]
	for cn := range c.conns {
		st.BrokerBytesIn += cn.bytesIn.Load()
		st.BrokerBytesOut += cn.bytesOut.Load()
	}
	return st
}

// Close stops the controller: brokers see their connections close, other
// controllers see it silent. Idempotent.
func (c *Controller) Close() error {
	c.life.Close(func() {
		c.mu.Lock()
		msrv := c.msrv
		conns := make([]*conn, 0, len(c.accepted))
		for cn := range c.accepted {
			conns = append(conns, cn)
		}
		c.mu.Unlock()
		_ = msrv.Close()
		for _, cn := range conns {
			cn.close()
		}
	})
	return nil
}

// goFunc runs f on a goroutine Close waits for, unless closed.
func (c *Controller) goFunc(f func()) bool { return c.life.Go(f) }

// setLeader records a Raft leadership change. A new leader gives every
// known broker a fresh heartbeat timeout (heartbeats are not replicated);
// a deposed one drops its broker connections so brokers look for the new
// leader at once.
func (c *Controller) setLeader(lead uint64, leader bool) {
	if old := c.lead.Swap(lead); old != lead && lead != 0 {
		c.leaderChanges.Add(1)
	}
	c.mu.Lock()
	was := c.isLeader
	c.isLeader = leader
	var drop []*conn
	if leader && !was {
		now := time.Now()
		c.live = make(map[brokerKey]*liveness)
		for _, g := range c.sm.groups {
			for _, b := range g.Brokers {
				c.live[brokerKey{g.Cluster, g.Group, b.BrokerID}] = &liveness{lastSeen: now}
			}
		}
	}
	if !leader && was {
		for cn := range c.conns {
			drop = append(drop, cn)
		}
		c.live = make(map[brokerKey]*liveness)
	}
	c.mu.Unlock()
	for _, cn := range drop {
		cn.close()
	}
	if leader != was {
		c.log.Info("controller leadership changed", "leader", leader, "raft-leader", lead)
	}
}

// leaderOnly returns a NotLeaderError unless this controller leads.
func (c *Controller) leaderOnly() error {
	c.mu.Lock()
	leader := c.isLeader
	c.mu.Unlock()
	if leader {
		return nil
	}
	return &NotLeaderError{Leader: c.leaderAddr()}
}

func (c *Controller) leaderAddr() string {
	lead := c.lead.Load()
	if lead == 0 || lead > uint64(len(c.cfg.Peers)) {
		return ""
	}
	return c.cfg.Peers[lead-1]
}

// sender carries Raft messages to one peer over one connection.
type sender struct {
	id   uint64
	addr string
	ch   chan *raftpb.Message
}

// sendRaft queues messages for their peers; a full queue drops (Raft
// retransmits).
func (c *Controller) sendRaft(msgs []*raftpb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		if to == 0 || to > uint64(len(c.senders)) || c.senders[to-1] == nil {
			continue
		}
		select {
		case c.senders[to-1].ch <- m:
		default:
			c.node.ReportUnreachable(to)
		}
	}
}

func (c *Controller) runSender(s *sender) {
	var (
		cn       *conn
		failedAt time.Time
	)
	defer func() {
		if cn != nil {
			cn.close()
		}
	}()
	dial := c.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	for {
		var m *raftpb.Message
		select {
		case <-c.ctx.Done():
			return
		case m = <-s.ch:
		}
		if cn == nil || cn.isClosed() {
			if time.Since(failedAt) < c.cfg.TickInterval {
				continue // the peer was unreachable a moment ago
			}
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.TickInterval*time.Duration(c.cfg.ElectionTicks))
			nc, err := dial(ctx, "tcp", s.addr)
			cancel()
			if err != nil {
				failedAt = time.Now()
				c.node.ReportUnreachable(s.id)
				continue
			}
			cn = newConn(nc, c.cfg.MaxFrameBytes, c.cfg.RequestTimeout)
			// Nothing is read on this connection but its end.
			c.goFunc(func() { _, _ = io.Copy(io.Discard, nc); cn.close() })
		}
		b, err := encodeRaft(m)
		if err != nil {
			continue
		}
		if err := cn.write(b); err != nil {
			failedAt = time.Now()
			c.node.ReportUnreachable(s.id)
			continue
		}
		c.raftOut.Add(int64(len(b)))
	}
}

func (c *Controller) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.log.Error("accept failed, controller stops listening", "error", err)
			}
			return
		}
		cn := newConn(nc, c.cfg.MaxFrameBytes, c.cfg.RequestTimeout)
		// Added before the check in goFunc: Close either sees it or
		// makes goFunc refuse it.
		c.mu.Lock()
		c.accepted[cn] = struct{}{}
		c.mu.Unlock()
		if !c.goFunc(func() { c.serve(cn) }) {
			cn.close()
		}
	}
}

// serve reads one connection: Raft messages from a peer, or a broker's
// requests.
func (c *Controller) serve(cn *conn) {
	defer func() {
		cn.close()
		c.mu.Lock()
		delete(c.accepted, cn)
		c.mu.Unlock()
	}()
	registered := false
	var read int64 // bytes of this connection counted so far
	for {
		f, err := cn.read()
		if err != nil {
			if errors.Is(err, ErrBadFrame) {
				c.log.Warn("closing connection after a bad frame", "remote", cn.nc.RemoteAddr().String(), "error", err)
			}
			break
		}
		switch f.Kind {
		case kindRaft:
			n := cn.bytesIn.Load()
			c.raftIn.Add(n - read)
			read = n
			if err := c.node.Step(c.ctx, f.Raft); err != nil && c.ctx.Err() == nil {
				c.log.Debug("raft step failed", "error", err)
			}
		case kindRequest:
			if !registered {
				registered = c.track(cn)
			}
			req := f.Env
			c.goFunc(func() { c.handle(cn, req) })
		default:
			c.log.Warn("closing connection after an unexpected frame", "kind", f.Kind)
			cn.close()
		}
	}
	if registered {
		c.untrack(cn)
	}
}

func (c *Controller) track(cn *conn) bool {
	if c.life.Closed() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns[cn] = struct{}{}
	return true
}

// untrack forgets a closed broker connection; brokers heartbeating over
// it are inactive at once (RocketMQ's onChannelDestroy), and a master
// among them is replaced now rather than at the next scan.
func (c *Controller) untrack(cn *conn) {
	c.mu.Lock()
	delete(c.conns, cn)
	c.closedBytes[0] += cn.bytesIn.Load()
	c.closedBytes[1] += cn.bytesOut.Load()
	gone := false
	for k, l := range c.live {
		if l.conn == cn {
			l.conn, l.closed = nil, true
			gone = true
			c.log.Info("broker inactive: connection closed", "cluster", k.cluster, "group", k.group, "broker-id", k.id)
		}
	}
	c.mu.Unlock()
	if gone {
		c.kickElection()
	}
}

func (c *Controller) kickElection() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// aliveLocked reports whether a broker is active. Lock should be held.
func (c *Controller) aliveLocked(k brokerKey, now time.Time) bool {
	l := c.live[k]
	return l != nil && !l.closed && now.Sub(l.lastSeen) <= c.cfg.HeartbeatTimeout
}

// inactiveLocked lists g's members that are not alive. Lock should be held.
func (c *Controller) inactiveLocked(g GroupState, now time.Time) []int32 {
	var out []int32
	for _, b := range g.Brokers {
		if !c.aliveLocked(brokerKey{g.Cluster, g.Group, b.BrokerID}, now) {
			out = append(out, b.BrokerID)
		}
	}
	return out
}

// pushState sends a group's new state to its brokers connected here
// (RocketMQ's notifyBrokerRoleChanged).
func (c *Controller) pushState(st GroupState) {
	c.mu.Lock()
	st.Inactive = c.inactiveLocked(st, time.Now())
	var conns []*conn
	for k, l := range c.live {
		if k.cluster == st.Cluster && k.group == st.Group && l.conn != nil && !slices.Contains(conns, l.conn) {
			conns = append(conns, l.conn)
		}
	}
	c.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	body, err := encodeBody(st)
	if err != nil {
		return
	}
	c.goFunc(func() {
		for _, cn := range conns {
			_ = cn.send(kindPush, envelope{Type: typeStatePush, Body: body})
		}
	})
}

func (c *Controller) scanLoop() {
	poll.Every(c.ctx, c.cfg.ScanInterval, c.kick, func(time.Time) { c.electWhereNeeded() })
}

// electWhereNeeded replaces every inactive master (RocketMQ's
// scanInactiveMasterAndTriggerReelect), and gives a master to a group
// without one as soon as a broker of its SyncStateSet is back.
func (c *Controller) electWhereNeeded() {
	c.mu.Lock()
	if !c.isLeader {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	type election struct {
		g    GroupState
		next int32
	}
	var todo []election
	for _, g := range c.sm.all() {
		alive := func(id int32) bool { return c.aliveLocked(brokerKey{g.Cluster, g.Group, id}, now) }
		if g.MasterID != NoMaster && alive(g.MasterID) {
			continue
		}
		next := candidate(g, alive, c.cfg.UncleanElection)
		if next == NoMaster && g.MasterID == NoMaster {
			continue
		}
		todo = append(todo, election{g, next})
	}
	c.mu.Unlock()
	for _, e := range todo {
		st, err := c.propose(c.ctx, command{Op: opElect, Cluster: e.g.Cluster, Group: e.g.Group,
			MasterEpoch: e.g.MasterEpoch, NewMaster: e.next})
		if err != nil {
			c.log.Warn("master election failed", "cluster", e.g.Cluster, "group", e.g.Group, "error", err)
			continue
		}
		c.elections.Add(1)
		if st.MasterID == NoMaster {
			c.log.Warn("master inactive and no eligible broker: group has no master", "cluster", st.Cluster,
				"group", st.Group, "sync-state-set", st.SyncStateSet, "master-epoch", st.MasterEpoch)
		}
	}
}
