package inprocess

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// startForMetrics starts one topology's in-process deployment with its topic.
func startForMetrics(t *testing.T, topology string, start scenarios.Starter) (scenarios.Deployment, scenario.Spec) {
	t.Helper()
	spec, err := scenario.Parse(t.Name()+".yaml", []byte(`
name: metrics
topologies: [`+topology+`]
cluster: {brokers: 2, nameservers: 1, etcd: 1, timings: fast}
topic: {name: m, partitions: 2, replication: 2, min_insync: 1}
workload: {producers: 1, consumers: 1, message_size: 200B, rate: 200, acks: all, duration: 2s, warmup: 0s}
`))
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
	before := scrapeAll(t, dep, "broker")
	cpBefore := cpTotal(dep.ControlPlane())
	acked := produce(t, dep, spec)
	if acked == 0 {
		t.Fatal("nothing acknowledged")
	}
	after := scrapeAll(t, dep, "broker")
	checkBrokers(t, before, after, acked, spec.Topic.Partitions)
	// The coordinator handle's etcd traffic: keep-alives flow all along.
	ka := map[string]string{"kind": "lease-keepalive"}
	if b, a := sumOver(before, "brokerlab_coordinator_etcd_requests_total", ka), sumOver(after, "brokerlab_coordinator_etcd_requests_total", ka); a <= b {
		t.Errorf("etcd keep-alives did not move: %v -> %v", b, a)
	}
	if b, a := cpBefore, cpTotal(dep.ControlPlane()); a.Requests <= b.Requests || a.Bytes <= b.Bytes {
		t.Errorf("control-plane cost read from the endpoints did not move: %+v -> %+v", b, a)
	}
}

// TestMetricsNameServer scrapes the brokers and the name server of a
// nameserver deployment before and after real Kafka client traffic.
func TestMetricsNameServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	dep, spec := startForMetrics(t, "nameserver", startNameServer)
	before := scrapeAll(t, dep, "broker")
	nsBefore := scrapeAll(t, dep, "nameserver")
	cpBefore := cpTotal(dep.ControlPlane())
	acked := produce(t, dep, spec)
	if acked == 0 {
		t.Fatal("nothing acknowledged")
	}
	after := scrapeAll(t, dep, "broker")
	nsAfter := scrapeAll(t, dep, "nameserver")
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
		if b, a := sumOver(nsBefore, m.name, m.match), sumOver(nsAfter, m.name, m.match); a <= b {
			t.Errorf("%s%v did not move: %v -> %v", m.name, m.match, b, a)
		}
	}
	if n := sumOver(nsAfter, "brokerlab_nameserver_brokers", nil); n != 2 {
		t.Errorf("name server has %v brokers registered, want 2", n)
	}
	if b, a := cpBefore, cpTotal(dep.ControlPlane()); a.Requests <= b.Requests || a.Bytes <= b.Bytes {
		t.Errorf("control-plane cost read from the endpoints did not move: %+v -> %+v", b, a)
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
