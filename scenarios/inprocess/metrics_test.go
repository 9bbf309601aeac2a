package inprocess

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/gossip"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// startForMetrics starts one topology's in-process deployment with its
// topic on two brokers.
func startForMetrics(t *testing.T, topology string, start scenarios.Starter) (scenarios.Deployment, scenario.Spec) {
	t.Helper()
	return startForMetricsN(t, topology, start, 2)
}

// startForMetricsN starts a deployment of n brokers (replication n) and
// three controllers where the topology has them.
func startForMetricsN(t *testing.T, topology string, start scenarios.Starter, n int) (scenarios.Deployment, scenario.Spec) {
	t.Helper()
	return startWithTopic(t, start, fmt.Sprintf(`
name: metrics
topologies: [`+topology+`]
cluster: {brokers: %[1]d, nameservers: 1, controllers: 3, etcd: 1, timings: fast}
topic: {name: m, partitions: %[1]d, replication: %[1]d, min_insync: 1}`, n)+`
workload: {producers: 1, consumers: 1, message_size: 200B, rate: 200, acks: all, duration: 2s, warmup: 0s}
`)
}

// startWithTopic starts a scenario's in-process deployment with start and
// creates its topic; the deployment closes at the test's end.
func startWithTopic(t *testing.T, start scenarios.Starter, yaml string) (scenarios.Deployment, scenario.Spec) {
	t.Helper()
	spec, err := scenario.Parse(t.Name()+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dep, err := start(ctx, scenarios.Env{Spec: spec, Runtime: scenario.RuntimeInProcess, DataDir: t.TempDir(), Logger: testutil.Logger(t, 8)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dep.Close() })
	if err := dep.CreateTopic(ctx, spec.Topic); err != nil {
		t.Fatal(err)
	}
	return dep, spec
}

// produce sends the spec's workload with the deployment's own Kafka client
// and returns how many sends were acknowledged.
func produce(t *testing.T, dep scenarios.Deployment, spec scenario.Spec) int {
	t.Helper()
	w := spec.Workload
	p, err := dep.NewProducer(scenarios.ProducerConfig{ID: 0, Topic: spec.Topic.Name, Rate: w.Rates[0],
		Start: time.Now(), Duration: w.Duration, Workload: w, Timings: spec.Timings()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acked := 0
	sink := func(s history.Send) {
		if s.Outcome == history.Acked {
			acked++ // Run calls sink from one goroutine per producer
		}
	}
	if err := p.Run(ctx, sink); err != nil {
		t.Fatal(err)
	}
	return acked
}

// scrapeAll reads every node of the kind prefix ("broker", "nameserver").
func scrapeAll(t *testing.T, dep scenarios.Deployment, prefix string) map[string]metrics.Samples {
	t.Helper()
	targets := dep.(scenarios.MetricsTargets).MetricsTargets()
	out := map[string]metrics.Samples{}
	for node, url := range targets {
		if !strings.HasPrefix(node, prefix) {
			continue
		}
		ss, err := metrics.Scrape(context.Background(), nil, url)
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		out[node] = ss
	}
	if len(out) == 0 {
		t.Fatalf("no %s metrics endpoint in %v", prefix, targets)
	}
	return out
}

// underTraffic scrapes the nodes of the kinds prefixes and the
// control-plane cost, sends the spec's workload, and scrapes again; it
// checks that sends were acknowledged and that the cost read from the
// endpoints moved.
func underTraffic(t *testing.T, dep scenarios.Deployment, spec scenario.Spec, prefixes ...string) (before, after map[string]metrics.Samples, acked int) {
	t.Helper()
	scrape := func() map[string]metrics.Samples {
		out := map[string]metrics.Samples{}
		for _, p := range prefixes {
			maps.Copy(out, scrapeAll(t, dep, p))
		}
		return out
	}
	before = scrape()
	cpBefore := cpTotal(dep.ControlPlane())
	if acked = produce(t, dep, spec); acked == 0 {
		t.Fatal("nothing acknowledged")
	}
	after = scrape()
	if b, a := cpBefore, cpTotal(dep.ControlPlane()); a.Requests <= b.Requests || a.Bytes <= b.Bytes {
		t.Errorf("control-plane cost read from the endpoints did not move: %+v -> %+v", b, a)
	}
	return before, after, acked
}

// kill kills a node of the deployment.
func kill(t *testing.T, dep scenarios.Deployment, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dep.(interface {
		Kill(context.Context, string) error
	}).Kill(ctx, node); err != nil {
		t.Fatal(err)
	}
}

func sumOver(pages map[string]metrics.Samples, name string, match map[string]string) float64 {
	var t float64
	for _, ss := range pages {
		t += ss.Sum(name, match)
	}
	return t
}

// checkBrokers asserts the broker series moved with the traffic between
// two scrapes.
func checkBrokers(t *testing.T, before, after map[string]metrics.Samples, acked int, partitions int) {
	t.Helper()
	produce := map[string]string{"api": "Produce"}
	moved := []struct {
		name  string
		match map[string]string
	}{
		{"brokerlab_broker_requests_total", produce},
		{"brokerlab_broker_received_bytes_total", nil},
		{"brokerlab_broker_sent_bytes_total", nil},
		{"brokerlab_broker_produce_record_bytes_total", nil},
		{"brokerlab_broker_produce_duration_seconds_count", nil},
		{"brokerlab_broker_fetch_duration_seconds_count", map[string]string{"fetcher": "follower"}},
		{"brokerlab_broker_replication_sent_bytes_total", map[string]string{"role": "leader"}},
	}
	for _, m := range moved {
		b, a := sumOver(before, m.name, m.match), sumOver(after, m.name, m.match)
		if a <= b {
			t.Errorf("%s%v did not move with %d acked sends: %v -> %v", m.name, m.match, acked, b, a)
		}
	}
	if led := sumOver(after, "brokerlab_broker_partitions_led", nil); int(led) != partitions {
		t.Errorf("brokers lead %v partitions, want %d", led, partitions)
	}
	// Every acknowledged message is in some leader's log end offset.
	if leo := sumOver(after, "brokerlab_broker_log_end_offset", map[string]string{"role": "leader"}); int(leo) < acked {
		t.Errorf("leaders' log end offsets sum to %v, below %d acked", leo, acked)
	}
}

// TestMetricsCoordinator scrapes every broker of a coordinator deployment
// over HTTP before and after real Kafka client traffic.
func TestMetricsCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and a cluster")
	}
	dep, spec := startForMetrics(t, "coordinator", startCoordinator)
	before, after, acked := underTraffic(t, dep, spec, "broker")
	checkBrokers(t, before, after, acked, spec.Topic.Partitions)
	// The coordinator handle's etcd traffic: keep-alives flow all along.
	ka := map[string]string{"kind": "lease-keepalive"}
	if b, a := sumOver(before, "brokerlab_coordinator_etcd_requests_total", ka), sumOver(after, "brokerlab_coordinator_etcd_requests_total", ka); a <= b {
		t.Errorf("etcd keep-alives did not move: %v -> %v", b, a)
	}
}

// TestMetricsNameServer scrapes the brokers and the name server of a
// nameserver deployment before and after real Kafka client traffic.
func TestMetricsNameServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dep, spec := startForMetrics(t, "nameserver", startNameServer)
	before, after, acked := underTraffic(t, dep, spec, "broker", "nameserver")
	checkBrokers(t, before, after, acked, spec.Topic.Partitions)
	for _, m := range []struct {
		name  string
		match map[string]string
	}{
		{"brokerlab_nameserver_registrations_total", nil},
		{"brokerlab_nameserver_registration_bytes_total", nil},
		{"brokerlab_nameserver_queries_total", map[string]string{"query": "route"}},
		{"brokerlab_nameserver_bytes_total", nil},
	} {
		if b, a := sumOver(before, m.name, m.match), sumOver(after, m.name, m.match); a <= b {
			t.Errorf("%s%v did not move: %v -> %v", m.name, m.match, b, a)
		}
	}
	if n := sumOver(after, "brokerlab_nameserver_brokers", nil); n != 2 {
		t.Errorf("name server has %v brokers registered, want 2", n)
	}
}

