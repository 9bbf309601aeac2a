package gossip_test

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// freeAddr returns a loopback address whose port is free for TCP and UDP
// (memberlist binds both).
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// cutNet drops the gossip traffic of isolated addresses, both ways.
type cutNet struct {
	mu       sync.Mutex
	isolated map[string]bool
}

func (c *cutNet) set(addr string, cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isolated == nil {
		c.isolated = map[string]bool{}
	}
	c.isolated[addr] = cut
}

func (c *cutNet) blocked(a, b string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return a != b && (c.isolated[a] || c.isolated[b])
}

func (c *cutNet) wrap(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	port := 0
	if nt, ok := inner.(*memberlist.NetTransport); ok {
		port = nt.GetAutoBindPort()
	}
	self := "127.0.0.1:" + strconv.Itoa(port)
	return gossip.BlockingTransport(inner, func(addr string) bool { return c.blocked(self, addr) })
}

// cluster is brokers under gossip planes on loopback.
type cluster struct {
	*brokertest.Cluster
	t      testing.TB
	cut    *cutNet
	seeds  []string
	gaddr  map[int32]string
	mu     sync.Mutex
	planes map[int32]*gossip.Plane
	// started is Cluster once brokertest.New has returned; the planes'
	// offset callbacks run before that and must not read Cluster.
	started *brokertest.Cluster
}

func fastConfig(placement string) gossip.Config {
	cfg := gossip.Fast()
	cfg.Placement = placement
	return cfg
}

func newCluster(t testing.TB, brokers int, placement string) *cluster {
	t.Helper()
	return newClusterWith(t, brokers, placement, nil)
}

// newClusterWith is newCluster with each plane's configuration passed
// through mutate before the plane is made.
func newClusterWith(t testing.TB, brokers int, placement string, mutate func(id int32, cfg *gossip.Config), opts ...brokertest.Option) *cluster {
	t.Helper()
	c := &cluster{t: t, cut: &cutNet{}, gaddr: map[int32]string{}, planes: map[int32]*gossip.Plane{}}
	for id := int32(1); id <= int32(brokers); id++ {
		c.gaddr[id] = freeAddr(t)
	}
	for id := int32(1); id <= min(3, int32(brokers)); id++ {
		c.seeds = append(c.seeds, c.gaddr[id])
	}
	log := testutil.Logger(t, slog.LevelWarn)
	opts = append(opts, brokertest.Brokers(brokers))
	c.Cluster = brokertest.New(t, append(opts, brokertest.WithControlPlane(func(id int32) broker.ControlPlane {
		cfg := fastConfig(placement)
		cfg.Bind = c.gaddr[id]
		cfg.Seeds = c.seeds
		cfg.WrapTransport = c.cut.wrap
		cfg.Logger = log.With("component", "gossip")
		cfg.Offsets = func() map[string]int64 { return c.offsets(id) }
		if mutate != nil {
			mutate(id, &cfg)
		}
		p, err := gossip.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		c.planes[id] = p
		c.mu.Unlock()
		return p
	}))...)
	c.mu.Lock()
	c.started = c.Cluster
	c.mu.Unlock()
	return c
}

func (c *cluster) offsets(id int32) map[string]int64 {
	c.mu.Lock()
	bc := c.started
	c.mu.Unlock()
	if bc == nil {
		return nil
	}
	b := bc.Broker(id)
	if b == nil {
		return nil
	}
	return gossip.LogEnds(b.Status())
}

func (c *cluster) plane(id int32) *gossip.Plane {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.planes[id]
}

// waitMasters waits until every running broker's plane sees n masters.
func (c *cluster) waitMasters(n int) {
	c.t.Helper()
	testutil.Eventually(c.t, 20*time.Second, func() error {
		for _, id := range c.IDs() {
			if !c.Running(id) {
				continue
			}
			if m := c.plane(id).Masters(); len(m) != n {
				return fmt.Errorf("broker %d sees masters %v, want %d", id, m, n)
			}
		}
		return nil
	})
}

// isolate cuts broker id from every other cluster node (gossip and
// replication); clients still reach it.
func (c *cluster) isolate(id int32) {
	c.cut.set(c.gaddr[id], true)
	c.Net.Isolate(brokertest.Name(id))
}

func (c *cluster) heal(id int32) {
	c.cut.set(c.gaddr[id], false)
	c.Net.Rejoin(brokertest.Name(id))
}

// leaderEpoch returns the leader and epoch broker id's view holds.
func leaderIn(v broker.ClusterView, topic string, p int32) (int32, int32) {
	tv, ok := v.Topic(topic)
	if !ok || int(p) >= len(tv.Partitions) {
		return -1, -1
	}
	return tv.Partitions[p].Leader, tv.Partitions[p].LeaderEpoch
}
