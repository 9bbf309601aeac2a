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

// UnderReplicated counts the partitions of the scenario's topic whose
// newest state (as the running brokers' views have it) lacks a leader or
// has an ISR smaller than its replica set (scenarios.Replication): a roll
// waits for 0 between steps.
func (c *cluster) UnderReplicated(context.Context) (int, error) {
	n := 0
	for p := range int32(c.spec.Topic.Partitions) {
		st, ok := c.partitionState(c.spec.Topic.Name, p)
		if !ok || st.Leader < 0 || len(st.Replicas) == 0 {
			n++
			continue
		}
		for _, r := range st.Replicas {
			if !st.InISR(r) || !c.isRunning(r) {
				n++
				break
			}
		}
	}
	return n, nil
}

// isRunning reports whether broker id is up.
func (c *cluster) isRunning(id int32) bool {
	n := c.brokerNode(nodes.BrokerName(id))
	if n == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.b != nil
}
