package inprocess

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/controller"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// The nameserver-controller topology in one process: the nameserver
// deployment plus `controllers` standalone controllers (RocketMQ 5
// controller mode). Fault targets "controller N" kill, pause or isolate
// one; the bare "controller" is the Raft leader at fault time.

func init() {
	scenarios.RegisterDriver(scenario.RuntimeInProcess, nameserver.ControllerTopologyName,
		func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
			return startNameServers(ctx, env, true)
		})
}

// controllerSet runs the controllers of a deployment.
type controllerSet struct {
	d     *nameServerDeployment
	addrs []string
	logs  []*raft.MemoryStorage // each controller's Raft log, kept across kill and restart

	cost *scenarios.MetricsScraper

	mu      sync.Mutex
	ctrls   []*controller.Controller // nil while down
	metrics []string                 // metrics listen address of each, kept across restarts
}

func controllerName(i int) string { return nodes.MemberName("controller", i) }

// startControllers opens every controller's listener first (each needs
// every peer's address), then starts them.
func (d *nameServerDeployment) startControllers(ctx context.Context, n int) error {
	cs := &controllerSet{d: d, addrs: make([]string, n), ctrls: make([]*controller.Controller, n),
		logs: make([]*raft.MemoryStorage, n), metrics: make([]string, n), cost: scenarios.NewMetricsScraper(scenarios.ControllerCost)}
	for i := range cs.logs {
		cs.logs[i] = raft.NewMemoryStorage()
		cs.metrics[i] = "127.0.0.1:0"
	}
	d.ctrl = cs
	lns, addrs, err := controller.ListenPeers(ctx, n)
	if err != nil {
		return err
	}
	cs.addrs = addrs
	for i := range n {
		name := controllerName(i)
		d.net.Register(name, cs.addrs[i])
		if err := cs.start(ctx, i, lns[i]); err != nil {
			for _, l := range lns[i+1:] {
				_ = l.Close()
			}
			return err
		}
		d.addAux(&auxNode{name: name, addr: cs.addrs[i], up: true,
			kill:    func() error { return cs.stop(i) },
			restart: func(ctx context.Context) error { return cs.start(ctx, i, nil) },
		})
	}
	return nil
}

// start runs controller i, on its listener or else on its address. A
// restarted controller resumes from its kept Raft log, as from a disk.
func (cs *controllerSet) start(ctx context.Context, i int, ln net.Listener) error {
	cfg := cs.d.nsTime.Controller.Config()
	cfg.ID, cfg.Peers, cfg.Listener, cfg.Storage = uint64(i+1), cs.addrs, ln, cs.logs[i]
	cfg.Dial = cs.d.net.Dialer(controllerName(i))
	cfg.Logger = cs.d.logger.With("component", "controller", "controller", i)
	cs.mu.Lock()
	cfg.MetricsListen = cs.metrics[i]
	cs.mu.Unlock()
	c, err := controller.New(cfg)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("controller %d: %w", i, err)
	}
	cs.mu.Lock()
	cs.ctrls[i], cs.metrics[i] = c, c.MetricsAddr()
	cs.mu.Unlock()
	return nil
}

func (cs *controllerSet) stop(i int) error {
	cs.mu.Lock()
	c := cs.ctrls[i]
	cs.ctrls[i] = nil
	cs.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// resolve names the controller a fault targets: index i, or the leader.
func (cs *controllerSet) resolve(i int) (string, error) {
	if i >= 0 {
		if i >= len(cs.addrs) {
			return "", fmt.Errorf("%w: no controller %d", scenarios.ErrNotApplicable, i)
		}
		return controllerName(i), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cs.mu.Lock()
		for j, c := range cs.ctrls {
			if c != nil && c.IsLeader() {
				cs.mu.Unlock()
				return controllerName(j), nil
			}
		}
		cs.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // polling for an election in progress
	}
	return "", errors.New("no controller leader")
}

// targets maps every controller, up or not, to its metrics URL.
func (cs *controllerSet) targets() map[string]string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := make(map[string]string, len(cs.metrics))
	for i, a := range cs.metrics {
		out[controllerName(i)] = "http://" + a + metrics.Path
	}
	return out
}

func (cs *controllerSet) close() {
	for i := range cs.ctrls {
		_ = cs.stop(i)
	}
}
