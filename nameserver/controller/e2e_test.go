package controller_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
)

// End-to-end tests of controller mode: two real name servers, standalone
// controllers (one or three), real brokers (brokertest) in 2 groups x
// (master + slave): brokers 1 (a) and 2 (a), 3 (b) and 4 (b); each group's
// first broker to start becomes its master. Every connection goes over
// loopback TCP through a faultnet.Network.

const (
	topic = "orders"
	wait  = 30 * time.Second
)

func groupOf(id int32) (string, int32) { return []string{"a", "b"}[(id-1)/2], (id - 1) % 2 }

// ctrlID is the controller broker id of Kafka node id (see the registrar).
func ctrlID(node int32) int32 { _, id := groupOf(node); return id + 1 }

type cluster struct {
	c     *brokertest.Cluster
	nw    *faultnet.Network
	ctrls []*controller.Controller
	rc    *nameserver.RouteClient
	kc    *kclient.Client
	tm    nameserver.Timings
}

func e2eTimings() nameserver.Timings {
	t := nameserver.Fast()
	t.RoutePoll = 250 * time.Millisecond
	return t
}

type options struct {
	controllers int
	mode        string
	timings     func(*nameserver.Timings)
}

func newCluster(t testing.TB, o options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end cluster test")
	}
	log := testutil.Logger(t, slog.LevelWarn)
	cl := &cluster{nw: faultnet.New(log.With("component", "faultnet")), tm: e2eTimings()}
	if o.timings != nil {
		o.timings(&cl.tm)
	}
	t.Cleanup(func() { _ = cl.nw.Close() })

	lns := make([]net.Listener, o.controllers)
	peers := make([]string, o.controllers)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], peers[i] = ln, ln.Addr().String()
		cl.nw.Register(ctrlName(i), peers[i])
	}
	for i := range lns {
		cfg := cl.tm.Controller.Config()
		cfg.ID, cfg.Peers, cfg.Listener = uint64(i+1), peers, lns[i]
		cfg.Dial = cl.nw.Dialer(ctrlName(i))
		cfg.Logger = log.With("node", ctrlName(i))
		c, err := controller.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		cl.ctrls = append(cl.ctrls, c)
	}
	var nss []string
	for i := range 2 {
		cfg := cl.tm.ServerConfig()
		cfg.Listen, cfg.Logger = "127.0.0.1:0", log.With("node", fmt.Sprintf("ns-%d", i+1))
		s, err := nameserver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		cl.nw.Register(fmt.Sprintf("ns-%d", i+1), s.Addr())
		nss = append(nss, s.Addr())
	}
	mode := o.mode
	if mode == "" {
		mode = nameserver.ModeSync
	}
	cl.c = brokertest.New(t, brokertest.Brokers(4), brokertest.WithNetwork(cl.nw),
		brokertest.WithControlPlane(func(id int32) broker.ControlPlane {
			cfg := cl.tm.RegistrarConfig()
			cfg.NameServers, cfg.Controllers, cfg.Cluster = nss, peers, "c1"
			cfg.Group, cfg.BrokerID = groupOf(id)
			cfg.Mode = mode
			cfg.Dial = cl.nw.Dialer(brokertest.Name(id))
			cfg.Logger = log.With("node", brokertest.Name(id))
			r, err := nameserver.NewRegistrar(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}))
	rcfg := cl.tm.RouteClientConfig()
	rcfg.NameServers, rcfg.Dial, rcfg.Logger = nss, cl.nw.Dialer("client"), log.With("node", "client")
	rc, err := nameserver.NewRouteClient(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	cl.rc = rc
	cl.kc = kclient.New(kclient.Config{Dial: cl.nw.Dialer("client"), DialTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = cl.kc.Close() })

	cl.c.CreateTopic(t, broker.TopicConfig{Name: topic, Partitions: 8})
	testutil.Eventually(t, wait, func() error {
		r, err := rc.Refresh(context.Background(), topic)
		if err != nil {
			return err
		}
		if len(r.Groups) != 2 {
			return fmt.Errorf("route %+v", r)
		}
		return nil
	})
	// Both slaves join their group's SyncStateSet.
	cl.wantSyncStateSet(t, "a", 1, 2)
	cl.wantSyncStateSet(t, "b", 1, 2)
	cl.wantLeader(t, cl.partitions(t, "a"), 1)
	cl.wantLeader(t, cl.partitions(t, "b"), 3)
	return cl
}

func ctrlName(i int) string { return fmt.Sprintf("controller-%d", i+1) }

// leaderCtrl waits for a controller leader among the open ones.
func (cl *cluster) leaderCtrl(t testing.TB, skip ...*controller.Controller) *controller.Controller {
	t.Helper()
	var l *controller.Controller
	testutil.Eventually(t, wait, func() error {
		for _, c := range cl.ctrls {
			if !slices.Contains(skip, c) && c.IsLeader() {
				l = c
				return nil
			}
		}
		return errors.New("no controller leader")
	})
	return l
}

// state returns the leading controller's state of a group.
func (cl *cluster) state(t testing.TB, group string, skip ...*controller.Controller) controller.GroupState {
	t.Helper()
	st, _ := cl.leaderCtrl(t, skip...).Group("c1", group)
	return st
}

// wantSyncStateSet waits until a group's SyncStateSet is ids (controller
// broker ids).
func (cl *cluster) wantSyncStateSet(t testing.TB, group string, ids ...int32) controller.GroupState {
	t.Helper()
	var st controller.GroupState
	testutil.Eventually(t, wait, func() error {
		st = cl.state(t, group)
		if !slices.Equal(st.SyncStateSet, ids) {
			return fmt.Errorf("group %s: sync state set %v, want %v", group, st.SyncStateSet, ids)
		}
		return nil
	})
	return st
}

func (cl *cluster) partitions(t testing.TB, group string) []int32 {
	t.Helper()
	r, err := cl.rc.Refresh(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Groups {
		if g.Group == group {
			var ps []int32
			for i := range g.Queues {
				ps = append(ps, g.FirstPartition+i)
			}
			return ps
		}
	}
	t.Fatalf("no group %s in %+v", group, r)
	return nil
}

// wantLeader waits until every running broker's view has leader for parts.
func (cl *cluster) wantLeader(t testing.TB, parts []int32, leader int32) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		for _, id := range cl.c.IDs() {
			b := cl.c.Broker(id)
			if b == nil {
				continue
			}
			tv, ok := b.View().Topic(topic)
			if !ok {
				return fmt.Errorf("broker %d has no %s", id, topic)
			}
			for _, p := range parts {
				if got := tv.Partitions[p].Leader; got != leader {
					return fmt.Errorf("broker %d: %s/%d leader %d, want %d", id, topic, p, got, leader)
				}
			}
		}
		return nil
	})
}

