package memplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// member is a registered handle that records the views it receives.
type member struct {
	h        *Handle
	mu       sync.Mutex
	last     broker.ClusterView
	views    int
	inside   atomic.Int32 // onView calls in progress
	overlaps atomic.Int32 // onView calls that overlapped another
	block    chan struct{}
}

func (m *member) onView(v broker.ClusterView) {
	if m.inside.Add(1) > 1 {
		m.overlaps.Add(1)
	}
	defer m.inside.Add(-1)
	if m.block != nil {
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = v
	m.views++
}

func (m *member) view() broker.ClusterView {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// awaitView polls until the member's newest view satisfies ok.
func (m *member) awaitView(t *testing.T, what string, ok func(broker.ClusterView) bool) broker.ClusterView {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if !ok(m.view()) {
			return fmt.Errorf("broker view never showed %s; last %+v", what, m.view())
		}
		return nil
	})
	return m.view()
}

func newPlane(t *testing.T, opts Options) *Plane {
	t.Helper()
	opts.Logger = testutil.Logger(t, slog.LevelDebug)
	p := New(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

func register(t *testing.T, p *Plane, id int32) *member {
	t.Helper()
	m := &member{h: p.Handle()}
	info := broker.BrokerInfo{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 9000+id)}
	if err := m.h.Register(context.Background(), info, m.onView); err != nil {
		t.Fatalf("register broker %d: %v", id, err)
	}
	t.Cleanup(func() { m.h.Close() })
	return m
}

func cluster(t *testing.T, opts Options, ids ...int32) (*Plane, []*member) {
	t.Helper()
	p := newPlane(t, opts)
	var ms []*member
	for _, id := range ids {
		ms = append(ms, register(t, p, id))
	}
	return p, ms
}

func mustState(t *testing.T, p *Plane, topic string, part int32) broker.PartitionState {
	t.Helper()
	st, ok := p.State(topic, part)
	if !ok {
		t.Fatalf("no state for %s/%d", topic, part)
	}
	return st
}

func TestViewsListLiveBrokersAndController(t *testing.T) {
	p, ms := cluster(t, Options{ClusterID: "c1"}, 3, 1, 2)
	for _, m := range ms {
		v := m.awaitView(t, "3 brokers", func(v broker.ClusterView) bool { return len(v.Brokers) == 3 })
		if v.ClusterID != "c1" || v.ControllerID != 1 {
			t.Fatalf("view cluster %q controller %d, want c1 and 1", v.ClusterID, v.ControllerID)
		}
		if ids := brokerIDs(v); !slices.Equal(ids, []int32{1, 2, 3}) {
			t.Fatalf("brokers %v, want [1 2 3]", ids)
		}
	}
	ms[1].h.Close() // broker 1, the controller, dies
	v := ms[0].awaitView(t, "broker 1 gone", func(v broker.ClusterView) bool { return len(v.Brokers) == 2 })
	if v.ControllerID != 2 {
		t.Fatalf("controller %d after broker 1 left, want 2", v.ControllerID)
	}
	if got := brokerIDs(p.View()); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("plane view brokers %v", got)
	}
}

func brokerIDs(v broker.ClusterView) []int32 {
	var ids []int32
	for _, b := range v.Brokers {
		ids = append(ids, b.ID)
	}
	return ids
}

func TestCreateTopicsPlacesReplicasRoundRobin(t *testing.T) {
	p, ms := cluster(t, Options{}, 1, 2, 3)
	cfg := broker.TopicConfig{Name: "orders", Partitions: 6, ReplicationFactor: 3, MinInsync: 2, Fanout: broker.FanoutChain}
	if errs := ms[0].h.CreateTopics(context.Background(), []broker.TopicConfig{cfg}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	leaders := map[int32]int{}
	for part := range int32(6) {
		st := mustState(t, p, "orders", part)
		if len(st.Replicas) != 3 || len(slices.Compact(slices.Sorted(slices.Values(st.Replicas)))) != 3 {
			t.Fatalf("partition %d replicas %v, want 3 distinct", part, st.Replicas)
		}
		if st.Leader != st.Replicas[0] || st.LeaderEpoch != 0 || !slices.Equal(st.ISR, st.Replicas) {
			t.Fatalf("partition %d: %+v, want leader = first replica, epoch 0, ISR = replicas", part, st)
		}
		if st.MinInsync != 2 || st.Fanout != broker.FanoutChain || st.Topic != "orders" || st.Partition != part {
			t.Fatalf("partition %d: %+v, config not copied", part, st)
		}
		leaders[st.Leader]++
	}
	if leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders per broker %v, want 2 each", leaders)
	}
	for _, m := range ms {
		m.awaitView(t, "the topic", func(v broker.ClusterView) bool {
			tv, ok := v.Topic("orders")
			return ok && len(tv.Partitions) == 6 && tv.Config == cfg
		})
	}
}