func cpTotal(ss []analysis.CPSample) analysis.CPSample {
	var t analysis.CPSample
	for _, s := range ss {
		t.Requests += s.Requests
		t.Bytes += s.Bytes
	}
	t.Kind = fmt.Sprint(len(ss), " kinds")
	return t
}

// scrapeUp reads the named nodes' endpoints, skipping those that do not
// answer (killed).
func scrapeUp(dep scenarios.Deployment, names ...string) map[string]metrics.Samples {
	targets := dep.(scenarios.MetricsTargets).MetricsTargets()
	out := map[string]metrics.Samples{}
	for _, n := range names {
		if ss, err := metrics.Scrape(context.Background(), nil, targets[n]); err == nil {
			out[n] = ss
		}
	}
	return out
}

// moved asserts that each named series' sum grew between two scrapes.
func moved(t *testing.T, before, after map[string]metrics.Samples, names ...string) {
	t.Helper()
	for _, n := range names {
		if b, a := sumOver(before, n, nil), sumOver(after, n, nil); a <= b {
			t.Errorf("%s did not move: %v -> %v", n, b, a)
		}
	}
}

// TestMetricsNameServerController scrapes the controllers of a
// nameserver-controller deployment over HTTP: heartbeats and broker bytes
// move with time, and killing the master broker shows as a master switch
// and a SyncStateSet change on every controller and as an election on the
// leader; the runner's cost moves with them.
func TestMetricsNameServerController(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dep, spec := startForMetrics(t, "nameserver-controller", func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startNameServers(ctx, env, true)
	})
	ctrls := []string{"controller 0", "controller 1", "controller 2"}
	before, after, _ := underTraffic(t, dep, spec, "controller")
	moved(t, before, after, "brokerlab_controller_heartbeats_total", "brokerlab_controller_requests_total",
		"brokerlab_controller_broker_bytes_total", "brokerlab_controller_raft_bytes_total")
	if n := sumOver(after, "brokerlab_controller_is_leader", nil); n != 1 {
		t.Errorf("%v controllers say they lead, want 1", n)
	}
	if n := sumOver(after, "brokerlab_controller_brokers_active", nil); n != 2 {
		t.Errorf("leader holds %v brokers active, want 2", n)
	}

	// The master (broker 0, id 0 of group-0) dies: the controllers switch.
	kill(t, dep, "broker 0")
	testutil.Eventually(t, 30*time.Second, func() error {
		now := scrapeUp(dep, ctrls...)
		for _, c := range ctrls {
			if a, b := now[c].Sum("brokerlab_controller_master_switches_total", nil), after[c].Sum("brokerlab_controller_master_switches_total", nil); a <= b {
				return fmt.Errorf("%s: master switches %v -> %v", c, b, a)
			}
			if a, b := now[c].Sum("brokerlab_controller_sync_state_set_changes_total", nil), after[c].Sum("brokerlab_controller_sync_state_set_changes_total", nil); a <= b {
				return fmt.Errorf("%s: SyncStateSet changes %v -> %v", c, b, a)
			}
		}
		if a, b := sumOver(now, "brokerlab_controller_master_elections_total", nil), sumOver(after, "brokerlab_controller_master_elections_total", nil); a <= b {
			return fmt.Errorf("master elections %v -> %v", b, a)
		}
		return nil
	})
}

