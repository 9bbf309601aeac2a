package swarm

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func init() {
	scenarios.RegisterDriver(scenario.RuntimeSwarm, coordinator.TopologyName, startCoordinator)
}

// etcdPrefix is the coordinator's default key prefix.
const etcdPrefix = "/brokerlab"

// coordinatorDeployment is the Kafka/ZooKeeper-style topology on a swarm:
// `brokerlab coordinator` etcd members and brokers, each a service. The
// runner watches etcd (through a member's published port) for detection
// and scrapes the brokers' coordinator counters for control-plane cost.
type coordinatorDeployment struct {
	*base
	etcd    []*node
	etcdCli *clientv3.Client
	cost    *scenarios.MetricsScraper
}

func startCoordinator(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
	b, err := newBase(ctx, env)
	if err != nil {
		return nil, err
	}
	d := &coordinatorDeployment{base: b, cost: scenarios.NewMetricsScraper(scenarios.CoordinatorCost)}
	d.faults = nodes.NewFaults(coordinator.TopologyName, d)
	ok := false
	defer func() {
		if !ok {
			_ = d.Close()
		}
	}()
	if err := d.startEtcd(ctx, max(env.Spec.Cluster.Count("etcd"), 1)); err != nil {
		return nil, err
	}
	endpoints := joinAddrs(d.etcd, (*node).advertised)
	lease := time.Duration(math.Ceil(d.timings.BrokerLease.Seconds())) * time.Second
	err = d.startBrokers(ctx, env.Spec.Cluster.Brokers, func(n *node, id int) []string {
		return append(d.brokerArgs(n, id), "--etcd", endpoints, "--session-ttl", lease.String())
	})
	if err != nil {
		return nil, err
	}
	if err := d.waitRegistered(ctx, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	brokers := d.advertisedBrokers()
	err = d.startLoadgens(ctx, producer.StyleKafka, func(s *session) {
		cfg := nodes.BootstrapConfig(d.spec)
		cfg.Brokers = brokers
		s.Bootstrap = &cfg
	})
	if err != nil {
		return nil, err
	}
	d.goBg(d.watchBrokers)
	ok = true
	return d, nil
}

// startEtcd runs count members as one etcd cluster, reachable by their
// service names on the overlay, and connects the runner's client through
// their published ports.
func (d *coordinatorDeployment) startEtcd(ctx context.Context, count int) error {
	var peers []string
	for i := range count {
		n, err := d.add(nodes.MemberName("etcd", i), roleEtcd, etcdPort)
		if err != nil {
			return err
		}
		d.etcd = append(d.etcd, n)
		peers = append(peers, fmt.Sprintf("etcd%d=http://%s", i, net.JoinHostPort(n.service, strconv.Itoa(etcdPeerPort))))
	}
	err := d.launchAll(ctx, d.etcd, func(i int, n *node) []string {
		return []string{"coordinator",
			"--name", "etcd" + strconv.Itoa(i),
			"--data", "/data/etcd",
			"--listen", "http://0.0.0.0:" + strconv.Itoa(etcdPort),
			"--advertise", "http://" + n.advertised(),
			"--peer-listen", "http://0.0.0.0:" + strconv.Itoa(etcdPeerPort),
			"--peer-advertise", "http://" + net.JoinHostPort(n.service, strconv.Itoa(etcdPeerPort)),
			"--initial-cluster", strings.Join(peers, ","),
			"--unsafe-no-fsync",
			"--log-level", "warn",
		}
	})
	if err != nil {
		return err
	}
	var eps []string
	for _, n := range d.etcd {
		eps = append(eps, n.addr())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("swarm: etcd client: %w", err)
	}
	d.etcdCli = cli
	return poll(ctx, 100*time.Millisecond, func() error {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Get(gctx, etcdPrefix+"/cluster-id")
		return err
	})
}

func (d *coordinatorDeployment) waitRegistered(ctx context.Context, count int) error {
	return poll(ctx, 50*time.Millisecond, func() error {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := d.etcdCli.Get(gctx, etcdPrefix+"/brokers/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if int(resp.Count) < count {
			return fmt.Errorf("%d of %d brokers registered", resp.Count, count)
		}
		return nil
	})
}

// watchBrokers records every broker registration that disappears from etcd
// (its lease expired): the coordinator's detection of a dead broker.
func (d *coordinatorDeployment) watchBrokers(ctx context.Context) {
	prefix := etcdPrefix + "/brokers/"
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := d.etcdCli.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		cancel()
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range d.etcdCli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypeDelete {
					continue
				}
				if id, err := strconv.Atoi(strings.TrimPrefix(string(ev.Kv.Key), prefix)); err == nil {
					d.departed(int32(id), time.Now())
				}
			}
		}
		stop()
	}
}

// Active resolves "controller": the broker the brokers name as controller.
func (d *coordinatorDeployment) Active(ctx context.Context, role string) (string, error) {
	if role != "controller" {
		return d.base.Active(ctx, role)
	}
	for _, md := range d.metadata(ctx, []string{}) {
		if md.ControllerID >= 0 {
			return nodes.BrokerName(md.ControllerID), nil
		}
	}
	return "", fmt.Errorf("no broker names a controller")
}

func (d *coordinatorDeployment) CreateTopic(ctx context.Context, t scenario.Topic) error {
	return d.createTopic(ctx, t, nil)
}

// ControlPlane reads the brokers' coordinator counters (etcd requests and
// bytes by kind) from their metrics endpoints, as the in-process runtime
// counts them.
func (d *coordinatorDeployment) ControlPlane() []analysis.CPSample {
	targets := map[string]string{}
	for _, n := range d.brokers {
		if d.reachable(n.name) {
			targets[n.name] = metricsURL(n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.cost.Sample(ctx, targets)
}

// MetricsTargets are every broker's and etcd member's endpoints.
func (d *coordinatorDeployment) MetricsTargets() map[string]string {
	return nodeMetrics(nodeMetrics(nil, d.brokers), d.etcd)
}

func (d *coordinatorDeployment) Close() error {
	d.stopBg()
	d.bg.Wait()
	if d.etcdCli != nil {
		_ = d.etcdCli.Close()
	}
	return d.close()
}
