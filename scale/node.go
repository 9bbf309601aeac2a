package scale

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

// node is a control-plane-only broker: a topology's real broker.ControlPlane
// (the same code `brokerlab broker` runs) with a stand-in for the data
// plane. The stand-in applies views as a broker does (it keeps the newest),
// reports ISR changes the way a partition leader would (a follower absent
// from the view for ReplicaLagMax leaves the ISR; a follower back in the
// view rejoins it), and reports what it saw to the observer. It holds no
// log, serves no Kafka client and keeps no copy of the view beyond the
// newest.
type node struct {
	id       int32
	cp       broker.ControlPlane
	obs      *observer
	lagMax   time.Duration
	viewKick chan struct{}
	// onApplied, if set, sees each view the node applies.
	onApplied func(id int32, at time.Time, v broker.ClusterView)
	// full, if set, is the configuration of a real broker (Kafka server,
	// log, replication) run over cp instead of the stand-in: the node then
	// only watches the views cp hands that broker (the comparison mode).
	full *broker.Config
	b    *broker.Broker
	ln   net.Listener // the stand-in's address

	mu      sync.Mutex
	pending *broker.ClusterView
	absent  map[int32]time.Time // followers missing from the view, since
	// inflight: partitions with an ISR proposal open; answered: the state
	// the plane returned for one, until a view is as new.
	inflight map[tp]bool
	answered map[tp]broker.PartitionState

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newNode(id int32, cp broker.ControlPlane, obs *observer, lagMax time.Duration) *node {
	ctx, cancel := context.WithCancel(context.Background())
	return &node{id: id, cp: cp, obs: obs, lagMax: lagMax, viewKick: make(chan struct{}, 1),
		absent: map[int32]time.Time{}, inflight: map[tp]bool{}, answered: map[tp]broker.PartitionState{},
		ctx: ctx, cancel: cancel}
}

// start registers the node; views flow until stop.
func (n *node) start(ctx context.Context) error {
	n.wg.Add(1)
	go n.loop()
	if n.full == nil {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.ln = ln
		n.mu.Unlock()
		n.wg.Add(1)
		go n.accept(ln)
		return n.cp.Register(ctx, broker.BrokerInfo{ID: n.id, Addr: ln.Addr().String()}, n.onView)
	}
	b, err := broker.New(*n.full, tap{n.cp, n.onView})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.b = b
	n.mu.Unlock()
	return b.Start(ctx)
}

// tap is a control plane that shows the node every view it hands the
// real broker, when it hands it over.
type tap struct {
	broker.ControlPlane
	see func(broker.ClusterView)
}

func (t tap) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	return t.ControlPlane.Register(ctx, self, func(v broker.ClusterView) {
		t.see(v)
		onView(v)
	})
}

// accept answers the liveness checks a control plane makes by dialling a
// broker (a RocketMQ slave probing its master): it accepts a connection
// and closes it. No Kafka client dials a control-plane-only broker. When
// the node crashes the port refuses, as a dead broker's does.
func (n *node) accept(ln net.Listener) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

// onView keeps only the newest view, as the broker's mailbox does, so the
// control plane is never blocked by the stand-in.
func (n *node) onView(v broker.ClusterView) {
	n.mu.Lock()
	n.pending = &v
	n.mu.Unlock()
	select {
	case n.viewKick <- struct{}{}:
	default:
	}
}

func (n *node) loop() {
	defer n.wg.Done()
	tick := time.NewTicker(max(n.lagMax/4, 50*time.Millisecond))
	defer tick.Stop()
	var last *broker.ClusterView
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.viewKick:
			n.mu.Lock()
			v := n.pending
			n.pending = nil
			n.mu.Unlock()
			if v == nil {
				continue
			}
			last = v
			at := time.Now()
			n.obs.sawView(n.id, at, *v)
			if n.onApplied != nil {
				n.onApplied(n.id, at, *v)
			}
			if n.full == nil {
				n.maintainISR(*v)
			}
		case <-tick.C:
			if last != nil && n.full == nil {
				n.maintainISR(*last)
			}
		}
	}
}

// maintainISR proposes ISR changes for the partitions the node leads, as
// the broker's leader does: each proposal runs on its own goroutine with
// a 10 s bound and at most one is in flight per partition, so a plane that
// holds an AlterISR open (a controller-mode registrar waits for the
// group's other partitions before it grows the SyncStateSet) never stops
// views from being applied. A proposal the plane accepted is not made
// again until a view at least as new as its answer arrives.
func (n *node) maintainISR(v broker.ClusterView) {
	live := make(map[int32]bool, len(v.Brokers))
	for _, b := range v.Brokers {
		live[b.ID] = true
	}
	now := time.Now()
	n.mu.Lock()
	for id := range n.absent {
		if live[id] {
			delete(n.absent, id)
		}
	}
	n.mu.Unlock()
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if p.Leader != n.id || n.ctx.Err() != nil {
				continue
			}
			isr := n.wantISR(p, live, now)
			if slices.Equal(isr, p.ISR) {
				continue
			}
			k := tp{p.Topic, p.Partition}
			n.mu.Lock()
			busy := n.inflight[k]
			ans, answered := n.answered[k]
			if answered && !olderThan(ans, p) {
				delete(n.answered, k) // the view has caught up with the answer
				answered = false
			}
			if !busy && !answered {
				n.inflight[k] = true
			}
			n.mu.Unlock()
			if busy || answered {
				continue
			}
			want := p
			want.ISR = isr
			n.wg.Add(1)
			go n.propose(k, want)
		}
	}
}

// propose sends one ISR change; a refusal (a stale version) waits for the
// next view, as the broker does.
func (n *node) propose(k tp, want broker.PartitionState) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	st, err := n.cp.AlterISR(ctx, want)
	cancel()
	n.mu.Lock()
	delete(n.inflight, k)
	if err == nil {
		n.answered[k] = st
	}
	n.mu.Unlock()
}

// olderThan reports whether the view's state p predates the plane's answer
// a (a lower leader epoch, or the same epoch and a lower version).
func olderThan(a, p broker.PartitionState) bool {
	return p.LeaderEpoch < a.LeaderEpoch || (p.LeaderEpoch == a.LeaderEpoch && p.Version < a.Version)
}

// wantISR drops followers absent for longer than lagMax and adds replicas
// that are live (a stand-in follower is always caught up).
func (n *node) wantISR(p broker.PartitionState, live map[int32]bool, now time.Time) []int32 {
	var out []int32
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range p.Replicas {
		switch {
		case r == n.id || live[r]:
			out = append(out, r)
		case slices.Contains(p.ISR, r):
			since, ok := n.absent[r]
			if !ok {
				n.absent[r] = now
				since = now
			}
			if now.Sub(since) < n.lagMax {
				out = append(out, r)
			}
		}
	}
	return out
}

// crash stops the node as a killed broker stops: no deregistration.
func (n *node) crash() {
	n.cancel()
	n.mu.Lock()
	b, ln := n.b, n.ln
	n.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if b != nil {
		b.Kill() // closes cp too
	}
	_ = n.cp.Close()
	n.wg.Wait()
}
