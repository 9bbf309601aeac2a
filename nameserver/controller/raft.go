package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// startRaft creates the Raft node over an in-memory log, loaded from the
// data directory when there is one. Every controller starts with the full
// peer list (a static membership, like RocketMQ's controllerDLegerPeers);
// one with a kept log restarts from it, one without comes back empty and
// is brought up to date by the leader.
func (c *Controller) startRaft() error {
	c.storage = c.cfg.Storage
	if c.storage == nil {
		c.storage = raft.NewMemoryStorage()
	}
	if c.cfg.DataDir != "" {
		d, err := openDiskLog(c.cfg.DataDir, walMeta{ID: c.cfg.ID, Peers: c.cfg.Peers}, c.storage)
		if err != nil {
			return err
		}
		c.disk = d
	}
	rc := &raft.Config{
		ID:              c.cfg.ID,
		ElectionTick:    c.cfg.ElectionTicks,
		HeartbeatTick:   1,
		Storage:         c.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// A leader that cannot hear a quorum steps down, so a minority
		// never keeps electing masters.
		CheckQuorum: true,
		PreVote:     true,
		// Proposals are made on the leader only; a follower answers
		// "not leader" instead of forwarding.
		DisableProposalForwarding: true,
		Logger:                    raftLogger{c.log.With("component", "raft")},
	}
	if hs, _, err := c.storage.InitialState(); err == nil {
		c.term.Store(hs.GetTerm())
	}
	if last, _ := c.storage.LastIndex(); last > 0 {
		// A restart over a kept log: committed entries are applied
		// again from the start, rebuilding the state machine.
		c.node = raft.RestartNode(rc)
		return nil
	}
	peers := make([]raft.Peer, len(c.cfg.Peers))
	for i := range c.cfg.Peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	c.node = raft.StartNode(rc, peers)
	return nil
}

// raftLoop is the one owner of the Raft node: it ticks it, persists and
// sends what it readies, and applies committed commands.
func (c *Controller) raftLoop() {
	t := time.NewTicker(c.cfg.TickInterval)
	defer t.Stop()
	defer func() {
		c.node.Stop()
		if c.disk != nil {
			if err := c.disk.close(); err != nil {
				c.log.Warn("closing the raft log failed", "error", err)
			}
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.node.Tick()
		case rd := <-c.node.Ready():
			if rd.SoftState != nil {
				c.setLeader(rd.SoftState.Lead, rd.SoftState.RaftState == raft.StateLeader)
			}
			if !raft.IsEmptySnap(rd.Snapshot) {
				_ = c.storage.ApplySnapshot(rd.Snapshot)
			}
			if c.disk != nil {
				if err := c.disk.save(rd.HardState, rd.Entries); err != nil {
					// Acting on what is not durable could break a vote
					// or an acknowledged append: stop instead.
					c.log.Error("writing the raft log failed, controller stops", "error", err)
					c.cancel()
					return
				}
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				_ = c.storage.SetHardState(rd.HardState)
				c.term.Store(rd.HardState.GetTerm())
			}
			_ = c.storage.Append(rd.Entries)
			c.sendRaft(rd.Messages)
			for _, e := range rd.CommittedEntries {
				c.applyEntry(e)
			}
			c.node.Advance()
		}
	}
}

func (c *Controller) applyEntry(e *raftpb.Entry) {
	switch e.GetType() {
	case raftpb.EntryConfChange:
		cc := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), cc); err == nil {
			c.node.ApplyConfChange(cc)
		}
		return
	case raftpb.EntryNormal:
	default:
		return
	}
	if len(e.GetData()) == 0 {
		return // a new leader's empty entry
	}
	var cmd command
	if err := json.Unmarshal(e.GetData(), &cmd); err != nil {
		c.log.Error("skipping an undecodable log entry", "index", e.GetIndex(), "error", err)
		return
	}
	c.mu.Lock()
	before, _ := c.sm.get(cmd.Cluster, cmd.Group)
	st, err := c.sm.apply(cmd)
	w := c.waiters[cmd.Req]
	delete(c.waiters, cmd.Req)
	leader := c.isLeader
	c.mu.Unlock()
	if w != nil {
		w <- applyResult{st, err}
	}
	if err == nil && cmd.Op == opElect {
		c.masterSwitches.Add(1)
	}
	if err == nil && st.SyncStateSetEpoch != before.SyncStateSetEpoch {
		c.sssChanges.Add(1)
	}
	if err == nil && leader {
		c.pushState(st)
	}
	if err == nil && cmd.Op == opElect {
		c.log.Info("master elected", "cluster", st.Cluster, "group", st.Group, "master", st.MasterID,
			"master-epoch", st.MasterEpoch, "sync-state-set", st.SyncStateSet)
	}
}

type applyResult struct {
	state GroupState
	err   error
}

// propose replicates cmd and returns its result once applied here. Only
// the leader proposes.
func (c *Controller) propose(ctx context.Context, cmd command) (GroupState, error) {
	if err := c.leaderOnly(); err != nil {
		return GroupState{}, err
	}
	cmd.Req = c.cfg.ID<<48 | c.reqSeq.Add(1)
	data, err := json.Marshal(cmd)
	if err != nil {
		return GroupState{}, err
	}
	ch := make(chan applyResult, 1)
	c.mu.Lock()
	c.waiters[cmd.Req] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, cmd.Req)
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	c.proposals.Add(1)
	if err := c.node.Propose(ctx, data); err != nil {
		return GroupState{}, fmt.Errorf("%w: propose %s: %w", ErrUnavailable, cmd.Op, err)
	}
	select {
	case r := <-ch:
		return r.state, r.err
	case <-ctx.Done():
		return GroupState{}, fmt.Errorf("%w: %s not committed: %w", ErrUnavailable, cmd.Op, ctx.Err())
	}
}

// raftLogger sends the Raft library's logs to slog. Fatal and Panic keep
// the library's contract: they stop the node on a broken invariant.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.Panic(v...) }
func (r raftLogger) Fatalf(f string, v ...any)   { r.Panicf(f, v...) }
func (r raftLogger) Panic(v ...any)              { r.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { r.Panic(fmt.Sprintf(f, v...)) }
