package scenarios

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

// MetricsScraper reads control-plane cost from the nodes' Prometheus
// endpoints, the same way in every runtime. Counters of a node that
// restarted (and so reset) are carried over, so samples never go down.
type MetricsScraper struct {
	extract func(metrics.Samples) []analysis.CPSample
	client  *http.Client
	cum     *metrics.Cumulative
}

// NewMetricsScraper returns a scraper that turns one node's page into
// per-kind counters with extract (CoordinatorCost, NameServerCost, or a new
// control plane's own).
func NewMetricsScraper(extract func(metrics.Samples) []analysis.CPSample) *MetricsScraper {
	return &MetricsScraper{extract: extract, client: &http.Client{Timeout: time.Second}, cum: metrics.NewCumulative()}
}

// Sample scrapes every target (node name -> metrics URL) in parallel and
// returns the cumulative samples by kind. An unreachable target (a killed
// node) keeps the values last read from it.
func (m *MetricsScraper) Sample(ctx context.Context, targets map[string]string) []analysis.CPSample {
	var wg sync.WaitGroup
	for node, url := range targets {
		wg.Go(func() {
			ss, err := metrics.Scrape(ctx, m.client, url)
			if err != nil {
				return
			}
			vals := map[string]float64{}
			for _, s := range m.extract(ss) {
				vals[metrics.Key(s.Kind, "requests")] += float64(s.Requests)
				vals[metrics.Key(s.Kind, "bytes")] += float64(s.Bytes)
			}
			m.cum.Observe(node, vals)
		})
	}
	wg.Wait()
	now := time.Now()
	byKind := map[string]*analysis.CPSample{}
	for k, v := range m.cum.Totals() {
		kind, field := splitKey(k)
		s := byKind[kind]
		if s == nil {
			s = &analysis.CPSample{At: now, Kind: kind}
			byKind[kind] = s
		}
		if field == "requests" {
			s.Requests = int64(v)
		} else {
			s.Bytes = int64(v)
		}
	}
	out := make([]analysis.CPSample, 0, len(byKind))
	for _, s := range byKind {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

func splitKey(k string) (kind, field string) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// CoordinatorCost reads a broker's page: the etcd traffic of its
// coordinator handle, one kind per request kind ("etcd/put", ...), bytes
// both ways.
func CoordinatorCost(ss metrics.Samples) []analysis.CPSample {
	byKind := map[string]*analysis.CPSample{}
	get := func(kind string) *analysis.CPSample {
		if byKind[kind] == nil {
			byKind[kind] = &analysis.CPSample{Kind: "etcd/" + kind}
		}
		return byKind[kind]
	}
	for _, s := range ss {
		switch s.Name {
		case "brokerlab_coordinator_etcd_requests_total":
			get(s.Label("kind")).Requests += int64(s.Value)
		case "brokerlab_coordinator_etcd_sent_bytes_total", "brokerlab_coordinator_etcd_received_bytes_total":
			get(s.Label("kind")).Bytes += int64(s.Value)
		}
	}
	out := make([]analysis.CPSample, 0, len(byKind))
	for _, s := range byKind {
		out = append(out, *s)
	}
	return out
}

// NameServerCost reads a name server's page: registrations (requests and
// both directions' bytes) and route pulls (route and snapshot queries,
// answer bytes). Cluster-info queries are left out: only the runner's own
// detection probes send them, and counting them would bill the observer to
// the design.
func NameServerCost(ss metrics.Samples) []analysis.CPSample {
	return []analysis.CPSample{
		{Kind: "nameserver/register",
			Requests: int64(ss.Sum("brokerlab_nameserver_registrations_total", nil)),
			Bytes:    int64(ss.Sum("brokerlab_nameserver_registration_bytes_total", nil))},
		{Kind: "nameserver/route",
			Requests: int64(ss.Sum("brokerlab_nameserver_queries_total", map[string]string{"query": "route"}) +
				ss.Sum("brokerlab_nameserver_queries_total", map[string]string{"query": "snapshot"})),
			Bytes: int64(ss.Sum("brokerlab_nameserver_query_sent_bytes_total", map[string]string{"query": "route"}))},
	}
}

// ControllerCost reads a controller's page (nameserver-controller): the
// brokers' requests to it and both directions' bytes of their
// connections. Raft traffic among the controllers is left out, as the
// coordinator's figures leave out etcd's own replication.
func ControllerCost(ss metrics.Samples) []analysis.CPSample {
	return []analysis.CPSample{{Kind: "controller/broker",
		Requests: int64(ss.Sum("brokerlab_controller_requests_total", nil)),
		Bytes:    int64(ss.Sum("brokerlab_controller_broker_bytes_total", nil))}}
}

// GossipCost reads a gossip broker's page: everything its memberlist put
// on the wire (probes and acks included, as the other control planes'
// heartbeats and keep-alives are), UDP packets and TCP streams apart.
// Only the sending side counts, so a sum over the members counts every
// packet and stream byte once.
func GossipCost(ss metrics.Samples) []analysis.CPSample {
	sent := map[string]string{"direction": "sent"}
	return []analysis.CPSample{
		{Kind: "gossip/packets",
			Requests: int64(ss.Sum("brokerlab_gossip_memberlist_packets_total", sent)),
			Bytes:    int64(ss.Sum("brokerlab_gossip_memberlist_packet_bytes_total", sent))},
		{Kind: "gossip/streams",
			Requests: int64(ss.Sum("brokerlab_gossip_memberlist_streams_total", sent)),
			Bytes:    int64(ss.Sum("brokerlab_gossip_memberlist_stream_bytes_total", sent))},
	}
}

// MetricsTargets is implemented by deployments whose nodes serve Prometheus
// metrics: it maps each node ("broker 0", "nameserver 1", "etcd 0") to its
// metrics URL, up or not.
type MetricsTargets interface {
	MetricsTargets() map[string]string
}
