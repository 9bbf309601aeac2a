package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/internal/lifecycle"
	"github.com/brokerlab/brokerlab/internal/logs"
)

// ClientConfig configures a broker's connection to the controllers.
type ClientConfig struct {
	// Controllers are the addresses of every controller; the client finds
	// the leader by asking them.
	Controllers []string `yaml:"controllers" json:"controllers"`
	// Cluster, Group and BrokerID name the broker (BrokerID >= 1).
	Cluster  string `yaml:"cluster" json:"cluster"`
	Group    string `yaml:"group" json:"group"`
	BrokerID int32  `yaml:"broker_id" json:"broker_id"`
	// HeartbeatInterval is how often the broker heartbeats to the leader;
	// every answer carries the group's state.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	// RequestTimeout bounds one request (and one dial).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// MaxFrameBytes is the largest frame accepted from a controller.
	MaxFrameBytes int `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// Dial opens connections; nil uses net.Dialer.
	Dial DialFunc `yaml:"-" json:"-"`
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Validate reports the first invalid setting.
func (c ClientConfig) Validate() error {
	switch {
	case len(c.Controllers) == 0 || slices.Contains(c.Controllers, ""):
		return errors.New("controller: client needs controller addresses")
	case c.Cluster == "" || c.Group == "":
		return errors.New("controller: client needs a cluster and a group")
	case c.BrokerID < 1:
		return fmt.Errorf("controller: broker id %d, must be >= 1", c.BrokerID)
	case c.HeartbeatInterval <= 0 || c.RequestTimeout <= 0:
		return errors.New("controller: heartbeat interval and request timeout must be positive")
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("controller: max frame bytes %d is below 1024", c.MaxFrameBytes)
	}
	return nil
}

// ClientStats count a client's traffic (frames with their prefix).
type ClientStats struct {
	Requests int64 `json:"requests"`
	BytesOut int64 `json:"bytes_out"`
	BytesIn  int64 `json:"bytes_in"`
}

// Client is a broker's side of controller mode (RocketMQ's
// ReplicasManager): it heartbeats to the controller leader, follows the
// group's state from the answers and pushes, and sends AlterSyncStateSet.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	life  *lifecycle.Owner // goroutines and Close
	ctx   context.Context  // ends at Close
	first chan struct{}    // closed at the first state
	fOnce sync.Once

	cbMu sync.Mutex // serialises onState

	mu      sync.Mutex // guards the fields below
	self    Broker
	onState func(GroupState)
	cn      *conn
	state   GroupState
	has     bool
	started bool
	left    bool // Leave was called: no more heartbeats

	requests, closedIn, closedOut atomic.Int64
}

// NewClient validates cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	life := lifecycle.New()
	return &Client{cfg: cfg, log: log, life: life, ctx: life.Context(), first: make(chan struct{})}, nil
}

// Start begins heartbeating as the broker with Kafka node id nodeID at
// addr; onState gets every new group state, never concurrently.
func (c *Client) Start(nodeID int32, addr string, onState func(GroupState)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || !c.life.Go(c.run) {
		return fmt.Errorf("controller: client start: %w", ErrClosed)
	}
	c.started = true
	c.self = Broker{BrokerID: c.cfg.BrokerID, NodeID: nodeID, Addr: addr}
	c.onState = onState
	return nil
}

// WaitState returns the first state the controllers answered, or ctx's
// error.
func (c *Client) WaitState(ctx context.Context) (GroupState, error) {
	select {
	case <-c.first:
		g, _ := c.State()
		return g, nil
	case <-ctx.Done():
		return GroupState{}, fmt.Errorf("%w: no controller leader answered: %w", ErrUnavailable, ctx.Err())
	case <-c.ctx.Done():
		return GroupState{}, ErrClosed
	}
}

// State returns the latest group state.
func (c *Client) State() (GroupState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.clone(), c.has
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	st := ClientStats{Requests: c.requests.Load(), BytesIn: c.closedIn.Load(), BytesOut: c.closedOut.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cn != nil {
		st.BytesIn += c.cn.bytesIn.Load()
		st.BytesOut += c.cn.bytesOut.Load()
	}
	return st
}

// Close stops heartbeats and closes the connection: the leader marks the
// broker inactive at once. Idempotent.
func (c *Client) Close() error {
	c.life.Close(func() {
		c.mu.Lock()
		cn := c.cn
		c.mu.Unlock()
		if cn != nil {
			cn.close()
		}
	})
	return nil
}

// AlterSyncStateSet asks the leader to replace the SyncStateSet, naming
// the master epoch and SyncStateSet epoch the broker holds. It returns the
// new state (also delivered to onState).
func (c *Client) AlterSyncStateSet(ctx context.Context, masterEpoch, setEpoch int32, set []int32) (GroupState, error) {
	return c.askLeader(ctx, typeAlterSSS, alterRequest{Cluster: c.cfg.Cluster, Group: c.cfg.Group, MasterID: c.cfg.BrokerID,
		MasterEpoch: masterEpoch, SyncStateSetEpoch: setEpoch, SyncStateSet: set})
}

// askLeader sends a request to the leader, within the request timeout, and
// adopts the group state it answers with.
func (c *Client) askLeader(ctx context.Context, typ string, req any) (GroupState, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	cn, err := c.leaderConn(ctx)
	if err != nil {
		return GroupState{}, err
	}
	var st GroupState
	c.requests.Add(1)
	if err := cn.call(ctx, typ, req, &st); err != nil {
		return GroupState{}, err
	}
	c.setState(st)
	return st, nil
}

// Leave stops heartbeats and tells the leader the broker leaves: it is
// inactive at once and, if it was master, another member of the
// SyncStateSet is elected before the answer, which carries the new state
// (also delivered to onState). Pushes keep coming until Close.
func (c *Client) Leave(ctx context.Context) (GroupState, error) {
	c.mu.Lock()
	c.left = true
	self := c.self
	c.mu.Unlock()
	return c.askLeader(ctx, typeLeave, heartbeatRequest{Cluster: c.cfg.Cluster, Group: c.cfg.Group,
		BrokerID: self.BrokerID, NodeID: self.NodeID, Addr: self.Addr})
}

// leaderConn returns the connection to the leader, waiting while the
// client looks for one (after a controller failover).
func (c *Client) leaderConn(ctx context.Context) (*conn, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		cn := c.cn
		c.mu.Unlock()
		if cn != nil && !cn.isClosed() {
			return cn, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no controller leader connected: %w", ErrUnavailable, ctx.Err())
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-t.C:
		}
	}
}

// run keeps a heartbeat connection to the leader.
func (c *Client) run() {
	backoff := min(50*time.Millisecond, c.cfg.HeartbeatInterval)
	next := 0
	hint := ""
	for c.ctx.Err() == nil {
		addr := hint
		if addr == "" {
			addr = c.cfg.Controllers[next%len(c.cfg.Controllers)]
			next++
		}
		hint = ""
		err := c.session(addr)
		var nl *NotLeaderError
		if errors.As(err, &nl) && nl.Leader != "" && nl.Leader != addr {
			hint = nl.Leader
			continue // go straight to the named leader
		}
		if c.ctx.Err() != nil {
			return
		}
		c.log.Debug("controller session ended", "controller", addr, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session dials addr and heartbeats over the connection until it fails.
func (c *Client) session(addr string) error {
	dial := c.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	nc, err := dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return err
	}
	cn := newConn(nc, c.cfg.MaxFrameBytes, c.cfg.RequestTimeout)
	if !c.life.Go(func() { c.readLoop(cn) }) {
		cn.close()
		return ErrClosed
	}
	defer func() {
		cn.close()
		c.mu.Lock()
		if c.cn == cn {
			c.cn = nil
		}
		c.mu.Unlock()
		c.closedIn.Add(cn.bytesIn.Load())
		c.closedOut.Add(cn.bytesOut.Load())
	}()
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for first := true; ; first = false {
		if err := c.heartbeat(cn, first); err != nil {
			return err
		}
		if first {
			c.log.Info("heartbeating to controller leader", "controller", addr)
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-cn.done:
			return fmt.Errorf("%w: connection to %s closed", ErrUnavailable, addr)
		case <-t.C:
		}
	}
}

// heartbeat sends one heartbeat; the first one that succeeds on a
// connection makes it the one AlterSyncStateSet uses. After Leave it sends
// nothing.
func (c *Client) heartbeat(cn *conn, first bool) error {
	c.mu.Lock()
	self, left := c.self, c.left
	c.mu.Unlock()
	if left {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	var st GroupState
	c.requests.Add(1)
	if err := cn.call(ctx, typeHeartbeat, heartbeatRequest{Cluster: c.cfg.Cluster, Group: c.cfg.Group,
		BrokerID: self.BrokerID, NodeID: self.NodeID, Addr: self.Addr}, &st); err != nil {
		return err
	}
	if first {
		c.mu.Lock()
		c.cn = cn
		c.mu.Unlock()
	}
	c.setState(st)
	return nil
}

// readLoop delivers replies and applies pushed states.
func (c *Client) readLoop(cn *conn) {
	for {
		f, err := cn.read()
		if err != nil {
			if errors.Is(err, ErrBadFrame) {
				c.log.Warn("closing controller connection after a bad frame", "error", err)
			}
			return
		}
		switch {
		case f.Kind == kindReply:
			cn.deliver(f.Env)
		case f.Kind == kindPush && f.Env.Type == typeStatePush:
			var st GroupState
			if err := decodeBody(f.Env.Body, &st); err != nil {
				c.log.Warn("ignoring a bad state push", "error", err)
				continue
			}
			c.setState(st)
		default:
			c.log.Warn("closing controller connection after an unexpected frame", "kind", f.Kind)
			cn.close()
			return
		}
	}
}

// setState adopts st unless it is older than the state held, and calls
// onState when the master, an epoch, the members or the inactive members
// changed (a registrar's view lists the group's active members: without
// the last, a slave whose group mate died kept listing it until the next
// master or epoch change).
func (c *Client) setState(st GroupState) {
	if st.Cluster != c.cfg.Cluster || st.Group != c.cfg.Group {
		return
	}
	c.cbMu.Lock()
	defer c.cbMu.Unlock()
	c.mu.Lock()
	old, had := c.state, c.has
	if had && (st.MasterEpoch < old.MasterEpoch || st.MasterEpoch == old.MasterEpoch && st.SyncStateSetEpoch < old.SyncStateSetEpoch) {
		c.mu.Unlock()
		return
	}
	c.state, c.has = st.clone(), true
	fn := c.onState
	c.mu.Unlock()
	c.fOnce.Do(func() { close(c.first) })
	changed := !had || old.MasterID != st.MasterID || old.MasterEpoch != st.MasterEpoch ||
		old.SyncStateSetEpoch != st.SyncStateSetEpoch || !slices.Equal(old.Brokers, st.Brokers) ||
		!slices.Equal(old.Inactive, st.Inactive)
	if changed && fn != nil && c.ctx.Err() == nil {
		fn(st.clone())
	}
}

// LeaderOf asks the controller at addr which controller leads: its id
// (from 1) and address, 0 and "" while it knows none. Runners use it to
// resolve the fault target "controller" where they cannot reach into the
// controllers' processes.
func LeaderOf(ctx context.Context, addr string, dial DialFunc) (id uint64, leaderAddr string, err error) {
	var r leaderReply
	err = ask(ctx, addr, dial, typeLeader, struct{}{}, &r)
	return r.LeaderID, r.LeaderAddr, err
}

// GroupOf asks the controller at addr for a group's state as applied
// there (a follower's may lag the leader's).
func GroupOf(ctx context.Context, addr string, dial DialFunc, cluster, group string) (GroupState, error) {
	var g GroupState
	err := ask(ctx, addr, dial, typeGetState, stateRequest{Cluster: cluster, Group: group}, &g)
	return g, err
}

// ask makes one request on a connection of its own, bounded by ctx.
func ask(ctx context.Context, addr string, dial DialFunc, typ string, body, out any) error {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	cn := newConn(nc, 4<<20, timeout)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			f, err := cn.read()
			if err != nil {
				return
			}
			if f.Kind == kindReply {
				cn.deliver(f.Env)
			}
		}
	}()
	err = cn.call(ctx, typ, body, out)
	cn.close()
	<-read
	return err
}
