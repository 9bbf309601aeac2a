package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestRegisterElectsOneController(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 3, nil)
	c := controllerOf(t, hs)
	v := hs[0].lastView()
	if v.ClusterID == "" {
		t.Fatal("empty cluster id")
	}
	for _, h := range hs {
		hv := h.lastView()
		if hv.ClusterID != v.ClusterID {
			t.Fatalf("broker %d sees cluster %q, broker 0 %q", h.id, hv.ClusterID, v.ClusterID)
		}
		if hv.ControllerID != c.id {
			t.Fatalf("broker %d sees controller %d, acting controller is %d", h.id, hv.ControllerID, c.id)
		}
	}
	b, ok := v.Broker(2)
	if !ok || b.Addr != "127.0.0.1:19002" {
		t.Fatalf("broker 2 registered as %+v", b)
	}
	// A second Register is refused; Close is idempotent.
	if err := hs[0].p.Register(context.Background(), broker.BrokerInfo{ID: 0, Addr: "x:1"}, func(broker.ClusterView) {}); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("second register: %v", err)
	}
	if err := hs[0].p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hs[0].p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCreateTopicsPlacesBalancedReplicas(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 3, nil)
	c := controllerOf(t, hs)
	via := without(hs, c)[0] // through a broker that is not the controller
	createTopic(t, hs, via, broker.TopicConfig{Name: "orders", Partitions: 6, ReplicationFactor: 3, MinInsync: 2, Fanout: broker.FanoutChain})

	// CreateTopics returned: the creating broker's view already has it.
	tv, ok := via.p.View().Topic("orders")
	if !ok || len(tv.Partitions) != 6 {
		t.Fatalf("view after create: %+v", tv)
	}
	leaders := map[int32]int{}
	for i, ps := range tv.Partitions {
		if ps.Partition != int32(i) || ps.Topic != "orders" {
			t.Fatalf("partition %d is %s/%d", i, ps.Topic, ps.Partition)
		}
		if len(ps.Replicas) != 3 || len(slicesCompactSorted(ps.Replicas)) != 3 {
			t.Fatalf("partition %d replicas %v", i, ps.Replicas)
		}
		if ps.Leader != ps.Replicas[0] || ps.LeaderEpoch != 0 || !sameSet(ps.ISR, ps.Replicas) {
			t.Fatalf("partition %d initial state %+v", i, ps)
		}
		if ps.MinInsync != 2 || ps.Fanout != broker.FanoutChain || ps.Version == 0 {
			t.Fatalf("partition %d: min insync %d fanout %q version %d", i, ps.MinInsync, ps.Fanout, ps.Version)
		}
		leaders[ps.Leader]++
	}
	for id := range int32(3) {
		if leaders[id] != 2 {
			t.Fatalf("leaders per broker %v, want 2 each", leaders)
		}
	}
	// Every broker gets the same topic.
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, h := range hs {
			if got, ok := h.lastView().Topic("orders"); !ok || !slices.EqualFunc(got.Partitions, tv.Partitions, samePartition) {
				return fmt.Errorf("broker %d: %+v", h.id, got)
			}
		}
		return nil
	})

	ctx := context.Background()
	errs := via.p.CreateTopics(ctx, []broker.TopicConfig{
		{Name: "orders", Partitions: 1, ReplicationFactor: 1},
		{Name: "too-wide", Partitions: 1, ReplicationFactor: 4},
		{Name: "bad/name", Partitions: 1, ReplicationFactor: 1},
		{Name: "zero", Partitions: 0, ReplicationFactor: 1},
		{Name: "minisr", Partitions: 1, ReplicationFactor: 1, MinInsync: 2},
		{Name: "fan", Partitions: 1, ReplicationFactor: 1, Fanout: "tree"},
		{Name: "ok", Partitions: 2, ReplicationFactor: 1},
	})
	want := []error{broker.ErrTopicExists, broker.ErrNotEnoughBrokers, broker.ErrInvalidTopic, broker.ErrInvalidTopic,
		broker.ErrInvalidTopic, broker.ErrInvalidTopic, nil}
	for i, err := range errs {
		if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
			t.Errorf("topic %d: got %v, want %v", i, err, want[i])
		}
	}
	if _, ok := via.p.View().Topic("too-wide"); ok {
		t.Fatal("refused topic is in the view")
	}

	// Delete: gone from the view at return, unknown the second time.
	if err := hs[0].p.DeleteTopics(ctx, []string{"orders"})[0]; err != nil {
		t.Fatal(err)
	}
	if v := hs[0].p.View(); !slices.Equal(v.DeletedTopics, []string{"orders"}) {
		t.Fatalf("view after the deletion: topics %v, deleted %v; want orders announced as deleted", v.Topics, v.DeletedTopics)
	}
	if _, ok := hs[0].p.View().Topic("orders"); ok {
		t.Fatal("deleted topic still in the view")
	}
	// Every broker's view announces the deletion, read from etcd.
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, h := range hs {
			if v := h.lastView(); !v.Deleted("orders") {
				return fmt.Errorf("broker %d: deleted topics %v", h.id, v.DeletedTopics)
			}
		}
		return nil
	})
	if err := hs[0].p.DeleteTopics(ctx, []string{"orders"})[0]; !errors.Is(err, broker.ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
	// The name is free again, and no longer announced as deleted.
	createTopic(t, hs, hs[1], broker.TopicConfig{Name: "orders", Partitions: 1, ReplicationFactor: 3})
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, h := range hs {
			if v := h.lastView(); v.Deleted("orders") {
				return fmt.Errorf("broker %d: recreated topic still announced as deleted", h.id)
			}
		}
		return nil
	})
}

