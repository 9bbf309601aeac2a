package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// wantPartition polls until a broker's view of topic/p satisfies ok.
func wantPartition(t *testing.T, b *testBroker, topic string, p int32, ok func(broker.PartitionState) error) broker.PartitionState {
	t.Helper()
	var st broker.PartitionState
	testutil.Eventually(t, waitFor, func() error {
		var err error
		if st, err = b.partition(topic, p); err != nil {
			return err
		}
		return ok(st)
	})
	return st
}

func led(leader int32, replicas ...int32) func(broker.PartitionState) error {
	return func(st broker.PartitionState) error {
		if st.Leader != leader || !slices.Equal(st.Replicas, replicas) {
			return fmt.Errorf("leader %d replicas %v, want %d %v", st.Leader, st.Replicas, leader, replicas)
		}
		return nil
	}
}

func TestViewsFollowTheRoutes(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns1, ns2 := startServer(t, log), startServer(t, log)
	nss := []string{ns1.Addr(), ns2.Addr()}
	master := startRegistrar(t, log, nss, "a", 0, 1)
	slave := startRegistrar(t, log, nss, "a", 1, 2)
	other := startRegistrar(t, log, nss, "b", 0, 3)
	c := newClient(t, log, nss...)
	for _, ns := range nss {
		wantMembers(t, newClient(t, log, ns), "a", 1, 2)
		wantMembers(t, newClient(t, log, ns), "b", 3)
	}
	ctx := context.Background()
	if errs := slave.reg.CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 8, MinInsync: 2}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	r := wantRoute(t, c, "t", queuesPerGroup(map[string]int32{"a": 4, "b": 4}))
	ga, _ := groupOf(r, "a")
	gb, _ := groupOf(r, "b")
	pa, pb := ga.FirstPartition, gb.FirstPartition

	for _, b := range []*testBroker{master, slave, other} {
		st := wantPartition(t, b, "t", pa, led(1, 1, 2))
		if st.LeaderEpoch != 0 || !slices.Equal(st.ISR, []int32{1, 2}) || st.MinInsync != 2 || !st.FollowerReads || st.AsyncAck {
			t.Fatalf("node %d: %+v", b.info.ID, st)
		}
		wantPartition(t, b, "t", pb, led(3, 3))
		v := mustView(t, b)
		if v.ControllerID != 1 || len(v.Brokers) != 3 || v.ClusterID != "c1" {
			t.Fatalf("node %d view: %+v", b.info.ID, v)
		}
		if tv, _ := v.Topic("t"); len(tv.Partitions) != 8 || tv.Config.Partitions != 8 {
			t.Fatalf("node %d topic: %+v", b.info.ID, tv.Config)
		}
	}

	t.Run("isr on the master", func(t *testing.T) {
		st, _ := master.partition("t", pa)
		if st.Version != 1 {
			t.Fatalf("version %d", st.Version)
		}
		bad := []struct {
			name   string
			mutate func(*broker.PartitionState)
			want   error
		}{
			{"stale version", func(s *broker.PartitionState) { s.Version = 0 }, broker.ErrStaleState},
			{"stale epoch", func(s *broker.PartitionState) { s.LeaderEpoch = 3 }, broker.ErrFenced},
			{"not a replica", func(s *broker.PartitionState) { s.ISR = []int32{1, 9} }, broker.ErrStaleState},
			{"without the master", func(s *broker.PartitionState) { s.ISR = []int32{2} }, broker.ErrStaleState},
			{"a member twice", func(s *broker.PartitionState) { s.ISR = []int32{1, 1} }, broker.ErrStaleState},
			{"unknown partition", func(s *broker.PartitionState) { s.Partition = pb }, broker.ErrUnknownTopic},
		}
		for _, tc := range bad {
			want := st
			want.ISR = []int32{1}
			tc.mutate(&want)
			if _, err := master.reg.AlterISR(ctx, want); !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if _, err := slave.reg.AlterISR(ctx, st); !errors.Is(err, ErrNotMaster) || !errors.Is(err, broker.ErrFenced) {
			t.Fatalf("alter isr on a slave: %v", err)
		}
		want := st
		want.ISR = []int32{1}
		got, err := master.reg.AlterISR(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || !slices.Equal(got.ISR, []int32{1}) || got.Leader != 1 {
			t.Fatalf("after shrink: %+v", got)
		}
		wantPartition(t, master, "t", pa, func(s broker.PartitionState) error {
			if s.Version != 2 || !slices.Equal(s.ISR, []int32{1}) {
				return fmt.Errorf("view not updated: %+v", s)
			}
			return nil
		})
		if _, err := master.reg.AlterISR(ctx, want); !errors.Is(err, broker.ErrStaleState) {
			t.Fatalf("replayed alter isr: %v", err)
		}
		want = got
		want.ISR = []int32{1, 2}
		if got, err = master.reg.AlterISR(ctx, want); err != nil || got.Version != 3 {
			t.Fatalf("expand: %+v %v", got, err)
		}
	})

	t.Run("master lost", func(t *testing.T) {
		if err := master.reg.Close(); err != nil {
			t.Fatal(err)
		}
		for _, b := range []*testBroker{slave, other} {
			st := wantPartition(t, b, "t", pa, led(-1, 2))
			if !st.FollowerReads || !slices.Equal(st.ISR, []int32{2}) {
				t.Fatalf("node %d: %+v", b.info.ID, st)
			}
			wantPartition(t, b, "t", pb, led(3, 3))
			if v := mustView(t, b); v.ControllerID != 2 {
				t.Fatalf("controller %d", v.ControllerID)
			}
		}
		// The route keeps group a through its slave: consumers read there,
		// producers skip it.
		r, err := c.Refresh(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		if q, ok := r.ReadQueue(pa); !ok || q.Member.NodeID != 2 {
			t.Fatalf("read queue %+v %v", q, ok)
		}
		for _, q := range r.WriteQueues(nil) {
			if q.Group == "a" {
				t.Fatalf("write queue on the masterless group: %+v", q)
			}
		}
	})

	t.Run("master back", func(t *testing.T) {
		// Restarted without a DataDir: it relearns its topics from the
		// route its slave keeps alive.
		back := startRegistrar(t, log, nss, "a", 0, 1)
		for _, b := range []*testBroker{back, slave, other} {
			wantPartition(t, b, "t", pa, led(1, 1, 2))
		}
		if _, ok := back.reg.store.get("t"); !ok {
			t.Fatal("restarted master did not adopt its topic")
		}
	})

	t.Run("group gone", func(t *testing.T) {
		_ = other.reg.Close()
		st := wantPartition(t, slave, "t", pb, led(-1))
		if len(st.ISR) != 0 {
			t.Fatalf("partition of a vanished group: %+v", st)
		}
		if tv, _ := mustView(t, slave).Topic("t"); len(tv.Partitions) != 8 {
			t.Fatalf("partition numbering shifted: %d partitions", len(tv.Partitions))
		}
	})

	for _, b := range []*testBroker{master, slave, other} {
		if b.views.err != nil {
			t.Fatal(b.views.err)
		}
	}
}

func TestAsyncMode(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	nss := []string{ns.Addr()}
	async := func(c *RegistrarConfig) { c.Mode = ModeAsync }
	master := startRegistrar(t, log, nss, "a", 0, 1, async)
	slave := startRegistrar(t, log, nss, "a", 1, 2) // the master's mode counts
	wantMembers(t, newClient(t, log, ns.Addr()), "a", 1, 2)
	if errs := master.reg.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 2}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for _, b := range []*testBroker{master, slave} {
		st := wantPartition(t, b, "t", 0, led(1, 1, 2))
		if !st.AsyncAck {
			t.Fatalf("node %d: async mode not in %+v", b.info.ID, st)
		}
	}
}

func TestTopicConfigPersisted(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	dir := t.TempDir()
	ns := startServer(t, log)
	withDir := func(c *RegistrarConfig) { c.DataDir = dir }
	b := startRegistrar(t, log, []string{ns.Addr()}, "a", 0, 1, withDir)
	if errs := b.reg.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 3, MinInsync: 1}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	_ = b.reg.Close()
	data, err := os.ReadFile(filepath.Join(dir, topicsFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeTopics(data)
	if ts := doc.Topics; err != nil || len(ts) != 1 || ts[0] != (GroupTopic{Name: "t", Queues: 3, Partitions: 3, MinInsync: 1}) {
		t.Fatalf("topics.json: %+v %v\n%s", ts, err, data)
	}

	// A fresh name server learns the topic from the restarted broker alone.
	ns2 := startServer(t, log)
	b2 := startRegistrar(t, log, []string{ns2.Addr()}, "a", 0, 1, withDir)
	wantRoute(t, newClient(t, log, ns2.Addr()), "t", queuesPerGroup(map[string]int32{"a": 3}))
	wantPartition(t, b2, "t", 2, led(1, 1))

	// A corrupt file is an error, not an empty store.
	if err := os.WriteFile(filepath.Join(dir, topicsFile), []byte(`{"topics":[{"name":"t","queues":-1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testTimings().RegistrarConfig()
	cfg.NameServers, cfg.Group, cfg.DataDir = []string{ns2.Addr()}, "a", dir
	if _, err := NewRegistrar(cfg); !errors.Is(err, broker.ErrInvalidTopic) {
		t.Fatalf("corrupt topics.json: %v", err)
	}
}

func TestSlaveAdoptsMissedTopics(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	nss := []string{ns.Addr()}
	master := startRegistrar(t, log, nss, "a", 0, 1)
	if errs := master.reg.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 2}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	slave := startRegistrar(t, log, nss, "a", 1, 2) // after the push
	testutil.Eventually(t, waitFor, func() error {
		if _, ok := slave.reg.store.get("t"); !ok {
			return errors.New("slave has not adopted t")
		}
		return nil
	})
	_ = master.reg.Close()
	// The slave's own registration now keeps the topic routable.
	wantRoute(t, newClient(t, log, ns.Addr()), "t", func(r TopicRoute) error {
		if len(r.Groups) != 1 || len(r.Groups[0].Members) != 1 || r.Groups[0].Members[0].NodeID != 2 {
			return fmt.Errorf("route %+v", r)
		}
		return nil
	})
}

func TestRegisterWithoutNameServer(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	addr := ns.Addr()
	_ = ns.Close() // nothing listens there now
	cfg := testTimings().RegistrarConfig()
	cfg.NameServers, cfg.Group, cfg.Logger = []string{addr}, "a", log
	r, err := NewRegistrar(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = r.Register(ctx, broker.BrokerInfo{ID: 1, Addr: "127.0.0.1:1"}, func(broker.ClusterView) {})
	if !errors.Is(err, broker.ErrControlPlaneDown) {
		t.Fatalf("register with no name server: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	good := testTimings().RegistrarConfig()
	good.NameServers, good.Group = []string{"127.0.0.1:1"}, "a"
	bad := []func(*RegistrarConfig){
		func(c *RegistrarConfig) { c.NameServers = nil },
		func(c *RegistrarConfig) { c.NameServers = []string{""} },
		func(c *RegistrarConfig) { c.Group = "" },
		func(c *RegistrarConfig) { c.Cluster = "" },
		func(c *RegistrarConfig) { c.BrokerID = -1 },
		func(c *RegistrarConfig) { c.HeartbeatInterval = 0 },
		func(c *RegistrarConfig) { c.RoutePollInterval = 0 },
		func(c *RegistrarConfig) { c.Mode = "semi" },
		func(c *RegistrarConfig) { c.MaxFrameBytes = 10 },
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, m := range bad {
		c := good
		m(&c)
		if _, err := NewRegistrar(c); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	sbad := []func(*Config){
		func(c *Config) { c.Listen = "" },
		func(c *Config) { c.ScanInterval = 0 },
		func(c *Config) { c.BrokerExpiry = c.ScanInterval / 2 },
		func(c *Config) { c.MaxFrameBytes = 0 },
		func(c *Config) { c.RequestTimeout = 0 },
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, m := range sbad {
		c := DefaultConfig()
		m(&c)
		if _, err := New(c); err == nil {
			t.Errorf("server case %d accepted", i)
		}
	}
}

// A slave follows its master's death and return within a few master probes
// although its route poll is ten minutes away: RocketMQ's slave redials its
// master every 5 s whatever the name servers say. Without the probe a
// restarted master keeps no follower until the next poll (30 s in
// production), so its high watermark cannot move.
func TestSlaveProbesItsMaster(t *testing.T) {
	log := testutil.Logger(t, slog.LevelInfo)
	ns := startServer(t, log)
	nss := []string{ns.Addr()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	masterAddr := ln.Addr().String()
	slow := func(c *RegistrarConfig) {
		c.RoutePollInterval = 10 * time.Minute
		c.MasterProbeInterval = 100 * time.Millisecond
	}
	master := startRegistrarAt(t, log, nss, "a", 0, 1, masterAddr, slow)
	slave := startRegistrar(t, log, nss, "a", 1, 2, slow)
	wantMembers(t, newClient(t, log, ns.Addr()), "a", 1, 2)
	if errs := master.reg.CreateTopics(context.Background(), []broker.TopicConfig{{Name: "t", Partitions: 2}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	wantPartition(t, slave, "t", 0, led(1, 1, 2))

	// The master crashes: its registration connection closes and its
	// port stops answering.
	_ = master.reg.Close()
	_ = ln.Close()
	wantPartition(t, slave, "t", 0, led(-1, 2))

	// It comes back on the same address.
	ln, err = net.Listen("tcp", masterAddr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", masterAddr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	startRegistrarAt(t, log, nss, "a", 0, 1, masterAddr, slow)
	wantPartition(t, slave, "t", 0, led(1, 1, 2))
}

// TestDeletionAnnounced: a topic deleted through a name server is announced
// in the broker's views (DeletedTopics) until created again, also after a
// restart of the broker on its data directory; a topic merely missing from
// the routes is not.
func TestDeletionAnnounced(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	dir := t.TempDir()
	ns := startServer(t, log)
	withDir := func(c *RegistrarConfig) { c.DataDir = dir }
	b := startRegistrar(t, log, []string{ns.Addr()}, "a", 0, 1, withDir)
	ctx := context.Background()
	if errs := b.reg.CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 2}, {Name: "u", Partitions: 1}}); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	wantDeleted := func(b *testBroker, want ...string) {
		t.Helper()
		testutil.Eventually(t, waitFor, func() error {
			v, ok := b.views.last()
			if !ok || !slices.Equal(v.DeletedTopics, want) {
				return fmt.Errorf("deleted topics %v, want %v", v.DeletedTopics, want)
			}
			for _, name := range want {
				if _, ok := v.Topic(name); ok {
					return fmt.Errorf("deleted topic %s still in the view", name)
				}
			}
			return nil
		})
	}
	wantPartition(t, b, "u", 0, led(1, 1))
	wantDeleted(b)
	if errs := b.reg.DeleteTopics(ctx, []string{"t"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	wantDeleted(b, "t")

	// The broker restarts under a fresh name server (empty table): u is
	// not deleted for that, and t's deletion is still announced.
	_ = b.reg.Close()
	ns2 := startServer(t, log)
	b2 := startRegistrar(t, log, []string{ns2.Addr()}, "a", 0, 1, withDir)
	wantDeleted(b2, "t")
	wantPartition(t, b2, "u", 0, led(1, 1))

	// Created again: no longer announced.
	if errs := b2.reg.CreateTopics(ctx, []broker.TopicConfig{{Name: "t", Partitions: 1}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	wantDeleted(b2)
	wantPartition(t, b2, "t", 0, led(1, 1))
}