func TestCreateTopicsErrors(t *testing.T) {
	_, ms := cluster(t, Options{}, 1, 2)
	h := ms[0].h
	ok := broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 2}
	for _, tc := range []struct {
		name string
		cfg  broker.TopicConfig
		want error
	}{
		{"created", ok, nil},
		{"exists", ok, broker.ErrTopicExists},
		{"too many replicas", broker.TopicConfig{Name: "u", Partitions: 1, ReplicationFactor: 3}, broker.ErrNotEnoughBrokers},
		{"empty name", broker.TopicConfig{Partitions: 1, ReplicationFactor: 1}, broker.ErrInvalidTopic},
		{"bad character", broker.TopicConfig{Name: "a/b", Partitions: 1, ReplicationFactor: 1}, broker.ErrInvalidTopic},
		{"no partitions", broker.TopicConfig{Name: "v", ReplicationFactor: 1}, broker.ErrInvalidTopic},
		{"no replicas", broker.TopicConfig{Name: "v", Partitions: 1}, broker.ErrInvalidTopic},
		{"min insync above rf", broker.TopicConfig{Name: "v", Partitions: 1, ReplicationFactor: 1, MinInsync: 2}, broker.ErrInvalidTopic},
		{"bad fanout", broker.TopicConfig{Name: "v", Partitions: 1, ReplicationFactor: 1, Fanout: "tree"}, broker.ErrInvalidTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := h.CreateTopics(context.Background(), []broker.TopicConfig{tc.cfg})
			if len(errs) != 1 || !errors.Is(errs[0], tc.want) || (tc.want == nil) != (errs[0] == nil) {
				t.Fatalf("errs = %v, want %v", errs, tc.want)
			}
		})
	}
	// One error per topic, in order; a duplicate within a request fails.
	errs := h.CreateTopics(context.Background(), []broker.TopicConfig{
		{Name: "x", Partitions: 1, ReplicationFactor: 1}, {Name: "x", Partitions: 1, ReplicationFactor: 1}})
	if errs[0] != nil || !errors.Is(errs[1], broker.ErrTopicExists) {
		t.Fatalf("errs = %v", errs)
	}
}

