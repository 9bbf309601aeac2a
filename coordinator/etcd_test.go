package coordinator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestEtcdConfigValidate(t *testing.T) {
	ok := DefaultEtcdConfig()
	ok.DataDir = "/data"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*EtcdConfig){
		"no data dir":    func(c *EtcdConfig) { c.DataDir = "" },
		"no name":        func(c *EtcdConfig) { c.Name = "" },
		"bad url":        func(c *EtcdConfig) { c.ListenClientURLs = []string{"127.0.0.1:2379"} },
		"no port":        func(c *EtcdConfig) { c.ListenPeerURLs = []string{"http://127.0.0.1"} },
		"bad state":      func(c *EtcdConfig) { c.InitialClusterState = "old" },
		"short election": func(c *EtcdConfig) { c.ElectionTimeout = 2 * c.HeartbeatInterval },
		"bad log level":  func(c *EtcdConfig) { c.LogLevel = "loud" },
		"port 0 in a team": func(c *EtcdConfig) {
			c.ListenPeerURLs = []string{"http://127.0.0.1:0"}
			c.InitialCluster = "a=http://x:1"
		},
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConfigValidateAndFlags(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse([]string{"--etcd", "a:1, b:2", "--session-ttl", "2s", "--etcd-prefix", "/x"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Endpoints, []string{"a:1", "b:2"}) || c.SessionTTL != FastSessionTTL || c.Prefix != "/x" {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no endpoints":    func(c *Config) { c.Endpoints = nil },
		"prefix slash":    func(c *Config) { c.Prefix = "/x/" },
		"prefix relative": func(c *Config) { c.Prefix = "x" },
		"sub-second ttl":  func(c *Config) { c.SessionTTL = 500 * time.Millisecond },
		"fractional ttl":  func(c *Config) { c.SessionTTL = 1500 * time.Millisecond },
		"no timeout":      func(c *Config) { c.RequestTimeout = 0 },
	} {
		bad := c
		mod(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := New(bad); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}

	e := DefaultEtcdConfig()
	fs = flag.NewFlagSet("coordinator", flag.ContinueOnError)
	e.AddFlags(fs)
	err := fs.Parse([]string{"--data", "/d", "--name", "n1", "--listen", "http://127.0.0.1:1", "--peer-listen", "http://127.0.0.1:2",
		"--initial-cluster", "n1=http://127.0.0.1:2,n2=http://127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	if e.DataDir != "/d" || e.Name != "n1" || e.ListenPeerURLs[0] != "http://127.0.0.1:2" || !strings.Contains(e.InitialCluster, "n2=") {
		t.Fatalf("parsed %+v", e)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRunEtcd(t *testing.T) {
	t.Parallel()
	cfg := DefaultEtcdConfig()
	cfg.DataDir = t.TempDir()
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ListenClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", port)}
	cfg.ListenPeerURLs = []string{"http://127.0.0.1:0"}
	cfg.UnsafeNoFsync = true
	cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunEtcd(ctx, cfg) }()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{fmt.Sprintf("127.0.0.1:%d", port)}, DialTimeout: time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.Eventually(t, 10*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer pcancel()
		_, err := c.Put(pctx, "k", "v")
		return err
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunEtcd: %v", err)
	}
}

// etcd goes away entirely and comes back on the same data dir and ports:
// handles keep their last view meanwhile, keep their sessions (etcd does not
// expire leases while it is down) and converge without any failover.
func TestEtcdOutageKeepsViewsAndConverges(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	nw := newNet(t, e)
	ttl := func(c *Config) { c.SessionTTL = FastSessionTTL }
	hs := netHandles(t, nw, e.Endpoints(), 3, ttl)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3})
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, h := range hs {
			if _, ok := h.lastView().Topic("t"); !ok {
				return fmt.Errorf("broker %d has no topic", h.id)
			}
		}
		return nil
	})
	ctrl := controllerOf(t, hs)
	before := make([]broker.ClusterView, len(hs))
	leases := make([]clientv3.LeaseID, len(hs))
	for i, h := range hs {
		before[i] = h.lastView()
		leases[i] = h.p.currentLease()
	}

	crashEtcd(nw, e, hs)
	outage := 2*FastSessionTTL + time.Second // every session's keep-alive deadline passes
	<-time.After(outage)                     // the fault's duration, not a synchronisation
	for i, h := range hs {
		if v := h.lastView(); !viewsEqual(v, before[i]) {
			t.Fatalf("broker %d view changed while etcd was down:\n%+v\nwas\n%+v", h.id, v, before[i])
		}
	}
	e2, err := StartEtcd(e.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range hs {
			h.p.Close() // before etcd, whose graceful stop would wait for their streams
		}
		e2.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		for i, h := range hs {
			if l := h.p.currentLease(); l != leases[i] {
				return fmt.Errorf("broker %d has lease %x, had %x", h.id, l, leases[i])
			}
		}
		return nil
	})
	// No failover happened; the same controller acts; new work succeeds.
	if c := controllerOf(t, hs); c != ctrl {
		t.Fatalf("controller moved from %d to %d", ctrl.id, c.id)
	}
	createTopic(t, hs, hs[1], broker.TopicConfig{Name: "after", Partitions: 2, ReplicationFactor: 3})
	testutil.Eventually(t, 5*time.Second, func() error {
		for i, h := range hs {
			v := h.lastView()
			old, _ := before[i].Topic("t")
			cur, _ := v.Topic("t")
			if !slices.EqualFunc(old.Partitions, cur.Partitions, samePartition) {
				return fmt.Errorf("broker %d: partitions changed: %+v", h.id, cur.Partitions)
			}
			if _, ok := v.Topic("after"); !ok || len(v.Brokers) != 3 {
				return fmt.Errorf("broker %d not converged: %+v", h.id, v)
			}
		}
		return nil
	})
}

