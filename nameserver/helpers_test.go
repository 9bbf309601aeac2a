package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// waitFor is the default deadline of polled conditions.
const waitFor = 10 * time.Second

// testTimings are faster than Fast, with room for a loaded machine: tests
// of expiry shorten it themselves (shortExpiry).
func testTimings() Timings {
	t := Fast()
	t.Heartbeat = 200 * time.Millisecond
	t.Scan = 100 * time.Millisecond
	t.Expiry = 5 * time.Second
	t.RoutePoll = 100 * time.Millisecond
	t.RequestTimeout = 2 * time.Second
	return t
}

// shortExpiry makes a name server expire brokers silent for a second.
func shortExpiry(c *Config) { c.BrokerExpiry = time.Second }

// startServer starts a name server on a loopback port.
func startServer(t testing.TB, log *slog.Logger, mod ...func(*Config)) *Server {
	t.Helper()
	cfg := testTimings().ServerConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = log.With("node", "ns")
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	return testutil.Started(t, s, err)
}

// viewRecorder keeps the views a registrar delivers.
type viewRecorder struct {
	mu    sync.Mutex
	views []broker.ClusterView
	busy  bool // set while onView runs, to catch concurrent calls
	err   error
}

func (v *viewRecorder) onView(cv broker.ClusterView) {
	v.mu.Lock()
	if v.busy {
		v.err = errors.New("onView called concurrently")
	}
	v.busy = true
	v.views = append(v.views, cv)
	v.mu.Unlock()
	v.mu.Lock()
	v.busy = false
	v.mu.Unlock()
}

func (v *viewRecorder) last() (broker.ClusterView, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.views) == 0 {
		return broker.ClusterView{}, false
	}
	return v.views[len(v.views)-1], true
}

// testBroker is a registrar with a made-up broker address: name servers
// never dial brokers, so none has to listen.
type testBroker struct {
	reg   *Registrar
	views *viewRecorder
	info  broker.BrokerInfo
}

// startRegistrar registers node with the name servers as member id of
// group.
func startRegistrar(t testing.TB, log *slog.Logger, nss []string, group string, id, node int32, mod ...func(*RegistrarConfig)) *testBroker {
	t.Helper()
	return startRegistrarAt(t, log, nss, group, id, node, fmt.Sprintf("127.0.0.1:%d", 19000+node), mod...)
}

// startRegistrarAt is startRegistrar with the broker address given.
func startRegistrarAt(t testing.TB, log *slog.Logger, nss []string, group string, id, node int32, addr string, mod ...func(*RegistrarConfig)) *testBroker {
	t.Helper()
	cfg := testTimings().RegistrarConfig()
	cfg.NameServers = nss
	cfg.Cluster = "c1"
	cfg.Group = group
	cfg.BrokerID = id
	cfg.Logger = log.With("node", fmt.Sprintf("broker-%d", node))
	for _, m := range mod {
		m(&cfg)
	}
	r, err := NewRegistrar(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{reg: r, views: &viewRecorder{},
		info: broker.BrokerInfo{ID: node, Addr: addr}}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := r.Register(ctx, tb.info, tb.views.onView); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return tb
}

// newClient returns a route client of the name servers.
func newClient(t testing.TB, log *slog.Logger, nss ...string) *RouteClient {
	t.Helper()
	cfg := testTimings().RouteClientConfig()
	cfg.NameServers = nss
	cfg.Logger = log.With("node", "client")
	c, err := NewRouteClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// members returns the node ids a name server lists for a group.
func members(ctx context.Context, c *RouteClient, group string) ([]int32, error) {
	info, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	g, ok := info.Group("c1", group)
	if !ok {
		return nil, nil
	}
	var ids []int32
	for _, m := range g.Members {
		ids = append(ids, m.NodeID)
	}
	return ids, nil
}

// wantMembers polls until a name server lists exactly ids for group.
func wantMembers(t *testing.T, c *RouteClient, group string, ids ...int32) {
	t.Helper()
	testutil.Eventually(t, waitFor, func() error {
		got, err := members(context.Background(), c, group)
		if err != nil {
			return err
		}
		if !slices.Equal(got, ids) {
			return fmt.Errorf("group %s members %v, want %v", group, got, ids)
		}
		return nil
	})
}

// partitionOf returns a partition's state in the last view.
func (b *testBroker) partition(topic string, p int32) (broker.PartitionState, error) {
	v, ok := b.views.last()
	if !ok {
		return broker.PartitionState{}, errors.New("no view yet")
	}
	tv, ok := v.Topic(topic)
	if !ok {
		return broker.PartitionState{}, fmt.Errorf("topic %s not in view", topic)
	}
	if int(p) >= len(tv.Partitions) {
		return broker.PartitionState{}, fmt.Errorf("topic %s has %d partitions", topic, len(tv.Partitions))
	}
	return tv.Partitions[p], nil
}

// dialPeer connects to a name server at addr and reads its answers until
// the test ends.
func dialPeer(t testing.TB, addr string, cfg peerConfig) *peer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(conn, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.readLoop()
	}()
	t.Cleanup(func() {
		p.close()
		<-done
	})
	return p
}