func slicesCompactSorted(s []int32) []int32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func samePartition(a, b broker.PartitionState) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && slices.Equal(a.Replicas, b.Replicas) &&
		a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && slices.Equal(a.ISR, b.ISR) && a.Version == b.Version
}

// The controller removes a topic it cannot place (a broker died between the
// creating broker's check and the controller's placement), and the creating
// broker gets ErrNotEnoughBrokers.
func TestCreateTopicsControllerRefusesWhenBrokersDie(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 2, nil)
	controllerOf(t, hs)
	// Write the config as a broker would after its check passed, then let
	// the controller see a cluster too small for it.
	ctx := context.Background()
	rev, err := hs[0].p.putTopic(ctx, broker.TopicConfig{Name: "wide", Partitions: 3, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		done, err := hs[0].p.cache.topicStatus(broker.TopicConfig{Name: "wide", Partitions: 3, ReplicationFactor: 3}, rev)
		if !done {
			return errors.New("still pending")
		}
		if !errors.Is(err, broker.ErrNotEnoughBrokers) {
			t.Fatalf("status: %v", err)
		}
		return nil
	})
	resp, err := hs[0].p.client.Get(ctx, hs[0].p.keys.root(), clientv3WithPrefix()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); slices.Contains([]string{"/test/topics/wide", "/test/partitions/wide/0"}, k) {
			t.Fatalf("half-created topic left behind: %s", k)
		}
	}
}

