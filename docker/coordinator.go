package docker

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/coordinator"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdPrefix is the coordinator's default key prefix (brokers run with it).
const etcdPrefix = "/brokerlab"

// coordinatorDeployment is the Kafka/ZooKeeper-style topology:
// `brokerlab coordinator` etcd members and brokers joined to them. The runner watches etcd itself for detection times and scrapes the
// members' /metrics for control-plane counters.
type coordinatorDeployment struct {
	*base
	etcd    []*Node
	etcdCli *clientv3.Client
	metrics *etcdMetrics
}

func startCoordinator(newLauncher NewLauncher) scenarios.Starter {
	return func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startCoordinatorOn(ctx, env, newLauncher)
	}
}

func startCoordinatorOn(ctx context.Context, env scenarios.Env, newLauncher NewLauncher) (scenarios.Deployment, error) {
	b, err := newBase(ctx, env, newLauncher)
	if err != nil {
		return nil, err
	}
	d := &coordinatorDeployment{base: b}
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
	endpoints := peerAddrs(d.etcd)
	lease := time.Duration(math.Ceil(d.timings.BrokerLease.Seconds())) * time.Second
	err = d.startBrokers(ctx, env.Spec.Cluster.Brokers, func(n *Node, id int) []string {
		return append(d.brokerArgs(n, id), "--etcd", strings.Join(endpoints, ","), "--session-ttl", lease.String())
	})
	if err != nil {
		return nil, err
	}
	if err := d.waitRegistered(ctx, env.Spec.Cluster.Brokers); err != nil {
		return nil, err
	}
	if err := d.bootstrapClients(ctx); err != nil {
		return nil, err
	}
	d.goBg(d.watchBrokers)
	ok = true
	return d, nil
}

// startEtcd runs n `brokerlab coordinator` members as one etcd cluster and
// waits until it serves, and connects the runner's etcd client.
func (d *coordinatorDeployment) startEtcd(ctx context.Context, count int) error {
	var err error
	if d.etcd, err = d.addMembers(RoleEtcd, count, etcdPort); err != nil {
		return err
	}
	var peers []string
	for i, n := range d.etcd {
		peers = append(peers, fmt.Sprintf("etcd%d=http://%s", i, net.JoinHostPort(n.Host, strconv.Itoa(etcdPeerPort))))
	}
	err = d.LaunchAll(ctx, d.etcd, func(i int, n *Node) []string {
		return []string{"coordinator",
			"--name", "etcd" + strconv.Itoa(i),
			"--data", "/data/etcd",
			"--listen", "http://0.0.0.0:" + strconv.Itoa(etcdPort),
			"--advertise", "http://" + n.Addr(),
			"--peer-listen", "http://0.0.0.0:" + strconv.Itoa(etcdPeerPort),
			"--peer-advertise", "http://" + net.JoinHostPort(n.Host, strconv.Itoa(etcdPeerPort)),
			"--initial-cluster", strings.Join(peers, ","),
			"--unsafe-no-fsync", // a scratch cluster: fsync cost is not what is measured
			"--log-level", "warn",
		}
	})
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   runnerAddrs(d.etcd),
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return fmt.Errorf("%s: etcd client: %w", d.rt, err)
	}
	d.etcdCli = cli
	d.metrics = newEtcdMetrics(d.etcd)
	return poll(ctx, 100*time.Millisecond, func() error {
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Get(gctx, etcdPrefix+"/cluster-id")
		return err
	})
}

// waitRegistered waits until count brokers hold a registration in etcd, so
// that topic placement sees them all.
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

// watchBrokers records every broker registration that disappears from
// etcd (its lease expired): the coordinator's detection of a dead broker.
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
				id, err := strconv.Atoi(strings.TrimPrefix(string(ev.Kv.Key), prefix))
				if err == nil {
					d.departed(int32(id), time.Now())
				}
			}
		}
		stop()
	}
}

// Active resolves the coordinator's "controller": the broker the brokers
// name as controller in Metadata.
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

// ControlPlane returns etcd's own server-side counters, scraped from every
// member the runner can reach: gRPC messages received by method, and all
// client bytes. Unlike the in-process figures (the brokers' handles count
// their requests) they include the runner's own watch, a handful of
// requests.
func (d *coordinatorDeployment) ControlPlane() []analysis.CPSample {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.sample(d.Cluster)
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

// etcdMetrics turns the members' Prometheus counters into cumulative
// samples that survive member restarts: a counter that went down was reset,
// and its last value is carried over.
type etcdMetrics struct {
	members []*Node
	http    *http.Client

	mu   sync.Mutex
	last []map[string]int64 // per member: kind -> last value read
	base []map[string]int64 // per member: kind -> sum of values before resets
}

func newEtcdMetrics(members []*Node) *etcdMetrics {
	m := &etcdMetrics{members: members, http: &http.Client{Timeout: 500 * time.Millisecond}}
	for range members {
		m.last = append(m.last, map[string]int64{})
		m.base = append(m.base, map[string]int64{})
	}
	return m
}

// Kinds of etcd samples: requests per gRPC method carry no bytes, and one
// "etcd/bytes" kind carries every client byte, so sums over kinds are right.
const etcdBytesKind = "etcd/bytes"

func (m *etcdMetrics) sample(c *Cluster) []analysis.CPSample {
	now := time.Now()
	for i, n := range m.members {
		if !c.reachable(n.Name) {
			continue
		}
		cur, err := m.scrape(n)
		if err != nil {
			continue
		}
		m.mu.Lock()
		for k, v := range cur {
			if v < m.last[i][k] {
				m.base[i][k] += m.last[i][k]
			}
			m.last[i][k] = v
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	total := map[string]int64{}
	for i := range m.members {
		for k, v := range m.last[i] {
			total[k] += v + m.base[i][k]
		}
		for k, v := range m.base[i] {
			if _, ok := m.last[i][k]; !ok {
				total[k] += v
			}
		}
	}
	kinds := make([]string, 0, len(total))
	for k := range total {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make([]analysis.CPSample, 0, len(kinds))
	for _, k := range kinds {
		s := analysis.CPSample{At: now, Kind: k}
		if k == etcdBytesKind {
			s.Bytes = total[k]
		} else {
			s.Requests = total[k]
		}
		out = append(out, s)
	}
	return out
}

// scrape reads one member's /metrics: grpc_server_msg_received_total by
// method, and the client gRPC bytes both ways.
func (m *etcdMetrics) scrape(n *Node) (map[string]int64, error) {
	resp, err := m.http.Get("http://" + n.addr() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", n.Name, resp.Status)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, labels, value, ok := parseMetric(line)
		if !ok {
			continue
		}
		switch name {
		case "grpc_server_msg_received_total":
			if method := label(labels, "grpc_method"); method != "" && value > 0 {
				out["etcd/"+method] += value
			}
		case "etcd_network_client_grpc_received_bytes_total", "etcd_network_client_grpc_sent_bytes_total":
			if value > 0 {
				out[etcdBytesKind] += value
			}
		}
	}
	return out, sc.Err()
}

// parseMetric splits a Prometheus text line `name{labels} value`.
func parseMetric(line string) (name, labels string, value int64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", "", 0, false
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", "", 0, false
	}
	f, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", "", 0, false
	}
	head := line[:sp]
	if i := strings.IndexByte(head, '{'); i >= 0 {
		return head[:i], strings.TrimSuffix(head[i+1:], "}"), int64(f), true
	}
	return head, "", int64(f), true
}

// label returns one label's value from `a="x",b="y"`.
func label(labels, key string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
