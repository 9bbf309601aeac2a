package swarm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeSwarm, nameserver.TopologyName, startNameServer)
}

// clusterName is the RocketMQ cluster every broker of a run joins.
const clusterName = "brokerlab"

// nameServerDeployment is the RocketMQ-style topology on a swarm: name
// server services and broker groups of Topic.Replication members (broker i
// is broker id i%replication of group-<i/replication>). The runner polls
// every name server through its published port for detection times.
type nameServerDeployment struct {
	*base
	servers []*node
	nsTime  nameserver.Timings
	probes  []*nameserver.RouteClient
	cost    *scenarios.MetricsScraper
}

func startNameServer(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	b, err := newBase(ctx, env)
	if err != nil {
		return nil, err
	}
	d := &nameServerDeployment{base: b, cost: scenarios.NewMetricsScraper(scenarios.NameServerCost)}
	d.faults = nodes.NewFaults(nameserver.TopologyName, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	d.nsTime = nameserver.Production()
	if env.Spec.Cluster.Profile == scenario.ProfileFast {
		d.nsTime = nameserver.Fast()
	}
	d.nsTime.Heartbeat, d.nsTime.Scan, d.nsTime.Expiry, d.nsTime.RoutePoll = d.timings.Heartbeat, d.timings.ScanInterval, d.timings.BrokerExpiry, d.timings.RoutePoll
	if err := d.startServers(ctx, max(env.Spec.Cluster.Count("nameservers"), 1)); err != nil {
		return nil, err
	}
	replication := max(env.Spec.Topic.Replication, 1)
	mode := env.Spec.Topic.ReplicationMode
	if mode == "" {
		mode = nameserver.ModeSync
	}
	servers := joinAddrs(d.servers, (*node).advertised)
	err = d.startBrokers(ctx, env.Spec.Cluster.Brokers, func(n *node, id int) []string {
		return append(d.brokerArgs(n, id),
			"--nameservers", servers,
			"--cluster", clusterName,
			"--group", "group-"+strconv.Itoa(id/replication),
			"--broker-id", strconv.Itoa(id%replication),
			"--replication-mode", mode,
			"--heartbeat-interval", d.nsTime.Heartbeat.String(),
			"--route-poll-interval", d.nsTime.RoutePoll.String(),
			"--nameserver-timeout", d.nsTime.RequestTimeout.String(),
		)
	})
	if err != nil {
		return nil, err
	}
	if err := nameserver.AwaitBrokers(ctx, d.probes, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	var advertised []string
	for _, n := range d.servers {
		advertised = append(advertised, n.advertised())
	}
	err = d.startLoadgens(ctx, producer.StyleRocketMQ, func(s *session) {
		cfg := discovery.DefaultNameServersConfig()
		if env.Spec.Cluster.Profile == scenario.ProfileFast {
			cfg = discovery.FastNameServersConfig()
		}
		cfg.NameServers = advertised
		cfg.PollInterval = d.timings.RoutePoll
		cfg.FaultAvoidance = true
		cfg.Faults = d.nsTime.Faults
		s.NameServers = &cfg
	})
	if err != nil {
		return nil, err
	}
	d.goBg(d.watchBrokers)
	ok = true
	return d, nil
}

func (d *nameServerDeployment) startServers(ctx context.Context, count int) error {
	for i := range count {
		n, err := d.add(nodes.MemberName("nameserver", i), roleNameserver, nameserverPort, metricsPort)
		if err != nil {
			return err
		}
		d.servers = append(d.servers, n)
	}
	err := d.launchAll(ctx, d.servers, func(int, *node) []string {
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
// of every reachable one.
func (d *nameServerDeployment) watchBrokers(ctx context.Context) {
	nodes.WatchLive(ctx, 100*time.Millisecond, func(ctx context.Context) []int32 {
		return nameserver.LiveBrokers(ctx, d.probes, func(i int) bool { return d.reachable(d.servers[i].name) })
	}, &d.departures)
}

// routed checks that every reachable name server routes every partition of
// the topic to a master.
func (d *nameServerDeployment) routed(t scenario.Topic) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		for i, p := range d.probes {
			if !d.reachable(d.servers[i].name) {
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

func (d *nameServerDeployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	return d.createTopic(ctx, t, d.routed(t))
}

func (d *nameServerDeployment) ControlPlane() []analysis.CPSample {
	targets := map[string]string{}
	for _, n := range d.servers {
		if d.reachable(n.name) {
			targets[n.name] = metricsURL(n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.cost.Sample(ctx, targets)
}

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
