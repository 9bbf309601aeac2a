package scale

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

// Topology is one control plane at scale: it starts the control plane's
// servers (etcd, name servers, controllers) and makes the real
// broker.ControlPlane of each control-plane-only broker, each with its own
// connections, as a real broker has.
type Topology interface {
	// Start starts the servers for a cluster of this shape.
	Start(ctx context.Context, s Shape) error
	// NewPlane returns broker id's control plane, not yet registered.
	NewPlane(id int32) (broker.ControlPlane, error)
	// Cost is the control-plane traffic so far: every plane made plus what
	// the servers counted, as the topology's own counters report it.
	Cost() Cost
	// MovesLeaders reports whether the topology elects a new leader when
	// one dies (RocketMQ's classic mode does not).
	MovesLeaders() bool
	// Close stops the servers. Planes are closed by their nodes.
	Close() error
}

// settler is a topology whose cluster forms after its brokers register
// (gossip slots: each new master takes its share of the slots over a few
// rounds). Settled returns nil once the cluster is formed, as an operator
// checks before creating topics (redis-cli --cluster check).
type settler interface {
	Settled() error
}

// Shape is the cluster a sweep step runs.
type Shape struct {
	Brokers     int
	Partitions  int
	Replication int
	// Profile is the timing profile, "fast" or "production".
	Profile string
	// Dir holds the servers' data (etcd's); the caller removes it.
	Dir    string
	Logger *slog.Logger
}

// Cost is cumulative control-plane traffic.
type Cost struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

func (c Cost) sub(o Cost) Cost { return Cost{c.Requests - o.Requests, c.Bytes - o.Bytes} }

// lagMax is the stand-in's replica lag limit: the ISR shrink of a dead
// follower, per profile, as the broker's replica_lag_max.
func lagMax(profile string) time.Duration {
	if profile == "production" {
		return 30 * time.Second
	}
	return 3 * time.Second
}

var (
	regMu      sync.Mutex
	topologies = map[string]func() Topology{}
)

// Register makes a topology runnable at scale; a topology's scale driver
// calls it from init.
func Register(name string, f func() Topology) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := topologies[name]; dup {
		panic("scale: topology " + name + " registered twice")
	}
	topologies[name] = f
}

// Topologies lists the topologies that can run at scale.
func Topologies() []string {
	regMu.Lock()
	defer regMu.Unlock()
	var out []string
	for n := range topologies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func newTopology(name string) (Topology, error) {
	regMu.Lock()
	defer regMu.Unlock()
	f, ok := topologies[name]
	if !ok {
		return nil, fmt.Errorf("scale: topology %q cannot run without a data plane (can: %v)", name, Topologies())
	}
	return f(), nil
}