func TestAlterISR(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 3, nil)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3})
	tv, _ := hs[0].p.View().Topic("t")
	ps := tv.Partitions[0]
	leader := hs[ps.Leader]
	ctx := context.Background()

	shrunk := ps
	shrunk.ISR = []int32{ps.Leader, ps.Replicas[1]}
	got, err := leader.p.AlterISR(ctx, shrunk)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.ISR, shrunk.ISR) || got.Version <= ps.Version || got.LeaderEpoch != ps.LeaderEpoch {
		t.Fatalf("after shrink: %+v (was %+v)", got, ps)
	}
	// The result can be used at once, before the view catches up.
	grown := got
	grown.ISR = slices.Clone(ps.Replicas)
	got2, err := leader.p.AlterISR(ctx, grown)
	if err != nil {
		t.Fatal(err)
	}
	// Every broker sees the last write.
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, h := range hs {
			tv, _ := h.lastView().Topic("t")
			if p0 := tv.Partitions[0]; p0.Version != got2.Version || !sameSet(p0.ISR, ps.Replicas) {
				return fmt.Errorf("broker %d has %+v", h.id, p0)
			}
		}
		return nil
	})

	for _, tc := range []struct {
		name string
		by   *handle
		want broker.PartitionState
		err  error
	}{
		{"stale version", leader, shrunk, broker.ErrStaleState},
		{"stale epoch", leader, withEpoch(got2, got2.LeaderEpoch-1), broker.ErrFenced},
		{"future epoch", leader, withEpoch(got2, got2.LeaderEpoch+1), broker.ErrFenced},
		{"not the leader", hs[ps.Replicas[1]], got2, broker.ErrFenced},
		{"isr without leader", leader, withISR(got2, ps.Replicas[1:]), ErrInvalidISR},
		{"isr outside replicas", leader, withISR(got2, []int32{ps.Leader, 7}), ErrInvalidISR},
		{"isr duplicate", leader, withISR(got2, []int32{ps.Leader, ps.Leader}), ErrInvalidISR},
		{"unknown topic", leader, broker.PartitionState{Topic: "nope", Partition: 0, Version: 1}, broker.ErrUnknownTopic},
		{"bad topic name", leader, broker.PartitionState{Topic: "../x"}, broker.ErrUnknownTopic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.by.p.AlterISR(ctx, tc.want); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	// None of the refused calls changed anything.
	cur, err := leader.p.getPartition(ctx, "t", 0)
	if err != nil || cur.Version != got2.Version {
		t.Fatalf("state after refused calls: %+v %v", cur, err)
	}
}

func withEpoch(ps broker.PartitionState, e int32) broker.PartitionState {
	ps.LeaderEpoch = e
	return ps
}

func withISR(ps broker.PartitionState, isr []int32) broker.PartitionState {
	ps.ISR = isr
	return ps
}

func TestNotRegistered(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:1"})
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.AlterISR(ctx, broker.PartitionState{Topic: "t"}); !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("alter isr: %v", err)
	}
	if err := p.CreateTopics(ctx, []broker.TopicConfig{{Name: "t"}})[0]; !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("create: %v", err)
	}
	// Register against an etcd that is not there fails within the context.
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Register(rctx, broker.BrokerInfo{ID: 1, Addr: "127.0.0.1:1"}, func(broker.ClusterView) {}); !errors.Is(err, broker.ErrControlPlaneDown) {
		t.Fatalf("register without etcd: %v", err)
	}
	if err := p.Register(ctx, broker.BrokerInfo{ID: -1, Addr: "x:1"}, func(broker.ClusterView) {}); err == nil {
		t.Fatal("negative id accepted")
	}
	if err := p.Register(ctx, broker.BrokerInfo{ID: 1, Addr: "x:1"}, nil); err == nil {
		t.Fatal("nil onView accepted")
	}
}

// retryCounter counts the handle's "registration failed, retrying" records.
type retryCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h retryCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.Handler.Enabled(ctx, l)
}

func (h retryCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "registration failed, retrying" {
		h.n.Add(1)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h retryCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return retryCounter{h.Handler.WithAttrs(as), h.n}
}

func (h retryCounter) WithGroup(g string) slog.Handler {
	return retryCounter{h.Handler.WithGroup(g), h.n}
}

// TestRegisterRetries: a broker that starts while etcd does not answer
// keeps trying with back-off and registers once etcd answers, within its
// context, instead of failing at the first request timeout.
func TestRegisterRetries(t *testing.T) {
	e := startEtcd(t)
	var refuse atomic.Bool
	refuse.Store(true)
	retries := &atomic.Int64{}
	cfg := testConfig(t, e.Endpoints())
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.Logger = slog.New(retryCounter{cfg.Logger.Handler(), retries})
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if refuse.Load() {
			return nil, errors.New("refused by the test")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done <- p.Register(ctx, broker.BrokerInfo{ID: 7, Addr: "127.0.0.1:19007"}, func(broker.ClusterView) {})
	}()
	testutil.Eventually(t, 30*time.Second, func() error {
		if n := retries.Load(); n < 2 {
			return fmt.Errorf("%d retries so far", n)
		}
		return nil
	})
	refuse.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("register after etcd came back: %v", err)
	}
	other := startHandle(t, e.Endpoints(), 8, nil)
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, ok := other.lastView().Broker(7); !ok {
			return errors.New("broker 7 not registered")
		}
		return nil
	})
}
