package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// heartbeatRequest is a broker's heartbeat (RocketMQ BrokerHeartbeat plus
// its registerBroker: an unknown or moved broker is registered first).
type heartbeatRequest struct {
	Cluster  string `json:"cluster"`
	Group    string `json:"group"`
	BrokerID int32  `json:"broker_id"`
	NodeID   int32  `json:"node_id"`
	Addr     string `json:"addr"`
}

// alterRequest is a master's AlterSyncStateSet.
type alterRequest struct {
	Cluster           string  `json:"cluster"`
	Group             string  `json:"group"`
	MasterID          int32   `json:"master_id"`
	MasterEpoch       int32   `json:"master_epoch"`
	SyncStateSetEpoch int32   `json:"sync_state_set_epoch"`
	SyncStateSet      []int32 `json:"sync_state_set"`
}

// stateRequest asks for a group's state.
type stateRequest struct {
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
}

// leaderReply names the controller leader ("" and 0 when none is known).
type leaderReply struct {
	LeaderID   uint64 `json:"leader_id"`
	LeaderAddr string `json:"leader_addr"`
}

func encodeBody(v any) (json.RawMessage, error) { return json.Marshal(v) }

// handle serves one broker request on its own goroutine.
func (c *Controller) handle(cn *conn, req envelope) {
	c.requests.Add(1)
	c.byType[typeIndex(req.Type)].Add(1)
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	var (
		body any
		err  error
	)
	switch req.Type {
	case typeHeartbeat:
		var r heartbeatRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body, err = c.heartbeat(ctx, cn, r)
		}
	case typeLeave:
		var r heartbeatRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body, err = c.leave(ctx, cn, r)
		}
	case typeAlterSSS:
		var r alterRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body, err = c.alter(ctx, r)
		}
	case typeGetState:
		var r stateRequest
		if err = decodeBody(req.Body, &r); err == nil {
			g, ok := c.Group(r.Cluster, r.Group)
			if !ok {
				err = fmt.Errorf("%w: unknown group %s/%s", ErrBadRequest, r.Cluster, r.Group)
			}
			body = g
		}
	case typeLeader:
		var r struct{}
		if err = decodeBody(req.Body, &r); err == nil {
			body = leaderReply{LeaderID: c.lead.Load(), LeaderAddr: c.leaderAddr()}
		}
	default:
		err = fmt.Errorf("%w: unknown request type %q", ErrBadRequest, req.Type)
	}
	_ = cn.reply(req.ID, body, err)
}

func (c *Controller) heartbeat(ctx context.Context, cn *conn, r heartbeatRequest) (GroupState, error) {
	switch {
	case r.Cluster == "" || r.Group == "":
		return GroupState{}, fmt.Errorf("%w: cluster and group are required", ErrBadRequest)
	case r.BrokerID < 1 || r.NodeID < 0 || r.Addr == "":
		return GroupState{}, fmt.Errorf("%w: broker id %d, node id %d, address %q", ErrBadRequest, r.BrokerID, r.NodeID, r.Addr)
	}
	if err := c.leaderOnly(); err != nil {
		return GroupState{}, err
	}
	c.heartbeats.Add(1)
	k := brokerKey{r.Cluster, r.Group, r.BrokerID}
	now := time.Now()
	c.mu.Lock()
	if l := c.live[k]; l != nil && l.left && l.conn == cn {
		// A heartbeat that crossed the broker's leave: it stays gone.
		g, _ := c.sm.get(r.Cluster, r.Group)
		g.Inactive = c.inactiveLocked(g, now)
		c.mu.Unlock()
		return g, nil
	}
	back := !c.aliveLocked(k, now)
	c.live[k] = &liveness{lastSeen: now, conn: cn}
	g, ok := c.sm.get(r.Cluster, r.Group)
	c.mu.Unlock()
	if back {
		c.log.Info("broker active", "cluster", r.Cluster, "group", r.Group, "broker-id", r.BrokerID, "addr", r.Addr)
	}
	b, known := g.Broker(r.BrokerID)
	if !ok || !known || b.NodeID != r.NodeID || b.Addr != r.Addr {
		var err error
		g, err = c.propose(ctx, command{Op: opRegister, Cluster: r.Cluster, Group: r.Group,
			Broker: Broker{BrokerID: r.BrokerID, NodeID: r.NodeID, Addr: r.Addr}})
		if err != nil {
			return GroupState{}, err
		}
	}
	if back && (g.MasterID == NoMaster || g.MasterID == r.BrokerID) {
		c.kickElection()
	}
	c.mu.Lock()
	g.Inactive = c.inactiveLocked(g, now)
	c.mu.Unlock()
	return g, nil
}

// alter is AlterSyncStateSet: the master proposes a new SyncStateSet with
// the epochs it holds; brokers it adds must be alive (as RocketMQ checks).
func (c *Controller) alter(ctx context.Context, r alterRequest) (GroupState, error) {
	if err := c.leaderOnly(); err != nil {
		return GroupState{}, err
	}
	c.mu.Lock()
	g, ok := c.sm.get(r.Cluster, r.Group)
	now := time.Now()
	for _, id := range r.SyncStateSet {
		if ok && !g.InSync(id) && !c.aliveLocked(brokerKey{r.Cluster, r.Group, id}, now) {
			c.mu.Unlock()
			return GroupState{}, fmt.Errorf("%w: broker %d is not active", ErrBadRequest, id)
		}
	}
	c.mu.Unlock()
	st, err := c.propose(ctx, command{Op: opAlter, Cluster: r.Cluster, Group: r.Group, MasterID: r.MasterID,
		MasterEpoch: r.MasterEpoch, SyncStateSetEpoch: r.SyncStateSetEpoch, SyncStateSet: slices.Clone(r.SyncStateSet)})
	if err != nil {
		return GroupState{}, err
	}
	c.mu.Lock()
	st.Inactive = c.inactiveLocked(st, time.Now())
	c.mu.Unlock()
	return st, nil
}

// leave is a broker's graceful leave (RocketMQ 5 has none; this is Kafka's
// controlled shutdown in its terms): the broker is inactive at once, and
// when it is its group's master the leader elects another member of the
// SyncStateSet now. It answers once the group has another master, or has
// none left to elect, with that state; the connection stays so pushes still
// reach the broker until it closes.
func (c *Controller) leave(ctx context.Context, cn *conn, r heartbeatRequest) (GroupState, error) {
	if r.Cluster == "" || r.Group == "" || r.BrokerID < 1 {
		return GroupState{}, fmt.Errorf("%w: cluster, group and broker id are required", ErrBadRequest)
	}
	if err := c.leaderOnly(); err != nil {
		return GroupState{}, err
	}
	k := brokerKey{r.Cluster, r.Group, r.BrokerID}
	c.mu.Lock()
	c.live[k] = &liveness{conn: cn, closed: true, left: true}
	c.mu.Unlock()
	c.log.Info("broker left", "cluster", r.Cluster, "group", r.Group, "broker-id", r.BrokerID)
	c.kickElection()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		c.mu.Lock()
		g, ok := c.sm.get(r.Cluster, r.Group)
		alive := func(id int32) bool { return c.aliveLocked(brokerKey{g.Cluster, g.Group, id}, time.Now()) }
		done := !ok || g.MasterID != r.BrokerID || candidate(g, alive, c.cfg.UncleanElection) == NoMaster
		if done {
			g.Inactive = c.inactiveLocked(g, time.Now())
		}
		c.mu.Unlock()
		if done {
			return g, nil
		}
		select {
		case <-ctx.Done():
			return GroupState{}, fmt.Errorf("%w: no new master yet: %w", ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}
