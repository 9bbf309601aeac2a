package scale

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/coordinator"
)

func init() { Register(coordinator.TopologyName, func() Topology { return &coordinatorScale{} }) }

// coordinatorScale is the Kafka/ZooKeeper-style control plane at scale: one
// embedded etcd member and one coordinator.Plane (its own etcd client,
// lease, watch and view cache) per broker.
type coordinatorScale struct {
	shape Shape
	etcd  *coordinator.Etcd
	eps   []string

	mu     sync.Mutex
	planes []*coordinator.Plane
}

func (c *coordinatorScale) Start(ctx context.Context, s Shape) error {
	c.shape = s
	cfgs, err := coordinator.LocalCluster(1, filepath.Join(s.Dir, "etcd"))
	if err != nil {
		return err
	}
	cfgs[0].UnsafeNoFsync = true // as in the in-process runtime: fsync cost is not what is measured
	cfgs[0].Logger = s.Logger.With("component", "etcd")
	cfgs[0].LogLevel = "error"
	members, err := coordinator.StartCluster(ctx, cfgs)
	if err != nil {
		return fmt.Errorf("scale: etcd: %w", err)
	}
	c.etcd = members[0]
	c.eps = append(c.eps, c.etcd.Endpoints()...)
	return nil
}

func (c *coordinatorScale) NewPlane(id int32) (broker.ControlPlane, error) {
	cfg := coordinator.DefaultConfig()
	if c.shape.Profile != "production" {
		cfg = coordinator.FastConfig()
	}
	cfg.Endpoints = c.eps
	cfg.Logger = c.shape.Logger.With("component", "coordinator", "node-id", id)
	p, err := coordinator.New(cfg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.planes = append(c.planes, p)
	c.mu.Unlock()
	return p, nil
}

// Cost sums the etcd traffic every broker's handle counted (client side:
// requests sent, bytes both ways), as the in-process runtime reports it.
func (c *coordinatorScale) Cost() Cost {
	c.mu.Lock()
	planes := append([]*coordinator.Plane(nil), c.planes...)
	c.mu.Unlock()
	var out Cost
	for _, p := range planes {
		t := p.Stats().Total()
		out.Requests += t.Requests
		out.Bytes += t.BytesSent + t.BytesReceived
	}
	return out
}

func (c *coordinatorScale) MovesLeaders() bool { return true }

func (c *coordinatorScale) Close() error {
	if c.etcd != nil {
		c.etcd.Close()
	}
	return nil
}