// TestMetricsGossip scrapes every broker of a gossip deployment over HTTP:
// memberlist traffic moves with time, every member sees the others alive;
// killing one broker shows as a dead member, a FAIL, a won election, a
// failover and a later config epoch on the survivors.
func TestMetricsGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dep, spec := startForMetricsN(t, "gossip", func(ctx context.Context, env scenarios.Env) (scenarios.Deployment, error) {
		return startGossip(ctx, env, gossip.TopologyName, gossip.PlacementSlots)
	}, 3)
	before, after, acked := underTraffic(t, dep, spec, "broker")
	checkBrokers(t, before, after, acked, spec.Topic.Partitions)
	moved(t, before, after, "brokerlab_gossip_memberlist_packets_total", "brokerlab_gossip_memberlist_packet_bytes_total")
	for node, ss := range after {
		if n := ss.Sum("brokerlab_gossip_members", map[string]string{"state": "alive"}); n != 3 {
			t.Errorf("%s sees %v members alive, want 3", node, n)
		}
	}
	if sumOver(after, "brokerlab_gossip_messages_received_total", nil) == 0 || sumOver(after, "brokerlab_gossip_state_updates_total", nil) == 0 {
		t.Errorf("no plane message received or state update applied after the topic's creation")
	}

	kill(t, dep, "broker 0")
	rest := []string{"broker 1", "broker 2"}
	testutil.Eventually(t, 30*time.Second, func() error {
		now := scrapeUp(dep, rest...)
		if len(now) != len(rest) {
			return fmt.Errorf("scraped %d of %d survivors", len(now), len(rest))
		}
		for _, n := range rest {
			if d := now[n].Sum("brokerlab_gossip_members", map[string]string{"state": "dead"}); d != 1 {
				return fmt.Errorf("%s: %v dead members, want 1", n, d)
			}
			if f := now[n].Sum("brokerlab_gossip_failed_nodes", nil); f != 1 {
				return fmt.Errorf("%s: %v failed nodes, want 1", n, f)
			}
		}
		if w := sumOver(now, "brokerlab_gossip_elections_total", map[string]string{"result": "won"}); w < 1 {
			return fmt.Errorf("no election won yet")
		}
		if f := sumOver(now, "brokerlab_gossip_failovers_total", nil); f < 1 {
			return fmt.Errorf("no failover yet")
		}
		for _, n := range rest {
			if a, b := now[n].Sum("brokerlab_gossip_config_epoch", nil), after[n].Sum("brokerlab_gossip_config_epoch", nil); a <= b {
				return fmt.Errorf("%s: config epoch %v -> %v", n, b, a)
			}
		}
		return nil
	})
}