func TestAlterISR(t *testing.T) {
	p, ms := cluster(t, Options{}, 1, 2, 3)
	if err := p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	st := mustState(t, p, "t", 0)
	leader := ms[st.Leader-1].h
	follower := ms[st.Replicas[1]-1].h
	shrink := func(mod func(*broker.PartitionState)) broker.PartitionState {
		w := clone(st)
		w.ISR = st.Replicas[:2]
		if mod != nil {
			mod(&w)
		}
		return w
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		h    *Handle
		want broker.PartitionState
		err  error
	}{
		{"stale epoch", leader, shrink(func(w *broker.PartitionState) { w.LeaderEpoch-- }), broker.ErrFenced},
		{"not the leader", follower, shrink(nil), broker.ErrFenced},
		{"stale version", leader, shrink(func(w *broker.PartitionState) { w.Version-- }), broker.ErrStaleState},
		{"without the leader", leader, shrink(func(w *broker.PartitionState) { w.ISR = st.Replicas[1:] }), broker.ErrInvalidTopic},
		{"not a replica", leader, shrink(func(w *broker.PartitionState) { w.ISR = []int32{st.Leader, 9} }), broker.ErrInvalidTopic},
		{"twice", leader, shrink(func(w *broker.PartitionState) { w.ISR = []int32{st.Leader, st.Leader} }), broker.ErrInvalidTopic},
		{"unknown partition", leader, shrink(func(w *broker.PartitionState) { w.Partition = 1 }), broker.ErrUnknownTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.h.AlterISR(ctx, tc.want); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if now := mustState(t, p, "t", 0); now.Version != st.Version {
		t.Fatalf("failed AlterISR calls changed the version %d -> %d", st.Version, now.Version)
	}

	got, err := leader.AlterISR(ctx, shrink(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version <= st.Version || !slices.Equal(got.ISR, st.Replicas[:2]) || got.LeaderEpoch != st.LeaderEpoch {
		t.Fatalf("AlterISR returned %+v (before %+v)", got, st)
	}
	for _, m := range ms {
		m.awaitView(t, "the shrunk ISR", func(v broker.ClusterView) bool {
			tv, ok := v.Topic("t")
			return ok && tv.Partitions[0].Version == got.Version && slices.Equal(tv.Partitions[0].ISR, got.ISR)
		})
	}
	// The version read before is now stale.
	if _, err := leader.AlterISR(ctx, shrink(nil)); !errors.Is(err, broker.ErrStaleState) {
		t.Fatalf("second AlterISR with the old version: %v", err)
	}
}

func TestSetLeaderAndSetISR(t *testing.T) {
	p, _ := cluster(t, Options{}, 1, 2, 3)
	if err := p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	st := mustState(t, p, "t", 0)
	if err := p.SetISR("t", 0, []int32{st.Leader}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetISR("t", 0, []int32{st.Replicas[1]}); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Fatalf("SetISR without the leader: %v", err)
	}
	next := st.Replicas[2]
	if err := p.SetLeader("t", 0, next); err != nil {
		t.Fatal(err)
	}
	got := mustState(t, p, "t", 0)
	if got.Leader != next || got.LeaderEpoch != st.LeaderEpoch+1 || !slices.Equal(got.ISR, []int32{st.Leader, next}) || got.Version <= st.Version {
		t.Fatalf("after SetLeader(%d): %+v", next, got)
	}
	if err := p.SetLeader("t", 0, 7); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Fatalf("SetLeader to a non-replica: %v", err)
	}
	if err := p.SetLeader("nope", 0, 1); !errors.Is(err, broker.ErrUnknownTopic) {
		t.Fatalf("SetLeader on an unknown topic: %v", err)
	}
	if err := p.Update("t", 0, func(s *broker.PartitionState) { s.AsyncAck = true; s.Replicas = nil }); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, p, "t", 0); !got.AsyncAck || len(got.Replicas) != 3 {
		t.Fatalf("after Update: %+v", got)
	}
}

func TestFailover(t *testing.T) {
	p, ms := cluster(t, Options{}, 1, 2, 3)
	for _, cfg := range []broker.TopicConfig{
		{Name: "clean", Partitions: 3, ReplicationFactor: 3},
		{Name: "solo", Partitions: 3, ReplicationFactor: 1},
		{Name: "unclean", Partitions: 3, ReplicationFactor: 2, UncleanElection: true},
	} {
		if err := p.CreateTopic(cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Make broker 2 the only ISR member of unclean partitions it leads.
	for part := range int32(3) {
		if st := mustState(t, p, "unclean", part); st.Leader == 2 {
			p.SetISR("unclean", part, []int32{2})
		}
	}
	before := p.View()
	ms[1].h.Close() // broker 2 crashes: nothing moves by itself
	if st := mustState(t, p, "clean", 1); st.Leader != before.Topics[0].Partitions[1].Leader {
		t.Fatalf("leadership moved on a crash without AutoFailover: %+v", st)
	}
	if n := p.Failover(2); n == 0 {
		t.Fatal("Failover changed nothing")
	}
	for _, tv := range before.Topics {
		for _, old := range tv.Partitions {
			st := mustState(t, p, old.Topic, old.Partition)
			switch {
			case old.Leader != 2:
				if st.Leader != old.Leader || st.LeaderEpoch != old.LeaderEpoch {
					t.Errorf("%s/%d led by %d changed leader: %+v", old.Topic, old.Partition, old.Leader, st)
				}
			case tv.Config.Name == "solo":
				if st.Leader != -1 || st.LeaderEpoch != old.LeaderEpoch+1 || !slices.Equal(st.ISR, []int32{2}) {
					t.Errorf("%s/%d with no other replica: %+v, want leader -1, epoch+1, ISR kept", old.Topic, old.Partition, st)
				}
			case tv.Config.Name == "unclean":
				if st.Leader == -1 || st.Leader == 2 || !slices.Equal(st.ISR, []int32{st.Leader}) || st.LeaderEpoch != old.LeaderEpoch+1 {
					t.Errorf("%s/%d unclean: %+v, want a live replica as leader and sole ISR member", old.Topic, old.Partition, st)
				}
			default:
				want := old.ISR[slices.IndexFunc(old.ISR, func(r int32) bool { return r != 2 })]
				if st.Leader != want || st.LeaderEpoch != old.LeaderEpoch+1 {
					t.Errorf("%s/%d: %+v, want leader %d (first live ISR member) at epoch %d", old.Topic, old.Partition, st, want, old.LeaderEpoch+1)
				}
			}
			if len(old.ISR) > 1 && st.InISR(2) {
				t.Errorf("%s/%d: broker 2 still in ISR %v", old.Topic, old.Partition, st.ISR)
			}
		}
	}

	// Broker 2 returns: it takes the partitions only it can lead.
	back := register(t, p, 2)
	for part := range int32(3) {
		old := before.Topics[1].Partitions[part]
		if st := mustState(t, p, "solo", part); old.Leader == 2 && (st.Leader != 2 || st.LeaderEpoch != old.LeaderEpoch+2) {
			t.Errorf("solo/%d after broker 2 returned: %+v", part, st)
		}
	}
	back.awaitView(t, "itself", func(v broker.ClusterView) bool { _, ok := v.Broker(2); return ok })
	ms[0].awaitView(t, "broker 2 back", func(v broker.ClusterView) bool { return len(v.Brokers) == 3 })
}

func TestAutoFailoverAndDeregister(t *testing.T) {
	p, ms := cluster(t, Options{AutoFailover: true}, 1, 2, 3)
	if err := p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	ms[0].h.Close() // crash of broker 1 with AutoFailover
	ms[1].h.Deregister(context.Background())
	for part := range int32(3) {
		st := mustState(t, p, "t", part)
		if st.Leader != 3 || !slices.Equal(st.ISR, []int32{3}) {
			t.Errorf("t/%d: %+v, want broker 3 leading alone", part, st)
		}
	}
	if got := brokerIDs(p.View()); !slices.Equal(got, []int32{3}) {
		t.Fatalf("live brokers %v after a crash and a deregister", got)
	}
	if _, err := ms[1].h.AlterISR(context.Background(), mustState(t, p, "t", 0)); !errors.Is(err, broker.ErrControlPlaneDown) {
		t.Fatalf("AlterISR after Deregister: %v", err)
	}
}

func TestRegisterErrors(t *testing.T) {
	p, ms := cluster(t, Options{}, 1)
	ctx := context.Background()
	noop := func(broker.ClusterView) {}
	if err := p.Handle().Register(ctx, broker.BrokerInfo{ID: 1}, noop); err == nil {
		t.Fatal("a second broker 1 registered")
	}
	if err := ms[0].h.Register(ctx, broker.BrokerInfo{ID: 5}, noop); err == nil {
		t.Fatal("a handle registered twice")
	}
	if err := p.Handle().Register(ctx, broker.BrokerInfo{ID: 2}, nil); err == nil {
		t.Fatal("nil onView accepted")
	}
	closed := p.Handle()
	closed.Close()
	if err := closed.Register(ctx, broker.BrokerInfo{ID: 3}, noop); !errors.Is(err, broker.ErrControlPlaneDown) {
		t.Fatalf("register on a closed handle: %v", err)
	}
	// After the first broker 1 closes, a new handle may take its id.
	ms[0].h.Close()
	register(t, p, 1)
}

func TestViewsCoalesceAndNeverOverlap(t *testing.T) {
	p := newPlane(t, Options{})
	m := &member{h: p.Handle(), block: make(chan struct{})}
	if err := m.h.Register(context.Background(), broker.BrokerInfo{ID: 1}, m.onView); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.h.Close() })
	// onView is stuck on the first view; the plane must not be.
	for i := range 50 {
		if err := p.CreateTopic(broker.TopicConfig{Name: fmt.Sprint("t", i), Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	close(m.block)
	m.awaitView(t, "all 50 topics", func(v broker.ClusterView) bool { return len(v.Topics) == 50 })
	m.mu.Lock()
	views := m.views
	m.mu.Unlock()
	if views > 3 {
		t.Fatalf("%d views delivered for 51 changes while blocked, want them coalesced", views)
	}
	if n := m.overlaps.Load(); n != 0 {
		t.Fatalf("onView overlapped itself %d times", n)
	}
}

func TestViewsAreIndependentSnapshots(t *testing.T) {
	p, ms := cluster(t, Options{}, 1)
	p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 1})
	v := ms[0].awaitView(t, "the topic", func(v broker.ClusterView) bool { return len(v.Topics) == 1 })
	v.Topics[0].Partitions[0].ISR[0] = 42
	v.Brokers[0].ID = 42
	if st := mustState(t, p, "t", 0); st.ISR[0] != 1 {
		t.Fatalf("changing a delivered view changed the plane: %+v", st)
	}
	pv := p.View()
	pv.Topics[0].Partitions[0].Replicas[0] = 42
	if st := mustState(t, p, "t", 0); st.Replicas[0] != 1 {
		t.Fatalf("changing View() changed the plane: %+v", st)
	}
}

func TestDeleteTopics(t *testing.T) {
	p, ms := cluster(t, Options{}, 1)
	p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 2, ReplicationFactor: 1})
	errs := ms[0].h.DeleteTopics(context.Background(), []string{"t", "missing"})
	if errs[0] != nil || !errors.Is(errs[1], broker.ErrUnknownTopic) {
		t.Fatalf("errs = %v", errs)
	}
	if _, ok := p.State("t", 0); ok {
		t.Fatal("deleted topic still has state")
	}
	ms[0].awaitView(t, "no topics, t deleted", func(v broker.ClusterView) bool {
		return len(v.Topics) == 0 && slices.Equal(v.DeletedTopics, []string{"t"})
	})
	// Created again: no longer announced as deleted.
	if err := p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	ms[0].awaitView(t, "t again, nothing deleted", func(v broker.ClusterView) bool {
		_, ok := v.Topic("t")
		return ok && len(v.DeletedTopics) == 0
	})
}

func TestContextAndClose(t *testing.T) {
	p, ms := cluster(t, Options{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if errs := ms[0].h.CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 1, ReplicationFactor: 1}}); !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("CreateTopics with a cancelled context: %v", errs)
	}
	p.Close()
	if errs := ms[0].h.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 1, ReplicationFactor: 1}}); !errors.Is(errs[0], broker.ErrControlPlaneDown) {
		t.Fatalf("CreateTopics after Plane.Close: %v", errs)
	}
}

func TestNoGoroutinesLeftAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(Options{})
	for id := range int32(5) {
		if err := p.Handle().Register(context.Background(), broker.BrokerInfo{ID: id}, func(broker.ClusterView) {}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	testutil.Eventually(t, 5*time.Second, func() error {
		if now := runtime.NumGoroutine(); now > before {
			return fmt.Errorf("%d goroutines, %d before", now, before)
		}
		return nil
	})
}

// TestConcurrentDrivers hammers the plane from several goroutines; run with
// -race.
func TestConcurrentDrivers(t *testing.T) {
	p, ms := cluster(t, Options{}, 1, 2, 3)
	p.CreateTopic(broker.TopicConfig{Name: "t", Partitions: 4, ReplicationFactor: 3})
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			for range 100 {
				for part := range int32(4) {
					st := mustStateNoFail(p, "t", part)
					if st.Leader == m.h.info.ID {
						st.ISR = []int32{st.Leader}
						m.h.AlterISR(context.Background(), st)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			p.SetLeader("t", int32(i%4), int32(i%3)+1)
		}
	})
	wg.Wait()
	v := p.View()
	for _, m := range ms {
		m.awaitView(t, "the final state", func(got broker.ClusterView) bool {
			tv, ok := got.Topic("t")
			return ok && tv.Partitions[3].Version == v.Topics[0].Partitions[3].Version
		})
	}
}

func mustStateNoFail(p *Plane, topic string, part int32) broker.PartitionState {
	st, _ := p.State(topic, part)
	return st
}
