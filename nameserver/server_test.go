package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestRegisterWithEveryNameServer(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns1, ns2 := startServer(t, log), startServer(t, log)
	nss := []string{ns1.Addr(), ns2.Addr()}
	startRegistrar(t, log, nss, "a", 0, 1)
	startRegistrar(t, log, nss, "a", 1, 2)
	startRegistrar(t, log, nss, "b", 0, 3)

	for _, ns := range []*Server{ns1, ns2} {
		c := newClient(t, log, ns.Addr())
		wantMembers(t, c, "a", 1, 2)
		wantMembers(t, c, "b", 3)
		info, err := c.ClusterInfo(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		a, _ := info.Group("c1", "a")
		if m, ok := a.Master(); !ok || m.NodeID != 1 || m.Addr != "127.0.0.1:19001" || m.Mode != ModeSync {
			t.Fatalf("group a master %+v %v", m, ok)
		}
		// Heartbeats keep coming, each counted with its bytes.
		first := ns.Stats()
		testutil.Eventually(t, waitFor, func() error {
			st := ns.Stats()
			if st.RegisterRequests < first.RegisterRequests+3 {
				return fmt.Errorf("register requests %d, want > %d", st.RegisterRequests, first.RegisterRequests+3)
			}
			return nil
		})
		st := ns.Stats()
		if st.Brokers != 3 || st.RegisterBytesIn < 100*st.RegisterRequests/2 || st.RegisterBytesOut == 0 || st.ClusterInfoQueries == 0 {
			t.Fatalf("stats %+v", st)
		}
		// Brokers poll too; while nothing changes the name server answers
		// "unchanged" (only once a broker polls this very name server).
		testutil.Eventually(t, waitFor, func() error {
			if st := ns.Stats(); st.SnapshotQueries > 0 && st.SnapshotsUnchanged == 0 {
				return fmt.Errorf("%d snapshots, none unchanged", st.SnapshotQueries)
			}
			return nil
		})
	}
}

// rawRegister registers once over a connection of its own and never again,
// returning the connection.
func rawRegister(t *testing.T, addr string, req RegisterRequest) *peer {
	t.Helper()
	p := dialPeer(t, addr, peerConfig{maxFrame: 1 << 20, timeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := p.call(ctx, typeRegister, req, nil); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSilentBrokerExpiresByScan(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log, shortExpiry)
	c := newClient(t, log, ns.Addr())
	start := time.Now()
	p := rawRegister(t, ns.Addr(), RegisterRequest{Cluster: "c1", Group: "a", NodeID: 7, Addr: "127.0.0.1:1", Mode: ModeSync})
	wantMembers(t, c, "a", 7)
	wantMembers(t, c, "a") // expired ...
	if d := time.Since(start); d < time.Second {
		t.Fatalf("expired after %v, before the 1s expiry", d)
	}
	select { // ... and its connection closed, as RocketMQ does
	case <-p.done:
	case <-time.After(waitFor):
		t.Fatal("connection of the expired broker still open")
	}
	if st := ns.Stats(); st.Expired != 1 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBrokerDroppedWhenConnectionCloses(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log, func(c *Config) { c.BrokerExpiry = time.Hour })
	c := newClient(t, log, ns.Addr())
	b := startRegistrar(t, log, []string{ns.Addr()}, "a", 0, 1)
	startRegistrar(t, log, []string{ns.Addr()}, "a", 1, 2)
	wantMembers(t, c, "a", 1, 2)
	if err := b.reg.Close(); err != nil {
		t.Fatal(err)
	}
	wantMembers(t, c, "a", 2) // at once: the expiry is an hour
	if st := ns.Stats(); st.Dropped != 1 || st.Expired != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDeregister(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns1, ns2 := startServer(t, log), startServer(t, log)
	b := startRegistrar(t, log, []string{ns1.Addr(), ns2.Addr()}, "a", 0, 1)
	wantMembers(t, newClient(t, log, ns1.Addr()), "a", 1)
	wantMembers(t, newClient(t, log, ns2.Addr()), "a", 1)
	// A classic group has no master switch: the registrar leaves and says
	// there was nothing to hand off.
	if err := b.reg.Deregister(context.Background()); !errors.Is(err, broker.ErrNoHandoff) {
		t.Fatalf("Deregister: %v, want ErrNoHandoff", err)
	}
	for _, ns := range []*Server{ns1, ns2} {
		if st := ns.Stats(); st.Unregistered != 1 || st.Brokers != 0 {
			t.Fatalf("stats %+v", st)
		}
	}
	// Heartbeats stop: the sessions end at their next tick without
	// registering again.
	before := ns1.Stats().RegisterRequests
	testutil.Eventually(t, waitFor, func() error {
		for _, st := range b.reg.Stats() {
			if st.Connected {
				return fmt.Errorf("session to %s still up", st.NameServer)
			}
		}
		return nil
	})
	if got := ns1.Stats(); got.RegisterRequests != before || got.Brokers != 0 {
		t.Fatalf("registered again: %+v", got)
	}
}

func TestRouteQuery(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	nss := []string{ns.Addr()}
	startRegistrar(t, log, nss, "a", 0, 1)
	startRegistrar(t, log, nss, "a", 1, 2)
	startRegistrar(t, log, nss, "b", 0, 3)
	c := newClient(t, log, nss...)
	wantMembers(t, c, "a", 1, 2)
	wantMembers(t, c, "b", 3)
	ctx := context.Background()

	if _, err := c.Route(ctx, "nope"); !errors.Is(err, broker.ErrUnknownTopic) {
		t.Fatalf("route of unknown topic: %v", err)
	}
	created, err := c.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "orders", Partitions: 8, MinInsync: 2}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if !routesEqual(created, r) {
		t.Fatalf("created %+v, queried %+v", created, r)
	}
	if r.Partitions != 8 || r.MinInsync != 2 || len(r.Groups) != 2 {
		t.Fatalf("route %+v", r)
	}
	for i, g := range r.Groups {
		if g.Queues != 4 || g.FirstPartition != int32(4*i) {
			t.Fatalf("group %d: %+v", i, g)
		}
	}
	ga, ok := groupOf(r, "a")
	if !ok || len(ga.Members) != 2 || ga.Members[0].NodeID != 1 || ga.Members[1].NodeID != 2 || ga.Members[1].Addr != "127.0.0.1:19002" {
		t.Fatalf("group a route %+v", ga)
	}
	// Producers write to masters only; consumers read from the master.
	wq := r.WriteQueues(nil)
	if len(wq) != 8 {
		t.Fatalf("write queues %+v", wq)
	}
	for _, q := range wq {
		if q.Member.BrokerID != MasterID {
			t.Fatalf("write queue on a slave: %+v", q)
		}
	}
	if q, ok := r.ReadQueue(ga.FirstPartition); !ok || q.Member.NodeID != 1 {
		t.Fatalf("read queue %+v %v", q, ok)
	}
	if st := ns.Stats(); st.RouteQueries < 2 {
		t.Fatalf("stats %+v", st)
	}
}

func routesEqual(a, b TopicRoute) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func groupOf(r TopicRoute, group string) (GroupRoute, bool) {
	for _, g := range r.Groups {
		if g.Group == group {
			return g, true
		}
	}
	return GroupRoute{}, false
}

// wantRoute polls a client until the topic's route satisfies ok.
func wantRoute(t *testing.T, c *RouteClient, topic string, ok func(TopicRoute) error) TopicRoute {
	t.Helper()
	var r TopicRoute
	testutil.Eventually(t, waitFor, func() error {
		var err error
		if r, err = c.Refresh(context.Background(), topic); err != nil {
			return err
		}
		return ok(r)
	})
	return r
}

func queuesPerGroup(want map[string]int32) func(TopicRoute) error {
	return func(r TopicRoute) error {
		got := make(map[string]int32)
		for _, g := range r.Groups {
			got[g.Group] = g.Queues
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("queues per group %v, want %v", got, want)
		}
		return nil
	}
}

func TestCreateTopicVisibleThroughEveryNameServer(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	// A long heartbeat: creation must not wait for it.
	ns1, ns2 := startServer(t, log), startServer(t, log)
	nss := []string{ns1.Addr(), ns2.Addr()}
	slow := func(c *RegistrarConfig) { c.HeartbeatInterval = time.Hour }
	ba := startRegistrar(t, log, nss, "a", 0, 1, slow)
	startRegistrar(t, log, nss, "a", 1, 2, slow)
	startRegistrar(t, log, nss, "b", 0, 3, slow)
	c1, c2 := newClient(t, log, ns1.Addr()), newClient(t, log, ns2.Addr())
	for _, c := range []*RouteClient{c1, c2} {
		wantMembers(t, c, "a", 1, 2)
		wantMembers(t, c, "b", 3)
	}
	ctx := context.Background()

	t.Run("via name server", func(t *testing.T) {
		if _, err := c1.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "t1"}, QueuesPerGroup: 4}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*RouteClient{c1, c2} {
			wantRoute(t, c, "t1", queuesPerGroup(map[string]int32{"a": 4, "b": 4}))
		}
		if _, err := c2.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "t1", Partitions: 1}}); !errors.Is(err, broker.ErrTopicExists) {
			t.Fatalf("second creation: %v", err)
		}
	})
	t.Run("via broker", func(t *testing.T) {
		errs := ba.reg.CreateTopics(ctx, []broker.TopicConfig{
			{Name: "t2", Partitions: 5, ReplicationFactor: 2},
			{Name: "t1", Partitions: 1},
			{Name: "bad/name", Partitions: 1},
			{Name: "t3", Partitions: 0},
		})
		want := []error{nil, broker.ErrTopicExists, broker.ErrInvalidTopic, broker.ErrInvalidTopic}
		for i, err := range errs {
			if !errors.Is(err, want[i]) || (want[i] == nil && err != nil) {
				t.Fatalf("topic %d: %v, want %v", i, err, want[i])
			}
		}
		for _, c := range []*RouteClient{c1, c2} {
			r := wantRoute(t, c, "t2", func(r TopicRoute) error {
				if len(r.Groups) != 2 {
					return fmt.Errorf("%d groups", len(r.Groups))
				}
				return nil
			})
			if r.Groups[0].Queues != 3 || r.Groups[1].Queues != 2 || r.Groups[1].FirstPartition != 3 || r.Partitions != 5 {
				t.Fatalf("5 partitions over 2 groups: %+v", r)
			}
		}
		// The creating broker's view has it at once.
		tv, ok := mustView(t, ba).Topic("t2")
		if !ok || len(tv.Partitions) != 5 || tv.Config.ReplicationFactor != 2 {
			t.Fatalf("view of t2: %+v %v", tv, ok)
		}
	})
	t.Run("groups and delete", func(t *testing.T) {
		if _, err := c2.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "only-b", Partitions: 3}, Groups: []string{"b"}}); err != nil {
			t.Fatal(err)
		}
		wantRoute(t, c1, "only-b", queuesPerGroup(map[string]int32{"b": 3}))
		if _, err := c2.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "x", Partitions: 3}, Groups: []string{"zz"}}); !errors.Is(err, broker.ErrNotEnoughBrokers) {
			t.Fatalf("placing on a missing group: %v", err)
		}
		if err := c1.DeleteTopic(ctx, "only-b"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*RouteClient{c1, c2} {
			testutil.Eventually(t, waitFor, func() error {
				if _, err := c.Refresh(ctx, "only-b"); !errors.Is(err, broker.ErrUnknownTopic) {
					return fmt.Errorf("after delete: %v", err)
				}
				return nil
			})
		}
		if err := c1.DeleteTopic(ctx, "only-b"); !errors.Is(err, broker.ErrUnknownTopic) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func mustView(t *testing.T, b *testBroker) broker.ClusterView {
	t.Helper()
	v, ok := b.views.last()
	if !ok {
		t.Fatal("no view delivered")
	}
	return v
}

func TestCreateTopicWithoutGroups(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	c := newClient(t, log, ns.Addr())
	// A slave alone is no place for a topic: no master leads its queues.
	startRegistrar(t, log, []string{ns.Addr()}, "a", 1, 2)
	wantMembers(t, c, "a", 2)
	_, err := c.CreateTopic(context.Background(), CreateTopicRequest{Config: broker.TopicConfig{Name: "t", Partitions: 2}})
	if !errors.Is(err, broker.ErrNotEnoughBrokers) {
		t.Fatalf("got %v", err)
	}
}

// A broker cut off from one name server only is expired there after the
// expiry and kept by the other; clients of each see different routes until
// the link heals.
func TestBrokerCutFromOneNameServer(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	nw := faultnet.New(log.With("node", "faultnet"))
	t.Cleanup(func() { _ = nw.Close() })
	ns1, ns2 := startServer(t, log, shortExpiry), startServer(t, log, shortExpiry)
	nw.Register("ns-1", ns1.Addr())
	nw.Register("ns-2", ns2.Addr())
	nss := []string{ns1.Addr(), ns2.Addr()}
	via := func(name string) func(*RegistrarConfig) {
		return func(c *RegistrarConfig) { c.Dial = nw.Dialer(name) }
	}
	startRegistrar(t, log, nss, "a", 0, 1, via("broker-1"))
	startRegistrar(t, log, nss, "b", 0, 2, via("broker-2"))
	c1, c2 := newClient(t, log, ns1.Addr()), newClient(t, log, ns2.Addr())
	// A name server places a topic over the groups registered with it:
	// create only once ns-1 knows both.
	wantMembers(t, c1, "a", 1)
	wantMembers(t, c1, "b", 2)
	ctx := context.Background()
	if _, err := c1.CreateTopic(ctx, CreateTopicRequest{Config: broker.TopicConfig{Name: "t"}, QueuesPerGroup: 2}); err != nil {
		t.Fatal(err)
	}
	both := queuesPerGroup(map[string]int32{"a": 2, "b": 2})
	wantRoute(t, c1, "t", both)
	wantRoute(t, c2, "t", both)

	nw.Cut("broker-1", "ns-1")
	cut := time.Now()
	wantRoute(t, c1, "t", queuesPerGroup(map[string]int32{"b": 2}))
	if d := time.Since(cut); d < time.Second-100*time.Millisecond {
		t.Fatalf("ns-1 dropped the cut broker after %v, before its expiry", d)
	}
	if r, err := c2.Refresh(ctx, "t"); err != nil || both(r) != nil {
		t.Fatalf("ns-2 lost the broker it still hears from: %+v %v", r, err)
	}
	if st := ns1.Stats(); st.Expired != 1 {
		t.Fatalf("ns-1 stats %+v", st)
	}
	if st := ns2.Stats(); st.Expired != 0 || st.Dropped != 0 {
		t.Fatalf("ns-2 stats %+v", st)
	}

	nw.Heal("broker-1", "ns-1")
	wantRoute(t, c1, "t", both)
}

// Killing one name server is invisible to brokers and clients that know
// another.
func TestNameServerLoss(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns1, ns2 := startServer(t, log), startServer(t, log)
	nss := []string{ns1.Addr(), ns2.Addr()}
	ba := startRegistrar(t, log, nss, "a", 0, 1)
	bb := startRegistrar(t, log, nss, "b", 0, 2)
	// Both groups must be on both name servers: a topic is spread over the
	// groups the answering name server knows.
	for _, ns := range nss {
		c := newClient(t, log, ns)
		wantMembers(t, c, "a", 1)
		wantMembers(t, c, "b", 2)
	}
	c := newClient(t, log, nss...)
	ctx := context.Background()
	if errs := ba.reg.CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 4}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	wantRoute(t, c, "t", queuesPerGroup(map[string]int32{"a": 2, "b": 2}))
	// The creation reached one name server; the other learns the topic from
	// the brokers' next registrations. Losing ns-1 before that would lose the
	// route with it, which is not what this test is about.
	for _, ns := range nss {
		wantRoute(t, newClient(t, log, ns), "t", queuesPerGroup(map[string]int32{"a": 2, "b": 2}))
	}

	if err := ns1.Close(); err != nil {
		t.Fatal(err)
	}
	// Clients fail over without an error surfacing.
	for range 5 {
		if _, err := c.Refresh(ctx, "t"); err != nil {
			t.Fatalf("route after losing ns-1: %v", err)
		}
	}
	if errs := bb.reg.CreateTopics(ctx, []broker.TopicConfig{{Name: "t2", Partitions: 2}}); errs[0] != nil {
		t.Fatalf("create after losing ns-1: %v", errs[0])
	}
	wantRoute(t, c, "t2", queuesPerGroup(map[string]int32{"a": 1, "b": 1}))
	// Both brokers' views keep both groups and their leaders.
	for _, b := range []*testBroker{ba, bb} {
		testutil.Eventually(t, waitFor, func() error {
			for p := range int32(2) {
				st, err := b.partition("t2", p)
				if err != nil {
					return err
				}
				if st.Leader < 0 {
					return fmt.Errorf("t2/%d leaderless", p)
				}
			}
			return nil
		})
	}
	if st := ns2.Stats(); st.Brokers != 2 {
		t.Fatalf("ns-2 stats %+v", st)
	}
}
