package inprocess

import (
	"context"
	"fmt"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// PowerLoss cuts a broker's power (broker.PowerLoss: every partition log
// loses what no fsync covered); Restart brings it back on what survived.
// Control-plane nodes keep scratch state (etcd runs without fsync here), so
// power loss does not apply to them.
func (c *cluster) PowerLoss(_ context.Context, node string) error {
	if _, ok := c.aux[node]; ok {
		return nodes.NotApplicable("power-loss of %s: control-plane nodes run without durable storage in-process", node)
	}
	b, err := c.takeBroker(node)
	if err != nil {
		return err
	}
	b.PowerLoss()
	return nil
}

// Stop shuts a broker down gracefully (broker.Close: its control plane's
// Deregister hands off, logs are flushed); Restart brings it back.
func (c *cluster) Stop(_ context.Context, node string) error {
	if _, ok := c.aux[node]; ok {
		return nodes.NotApplicable("stop of %s: control-plane nodes have no graceful stop in-process", node)
	}
	b, err := c.takeBroker(node)
	if err != nil {
		return err
	}
	return b.Close()
}

// takeBroker marks a running broker down and returns it.
func (c *cluster) takeBroker(node string) (*broker.Broker, error) {
	n := c.brokerNode(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	c.mu.Lock()
	b := n.b
	n.b = nil
	c.mu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("%s is already down", node)
	}
	return b, nil
}
