package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// clusterName is the RocketMQ cluster every broker of a run joins.
const clusterName = "brokerlab"

// nameServerDeployment is the RocketMQ-style topology: `brokerlab
// nameserver` nodes and broker groups of Topic.Replication
// members (broker i is in group-<i/replication> with broker id
// i%replication; id 0 is the master). The runner polls every name server
// for detection times and reads control-plane cost from the name servers'
// metrics endpoints. In controller mode (nameserver_controller.go) it also
// runs the controllers, and the brokers heartbeat to them.
type nameServerDeployment struct {
	*base
	servers []*Node
	ctrls   []*Node // controller mode only
	nsTime  nameserver.Timings
	probes  []*nameserver.RouteClient // one per name server, the runner's own eyes
	cost    *scenarios.MetricsScraper
}

// nameServerStarter starts the classic topology, or controller mode's.
func nameServerStarter(newLauncher NewLauncher, controllerMode bool) scenarios.Starter {
	return func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startNameServers(ctx, env, newLauncher, controllerMode)
	}
}

// startNameServers starts the name servers, in controller mode the
// controllers, then the brokers.
func startNameServers(ctx context.Context, env scenarios.Env, newLauncher NewLauncher, controllerMode bool) (scenarios.Deployment, error) {
	b, err := newBase(ctx, env, newLauncher)
	if err != nil {
		return nil, err
	}
	d := &nameServerDeployment{base: b, cost: scenarios.NewMetricsScraper(scenarios.NameServerCost)}
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
	if err := d.startServers(ctx, max(env.Spec.Cluster.Count("nameservers"), 1)); err != nil {
		return nil, err
	}
	if controllerMode {
		if err := d.startControllers(ctx, max(env.Spec.Cluster.Count("controllers"), 1)); err != nil {
			return nil, err
		}
	}
	replication := max(env.Spec.Topic.Replication, 1)
	mode := env.Spec.Topic.ReplicationMode
	if mode == "" {
		mode = nameserver.ModeSync
	}
	addrs := peerAddrs(d.servers)
	err = d.startBrokers(ctx, env.Spec.Cluster.Brokers, func(n *Node, id int) []string {
		return append(append(d.brokerArgs(n, id),
			"--nameservers", strings.Join(addrs, ","),
			"--cluster", clusterName,
			"--group", "group-"+strconv.Itoa(id/replication),
			"--broker-id", strconv.Itoa(id%replication),
			"--replication-mode", mode,
			"--heartbeat-interval", d.nsTime.Heartbeat.String(),
			"--route-poll-interval", d.nsTime.RoutePoll.String(),
			"--nameserver-timeout", d.nsTime.RequestTimeout.String(),
		), d.controllerArgs()...)
	})
	if err != nil {
		return nil, err
	}
	if err := nameserver.AwaitBrokers(ctx, d.probes, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	cfg := nodes.NameServersConfig(env.Spec, d.nsTime, addrs)
	if err := d.startClients(ctx, ClientSpec{Style: producer.StyleRocketMQ, NameServers: &cfg}); err != nil {
		return nil, err
	}
	d.goBg(d.watchBrokers)
	ok = true
	return d, nil
}

// startServers runs count name servers and a probe client for each.
func (d *nameServerDeployment) startServers(ctx context.Context, count int) error {
	var err error
	if d.servers, err = d.addMembers(RoleNameserver, count, nameserverPort, metricsPort); err != nil {
		return err
	}
	err = d.LaunchAll(ctx, d.servers, func(int, *Node) []string {
		return []string{"nameserver",
			"--listen", "0.0.0.0:" + strconv.Itoa(nameserverPort),
			"--scan-interval", d.nsTime.Scan.String(),
			"--broker-expiry", d.nsTime.Expiry.String(),
			"--request-timeout", d.nsTime.RequestTimeout.String(),
			"--metrics-listen", "0.0.0.0:" + strconv.Itoa(metricsPort),
			"--log-level", "warn",
		}
	})
	if err != nil {
		return err
	}
	for _, n := range d.servers {
		cfg := nameserver.DefaultRouteClientConfig()
		cfg.NameServers = []string{n.addr()}
		cfg.RequestTimeout = time.Second
		probe, err := nameserver.NewRouteClient(cfg)
		if err != nil {
			return err
		}
		d.probes = append(d.probes, probe)
	}
	return nil
}

// watchBrokers polls the name servers and records when a broker drops out
// of every reachable one: no client can get a route to it any more.
func (d *nameServerDeployment) watchBrokers(ctx context.Context) {
	nodes.WatchLive(ctx, 100*time.Millisecond, func(ctx context.Context) []int32 {
		return nameserver.LiveBrokers(ctx, d.probes, func(i int) bool { return d.reachable(d.servers[i].Name) })
	}, &d.departures)
}

// routed checks that every reachable name server routes every partition of
// the topic to a master.
func (d *nameServerDeployment) routed(t scenario.Topic) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		for i, p := range d.probes {
			if !d.reachable(d.servers[i].Name) {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			r, err := p.Refresh(rctx, t.Name)
			cancel()
			if err != nil {
				return fmt.Errorf("nameserver %d: %w", i, err)
			}
			for part := range int32(t.Partitions) {
				g, ok := r.Group(part)
				if !ok {
					return fmt.Errorf("nameserver %d: %s/%d has no group", i, t.Name, part)
				}
				if _, ok := g.Master(); !ok {
					return fmt.Errorf("nameserver %d: %s/%d has no master", i, t.Name, part)
				}
			}
		}
		return nil
	}
}

// CreateTopic creates the topic through a broker; start-up has already
// waited until every name server knows every broker (the answering name
// server spreads the topic over the groups it knows).
func (d *nameServerDeployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	return d.createTopic(ctx, t, d.routed(t))
}

// ControlPlane reads the reachable name servers' metrics endpoints (a
// killed or cut-off one keeps the values last read; see
// scenarios.NameServerCost for what counts).
func (d *nameServerDeployment) ControlPlane() []analysis.CPSample {
	targets := map[string]string{}
	for _, n := range d.servers {
		if d.reachable(n.Name) {
			targets[n.Name] = metricsURL(n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.cost.Sample(ctx, targets)
}

// MetricsTargets are every broker's and name server's endpoints (the
// controllers serve none).
func (d *nameServerDeployment) MetricsTargets() map[string]string {
	return nodeMetrics(nodeMetrics(nil, d.brokers), d.servers)
}

func (d *nameServerDeployment) Close() error {
	d.stopBg()
	d.bg.Wait()
	var errs []error
	for _, p := range d.probes {
		errs = append(errs, p.Close())
	}
	errs = append(errs, d.close())
	return errors.Join(errs...)
}