// wantRouteMaster waits until the name servers route group's master to node.
func (cl *cluster) wantRouteMaster(t testing.TB, group string, node int32) {
	t.Helper()
	testutil.Eventually(t, wait, func() error {
		r, err := cl.rc.Refresh(context.Background(), topic)
		if err != nil {
			return err
		}
		for _, g := range r.Groups {
			if m, ok := g.Master(); g.Group == group && ok && m.NodeID == node {
				return nil
			}
		}
		return fmt.Errorf("route %+v: master of %s is not %d", r.Groups, group, node)
	})
}

type ack struct {
	partition int32
	offset    int64
	value     string
	at        time.Time
}

// producer is a RocketMQ-style producer: route from the name servers,
// masters only, acks=all, fault avoidance, route refresh on error.
type producer struct {
	cl *cluster
	ft *nameserver.FaultTolerance

	mu    sync.Mutex
	acked []ack
}

func (cl *cluster) startProducer(t testing.TB) *producer {
	ft, err := nameserver.NewFaultTolerance(nameserver.DefaultLatencyTable().Scaled(1.0 / 600))
	if err != nil {
		t.Fatal(err)
	}
	p := &producer{cl: cl, ft: ft}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

func (p *producer) run(ctx context.Context) {
	for seq := 0; ctx.Err() == nil; seq++ {
		r, err := p.cl.rc.Route(ctx, topic)
		if err != nil {
			continue
		}
		qs := r.WriteQueues(p.ft)
		if len(qs) == 0 {
			_, _ = p.cl.rc.Refresh(ctx, topic)
			continue
		}
		q := qs[seq%len(qs)]
		value := strconv.Itoa(seq)
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		off, err := p.cl.kc.Produce(sctx, q.Member.Addr, kclient.ProduceRequest{Topic: topic, Partition: q.Partition,
			Acks: -1, Timeout: time.Second, Records: []kclient.Record{{Value: []byte(value)}}})
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.ft.Update(q.Group, time.Since(start), err != nil)
		if err != nil {
			_, _ = p.cl.rc.Refresh(ctx, topic)
			continue
		}
		p.mu.Lock()
		p.acked = append(p.acked, ack{q.Partition, off, value, time.Now()})
		p.mu.Unlock()
	}
}

func (p *producer) ackedIn(parts []int32) []ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ack
	for _, a := range p.acked {
		if slices.Contains(parts, a.partition) {
			out = append(out, a)
		}
	}
	return out
}

// waitAcked waits for n more acks on parts and returns the time of the
// first of them.
func (p *producer) waitAcked(t testing.TB, parts []int32, n int) time.Time {
	t.Helper()
	base := len(p.ackedIn(parts))
	var first time.Time
	testutil.Eventually(t, wait, func() error {
		got := p.ackedIn(parts)
		if len(got) < base+n {
			return fmt.Errorf("%d acks on %v, want %d", len(got), parts, base+n)
		}
		first = got[base].at
		return nil
	})
	return first
}

// readAll reads a partition from addr up to its high watermark.
func (cl *cluster) readAll(ctx context.Context, addr string, partition int32) (map[int64]string, error) {
	out := map[int64]string{}
	offset := int64(0)
	for range 10000 {
		res, err := cl.kc.Fetch(ctx, addr, kclient.FetchRequest{Topic: topic, Partition: partition, Offset: offset,
			MaxWait: 10 * time.Millisecond, MaxBytes: 1 << 20})
		if err != nil {
			return nil, err
		}
		for _, r := range res.Records {
			out[r.Offset] = string(r.Value)
			offset = r.Offset + 1
		}
		if offset >= res.HighWatermark {
			return out, nil
		}
	}
	return nil, errors.New("partition does not end")
}

// missing returns the acks addr does not serve.
func (cl *cluster) missing(t testing.TB, addr string, acks []ack) []ack {
	t.Helper()
	lost, err := cl.lostIn(addr, acks)
	if err != nil {
		t.Fatal(err)
	}
	return lost
}

// lostIn returns the acks addr does not serve, or why it could not read.
func (cl *cluster) lostIn(addr string, acks []ack) ([]ack, error) {
	logs := map[int32]map[int64]string{}
	var lost []ack
	for _, a := range acks {
		if logs[a.partition] == nil {
			var l map[int64]string
			// Retried: a pooled connection to a broker that restarted on
			// the same address fails once.
			err := testutil.Poll(context.Background(), wait, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				l, err = cl.readAll(ctx, addr, a.partition)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("read %s/%d from %s: %w", topic, a.partition, addr, err)
			}
			logs[a.partition] = l
		}
		if logs[a.partition][a.offset] != a.value {
			lost = append(lost, a)
		}
	}
	return lost, nil
}
