package coordinator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

var logLevel = flag.String("loglevel", "warn", "lowest level of handle logs shown: debug, info, warn, error")

func testLogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(*logLevel)); err != nil {
		return slog.LevelWarn
	}
	return l
}

// startEtcd starts a single fsync-free member on free ports in a temp dir.
func startEtcd(t testing.TB) *Etcd {
	t.Helper()
	cfg := DefaultEtcdConfig()
	cfg.Name = "etcd0"
	cfg.DataDir = t.TempDir()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.ListenPeerURLs = []string{"http://127.0.0.1:0"}
	cfg.UnsafeNoFsync = true
	cfg.Logger = testutil.Logger(t, slog.LevelError)
	e, err := StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// startEtcdCluster starts an n-member fsync-free cluster in a temp dir.
func startEtcdCluster(t testing.TB, n int) []*Etcd {
	t.Helper()
	cfgs, err := LocalCluster(n, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfgs {
		cfgs[i].UnsafeNoFsync = true
		cfgs[i].Logger = testutil.Logger(t, slog.LevelError)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	members, err := StartCluster(ctx, cfgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		t.Cleanup(func() { m.Close() })
	}
	return members
}

// etcdLeader waits for the members' raft leader.
func etcdLeader(t testing.TB, members []*Etcd) *Etcd {
	t.Helper()
	var leader *Etcd
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, m := range members {
			if m.e.Server.Leader() == m.e.Server.MemberID() {
				leader = m
				return nil
			}
		}
		return errors.New("no etcd leader")
	})
	return leader
}

// handle is a lightweight broker: a Plane registered with a fake address,
// recording the views it gets.
type handle struct {
	id int32
	p  *Plane

	mu    sync.Mutex
	view  broker.ClusterView
	views int
}

func (h *handle) onView(v broker.ClusterView) {
	h.mu.Lock()
	h.view = v
	h.views++
	h.mu.Unlock()
}

func (h *handle) lastView() broker.ClusterView {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.view
}

func testConfig(t testing.TB, endpoints []string) Config {
	cfg := FastConfig()
	cfg.SessionTTL = time.Second
	cfg.Endpoints = endpoints
	cfg.Prefix = "/test"
	cfg.RequestTimeout = 2 * time.Second
	cfg.ReconnectBackoffMax = 200 * time.Millisecond
	cfg.Logger = testutil.Logger(t, testLogLevel()).With("handle", t.Name())
	return cfg
}

// startHandle registers broker id; mod adjusts the config.
func startHandle(t testing.TB, endpoints []string, id int32, mod func(*Config)) *handle {
	t.Helper()
	cfg := testConfig(t, endpoints)
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h := &handle{id: id, p: p}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info := broker.BrokerInfo{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 19000+id), Rack: ""}
	if err := p.Register(ctx, info, h.onView); err != nil {
		t.Fatal(err)
	}
	return h
}

func startHandles(t testing.TB, endpoints []string, n int, mod func(*Config)) []*handle {
	hs := make([]*handle, n)
	for i := range hs {
		hs[i] = startHandle(t, endpoints, int32(i), mod)
	}
	waitBrokers(t, hs, ids(hs))
	return hs
}

func ids(hs []*handle) []int32 {
	var out []int32
	for _, h := range hs {
		out = append(out, h.id)
	}
	return out
}

// waitBrokers waits until every handle's view lists exactly want and a live
// controller.
func waitBrokers(t testing.TB, hs []*handle, want []int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, h := range hs {
			v := h.lastView()
			var got []int32
			for _, b := range v.Brokers {
				got = append(got, b.ID)
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("broker %d sees brokers %v, want %v", h.id, got, want)
			}
			if !slices.Contains(want, v.ControllerID) {
				return fmt.Errorf("broker %d sees controller %d", h.id, v.ControllerID)
			}
		}
		return nil
	})
}

// createTopic creates a topic through via and waits until every handle in hs
// has been handed a view with it.
func createTopic(t testing.TB, hs []*handle, via *handle, cfg broker.TopicConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := via.p.CreateTopics(ctx, []broker.TopicConfig{cfg})[0]; err != nil {
		t.Fatalf("create %s: %v", cfg.Name, err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, h := range hs {
			if _, ok := h.lastView().Topic(cfg.Name); !ok {
				return fmt.Errorf("broker %d has no topic %s yet", h.id, cfg.Name)
			}
		}
		return nil
	})
}

// controllerOf returns the handle that acts as controller.
func controllerOf(t testing.TB, hs []*handle) *handle {
	t.Helper()
	var c *handle
	testutil.Eventually(t, 10*time.Second, func() error {
		c = nil
		for _, h := range hs {
			if h.p.IsController() {
				if c != nil {
					return fmt.Errorf("brokers %d and %d both act as controller", c.id, h.id)
				}
				c = h
			}
		}
		if c == nil {
			return fmt.Errorf("no controller")
		}
		return nil
	})
	return c
}

// leaderCounts counts the partitions each broker leads in v's topic.
func leaderCounts(v broker.ClusterView, topic string) map[int32]int {
	m := map[int32]int{}
	tv, _ := v.Topic(topic)
	for _, ps := range tv.Partitions {
		m[ps.Leader]++
	}
	return m
}

func without(hs []*handle, dead ...*handle) []*handle {
	return slices.DeleteFunc(slices.Clone(hs), func(h *handle) bool { return slices.Contains(dead, h) })
}

func clientv3WithPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

// netHandles starts n handles that reach etcd through nw as nodes b0, b1, ...
func netHandles(t testing.TB, nw *faultnet.Network, endpoints []string, n int, mod func(*Config)) []*handle {
	hs := make([]*handle, n)
	for i := range hs {
		name := fmt.Sprintf("b%d", i)
		hs[i] = startHandle(t, endpoints, int32(i), func(c *Config) {
			c.Dial = nw.Dialer(name)
			if mod != nil {
				mod(c)
			}
		})
	}
	waitBrokers(t, hs, ids(hs))
	return hs
}

func newNet(t testing.TB, members ...*Etcd) *faultnet.Network {
	nw := faultnet.New(testutil.Logger(t, slog.LevelWarn))
	t.Cleanup(func() { nw.Close() })
	for _, m := range members {
		nw.Register(m.Name(), m.Endpoints()[0])
	}
	return nw
}

// crashEtcd makes member m go away as a crashed process does for the
// handles hs: their connections are reset and, once it is closed, new ones
// are refused. (Close alone is a graceful stop that serves open streams for
// several more seconds.)
func crashEtcd(nw *faultnet.Network, m *Etcd, hs []*handle) {
	nw.Isolate(m.Name())
	for _, h := range hs {
		nw.Reset(fmt.Sprintf("b%d", h.id), m.Name())
	}
	m.Close()
	nw.Rejoin(m.Name())
}
