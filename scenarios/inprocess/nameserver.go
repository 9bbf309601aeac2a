package inprocess

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeInProcess, nameserver.TopologyName, startNameServer)
}

// clusterName is the RocketMQ cluster every broker of a run joins.
const clusterName = "brokerlab"

// nameServerDeployment is the RocketMQ-style topology in one process:
// stateless name servers and broker groups (master + slaves) with
// registrars.
type nameServerDeployment struct {
	*cluster
	nsTime nameserver.Timings

	nsMu      sync.Mutex
	servers   []*nameserver.Server // nil while down
	nsAddrs   []string
	nsMetrics []string // metrics listen address of each name server
	cost      *scenarios.MetricsScraper
	probes    []*nameserver.RouteClient
	ctrl      *controllerSet // controller mode only (nameserver_controller.go)
}

func startNameServer(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	return startNameServers(ctx, env, false)
}

// startNameServers starts the name servers, in controller mode the
// controllers, then the brokers.
func startNameServers(ctx context.Context, env scenarios.Env, controllerMode bool) (scenarios.Deployment, error) {
	d := &nameServerDeployment{cluster: newCluster(env), cost: scenarios.NewMetricsScraper(scenarios.NameServerCost)}
	topo := nameserver.TopologyName
	if controllerMode {
		topo = nameserver.ControllerTopologyName
	}
	d.faults = nodes.NewFaults(topo, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	d.nsTime = nodes.NameServerTimings(env.Spec)
	n := max(env.Spec.Cluster.Count("nameservers"), 1)
	d.servers = make([]*nameserver.Server, n)
	d.nsAddrs = make([]string, n)
	d.nsMetrics = make([]string, n)
	for i := range d.nsMetrics {
		d.nsMetrics[i] = "127.0.0.1:0"
	}
	for i := range n {
		name := nodes.MemberName("nameserver", i)
		if err := d.startServer(ctx, i, "127.0.0.1:0"); err != nil {
			return nil, err
		}
		d.net.Register(name, d.nsAddrs[i])
		d.addAux(&auxNode{name: name, addr: d.nsAddrs[i], up: true,
			kill:    func() error { return d.stopServer(i) },
			restart: func(ctx context.Context) error { return d.startServer(ctx, i, d.nsAddrs[i]) },
		})
		// A probe per name server, outside the fault network: the runner's
		// own eyes for detection times.
		rc := nameserver.DefaultRouteClientConfig()
		rc.NameServers = []string{d.nsAddrs[i]}
		rc.RequestTimeout = time.Second
		probe, err := nameserver.NewRouteClient(rc)
		if err != nil {
			return nil, err
		}
		d.probes = append(d.probes, probe)
	}
	if controllerMode {
		if err := d.startControllers(ctx, max(env.Spec.Cluster.Count("controllers"), 1)); err != nil {
			return nil, err
		}
	}
	replication := max(env.Spec.Topic.Replication, 1)
	mode := env.Spec.Topic.ReplicationMode
	if mode == "" {
		mode = "sync"
	}
	d.newPlane = func(id int32) (broker.ControlPlane, error) {
		cfg := d.nsTime.RegistrarConfig()
		cfg.NameServers = d.nsAddrs
		cfg.Cluster = clusterName
		cfg.Group = "group-" + strconv.Itoa(int(id)/replication)
		cfg.BrokerID = id % int32(replication)
		cfg.Mode = mode
		cfg.DataDir = d.brokerConfig(id).DataDir
		cfg.Dial = d.net.Dialer(nodes.BrokerName(id))
		cfg.Logger = env.Logger.With("component", "registrar", "node-id", id)
		if d.ctrl != nil {
			cfg.Controllers = d.ctrl.addrs
		}
		return nameserver.NewRegistrar(cfg)
	}
	d.liveIn = d.liveBrokers
	if err := d.startBrokers(ctx, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	d.setClients(producer.StyleRocketMQ, func(name string, onChange func(discovery.Change)) (discovery.Discovery, error) {
		cfg := nodes.NameServersConfig(env.Spec, d.nsTime, d.nsAddrs)
		cfg.Dial = d.net.Dialer(name)
		cfg.OnChange = onChange
		cfg.Logger = env.Logger.With("component", "discovery", "client", name)
		return discovery.NewNameServers(cfg)
	})
	d.monitor()
	ok = true
	return d, nil
}

func (d *nameServerDeployment) startServer(ctx context.Context, i int, listen string) error {
	cfg := d.nsTime.ServerConfig()
	cfg.Listen = listen
	d.nsMu.Lock()
	cfg.MetricsListen = d.nsMetrics[i] // a restart keeps its metrics address too
	d.nsMu.Unlock()
	cfg.Logger = d.logger.With("component", "nameserver", "nameserver", i)
	s, err := nameserver.New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("nameserver %d: %w", i, err)
	}
	d.nsMu.Lock()
	d.servers[i], d.nsAddrs[i], d.nsMetrics[i] = s, s.Addr(), s.MetricsAddr()
	d.nsMu.Unlock()
	return nil
}

func (d *nameServerDeployment) stopServer(i int) error {
	d.nsMu.Lock()
	s := d.servers[i]
	d.servers[i] = nil
	d.nsMu.Unlock()
	if s == nil {
		return nil
	}
	return s.Close()
}

// liveBrokers are the node ids still registered with some live name
// server.
func (d *nameServerDeployment) liveBrokers(ctx context.Context) []int32 {
	return nameserver.LiveBrokers(ctx, d.probes, func(i int) bool {
		d.nsMu.Lock()
		defer d.nsMu.Unlock()
		return d.servers[i] != nil
	})
}

// CreateTopic waits until every name server knows every broker (the
// answering name server spreads the topic over the groups it knows), then
// creates the topic through a broker.
func (d *nameServerDeployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	if err := nameserver.AwaitBrokers(ctx, d.probes, len(d.brokers)); err != nil {
		return err
	}
	return d.createTopic(ctx, t)
}

// Active resolves the bare "controller" of controller mode: the Raft
// leader among the controllers at fault time.
func (d *nameServerDeployment) Active(ctx context.Context, role string) (string, error) {
	if role != "controller" || d.ctrl == nil {
		return d.cluster.Active(ctx, role)
	}
	return d.ctrl.resolve(-1)
}

// ControlPlane reads every name server's metrics endpoint, and in
// controller mode every controller's (a killed node keeps the values last
// read, a restarted one's counters are carried over); see
// scenarios.NameServerCost and scenarios.ControllerCost for what counts.
func (d *nameServerDeployment) ControlPlane() []analysis.CPSample {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := d.cost.Sample(ctx, d.nameServerMetrics())
	if d.ctrl != nil {
		out = append(out, d.ctrl.cost.Sample(ctx, d.ctrl.targets())...)
	}
	return out
}

// nameServerMetrics maps every name server, up or not, to its metrics URL.
func (d *nameServerDeployment) nameServerMetrics() map[string]string {
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	out := make(map[string]string, len(d.nsMetrics))
	for i, a := range d.nsMetrics {
		out["nameserver "+strconv.Itoa(i)] = "http://" + a + metrics.Path
	}
	return out
}

// MetricsTargets are the brokers', the name servers' and the
// controllers' endpoints.
func (d *nameServerDeployment) MetricsTargets() map[string]string {
	out := d.brokerMetrics()
	maps.Copy(out, d.nameServerMetrics())
	if d.ctrl != nil {
		maps.Copy(out, d.ctrl.targets())
	}
	return out
}

func (d *nameServerDeployment) Close() error {
	err := d.close()
	for _, p := range d.probes {
		_ = p.Close()
	}
	for i := range d.servers {
		_ = d.stopServer(i)
	}
	if d.ctrl != nil {
		d.ctrl.close()
	}
	return err
}
