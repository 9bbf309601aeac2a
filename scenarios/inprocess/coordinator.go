package inprocess

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeInProcess, coordinator.TopologyName, startCoordinator)
}

// coordinatorDeployment is the Kafka/ZooKeeper-style topology in one
// process: an embedded etcd cluster and brokers with coordinator handles.
type coordinatorDeployment struct {
	peerPlane

	etcdMu   sync.Mutex
	etcdCfg  []coordinator.EtcdConfig
	etcd     []*coordinator.Etcd
	stopping []chan struct{} // closed when a killed member has let go of its ports
}

func startCoordinator(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	d := &coordinatorDeployment{peerPlane: newPeerPlane(env, scenarios.CoordinatorCost)}
	d.faults = nodes.NewFaults(coordinator.TopologyName, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	cfgs, err := coordinator.LocalCluster(max(env.Spec.Cluster.Count("etcd"), 1), filepath.Join(env.DataDir, "etcd"))
	if err != nil {
		return nil, err
	}
	for i := range cfgs {
		cfgs[i].UnsafeNoFsync = true // a scratch cluster; fsync cost is not what is measured
		cfgs[i].Logger = env.Logger.With("component", "etcd")
		cfgs[i].LogLevel = "error"
	}
	d.etcdCfg = cfgs
	members, err := coordinator.StartCluster(ctx, cfgs)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	d.etcd = members
	d.stopping = make([]chan struct{}, len(members))
	var endpoints []string
	for i, m := range members {
		name := nodes.MemberName("etcd", i)
		for _, ep := range m.Endpoints() {
			d.net.Register(name, hostPort(ep))
			endpoints = append(endpoints, hostPort(ep))
		}
		d.addAux(&auxNode{name: name, up: true,
			kill:    func() error { return d.stopEtcd(i) },
			restart: func(ctx context.Context) error { return d.startEtcd(ctx, i) },
		})
	}
	d.newPlane = func(id int32) (broker.ControlPlane, error) {
		cfg := coordinator.DefaultConfig()
		cfg.Endpoints = endpoints
		cfg.SessionTTL = d.timings.BrokerLease
		cfg.Dial = d.net.Dialer(nodes.BrokerName(id))
		cfg.Logger = env.Logger.With("component", "coordinator", "node-id", id)
		return coordinator.New(cfg)
	}
	if err := d.start(ctx, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// stopEtcd kills member i as a crash would: the fault network cuts it off
// at once, and the member is killed in the background (etcd takes seconds to
// let go of its ports; a graceful Close would even keep serving keep-alives
// meanwhile).
func (d *coordinatorDeployment) stopEtcd(i int) error {
	d.etcdMu.Lock()
	defer d.etcdMu.Unlock()
	m := d.etcd[i]
	if m == nil {
		return nil
	}
	d.etcd[i] = nil
	name := nodes.MemberName("etcd", i)
	d.net.Isolate(name)
	for _, n := range d.brokers {
		d.net.Reset(n.name, name)
	}
	done := make(chan struct{})
	d.stopping[i] = done
	go func() {
		defer close(done)
		m.Kill()
	}()
	return nil
}

func (d *coordinatorDeployment) startEtcd(ctx context.Context, i int) error {
	d.etcdMu.Lock()
	defer d.etcdMu.Unlock()
	if done := d.stopping[i]; done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.stopping[i] = nil
	}
	defer d.net.Rejoin(nodes.MemberName("etcd", i))
	m, err := coordinator.StartEtcd(d.etcdCfg[i])
	if err != nil {
		return err
	}
	d.etcd[i] = m
	if len(d.etcd) == 1 {
		return m.WaitReady(ctx) // a lone member can serve at once
	}
	return nil // a member of a larger cluster is ready once a quorum is back
}

// Active resolves the coordinator's "controller": the broker the running
// brokers name as controller.
func (d *coordinatorDeployment) Active(ctx context.Context, role string) (string, error) {
	if role != "controller" {
		return d.cluster.Active(ctx, role)
	}
	for _, b := range d.running() {
		if id := b.View().ControllerID; id >= 0 {
			return nodes.BrokerName(id), nil
		}
	}
	return "", errors.New("no controller known")
}

func (d *coordinatorDeployment) Close() error {
	err := d.close()
	d.etcdMu.Lock()
	for i, m := range d.etcd {
		if m != nil {
			_ = m.Close()
			d.etcd[i] = nil
		}
	}
	for _, done := range d.stopping {
		if done != nil {
			<-done
		}
	}
	d.etcdMu.Unlock()
	return err
}