func viewsEqual(a, b broker.ClusterView) bool {
	if a.ClusterID != b.ClusterID || a.ControllerID != b.ControllerID || !slices.Equal(a.Brokers, b.Brokers) || len(a.Topics) != len(b.Topics) {
		return false
	}
	for i := range a.Topics {
		if a.Topics[i].Config != b.Topics[i].Config || !slices.EqualFunc(a.Topics[i].Partitions, b.Topics[i].Partitions, samePartition) {
			return false
		}
	}
	return true
}

// A 3-member etcd cluster loses its raft leader: handles see no error and
// the controller keeps working.
func TestEtcdClusterLosesMember(t *testing.T) {
	t.Parallel()
	members := startEtcdCluster(t, 3)
	nw := newNet(t, members...)
	hs := netHandles(t, nw, Endpoints(members), 3, nil)
	createTopic(t, hs, hs[0], broker.TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3})

	leader := etcdLeader(t, members)
	crashEtcd(nw, leader, hs)
	t.Logf("crashed etcd leader %s", leader.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// ISR changes and topic creation go on without an error.
	tv, _ := hs[0].lastView().Topic("t")
	ps := tv.Partitions[0]
	owner := hs[ps.Leader]
	for i := range 10 {
		isr := ps.Replicas
		if i%2 == 0 {
			isr = []int32{ps.Leader}
		}
		got, err := owner.p.AlterISR(ctx, withISR(ps, isr))
		if err != nil {
			t.Fatalf("alter isr %d after member loss: %v", i, err)
		}
		ps = got
	}
	createTopic(t, hs, hs[1], broker.TopicConfig{Name: "after", Partitions: 3, ReplicationFactor: 3})
	// A broker failure is still handled.
	ctrl := controllerOf(t, hs)
	victim := without(hs, ctrl)[0]
	before, _ := ctrl.lastView().Topic("after")
	victim.p.Close()
	checkFailover(t, without(hs, victim), "after", before, victim.id, time.Now(), 10*time.Second)
}

// Kill stops answering at once; Close would serve keep-alives for seconds.
func TestEtcdKillStopsAnsweringAtOnce(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	hs := startHandles(t, e.Endpoints(), 1, nil)
	done := make(chan struct{})
	go func() {
		e.Kill()
		close(done)
	}()
	// The session (and with it controllership) ends about one TTL after the
	// kill; a graceful Close would have kept it alive for ~7 s.
	killed := time.Now()
	controllerOf(t, hs)
	testutil.Eventually(t, 10*time.Second, func() error {
		if hs[0].p.IsController() {
			return errors.New("still controller")
		}
		return nil
	})
	// Keep-alive deadlines are checked once a second: up to ~2.5 s here.
	if took := time.Since(killed); took > 5*time.Second {
		t.Fatalf("session ended %v after the kill (ttl 1 s)", took)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Kill did not return")
	}
	e.Close() // idempotent after Kill
}
