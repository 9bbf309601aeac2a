package nameserver

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the name server's Prometheus collector. Register it in
// the node's own registry (see internal/metrics); it reads Stats when
// scraped, so serving requests costs nothing more than today's counters.
func (s *Server) Collector() prometheus.Collector { return serverCollector{s} }

type serverCollector struct{ s *Server }

var (
	descRegistrations = prometheus.NewDesc("brokerlab_nameserver_registrations_total",
		"Broker registration (heartbeat) requests served.", nil, nil)
	descRegistrationBytes = prometheus.NewDesc("brokerlab_nameserver_registration_bytes_total",
		"Bytes of registration frames, by direction (received: requests, sent: replies).", []string{"direction"}, nil)
	descQueries = prometheus.NewDesc("brokerlab_nameserver_queries_total",
		"Queries answered, by kind: route (client route pulls), snapshot (broker view pulls), cluster-info (monitoring).", []string{"query"}, nil)
	descSnapshotsUnchanged = prometheus.NewDesc("brokerlab_nameserver_snapshots_unchanged_total",
		"Snapshot queries answered with \"nothing changed\".", nil, nil)
	descQueryBytes = prometheus.NewDesc("brokerlab_nameserver_query_sent_bytes_total",
		"Bytes of query answers, by kind: route (route and snapshot answers) and cluster-info.", []string{"query"}, nil)
	descNSBytes = prometheus.NewDesc("brokerlab_nameserver_bytes_total",
		"All frame bytes, by direction.", []string{"direction"}, nil)
	descConnections = prometheus.NewDesc("brokerlab_nameserver_connections",
		"Connections open now.", nil, nil)
	descBrokers = prometheus.NewDesc("brokerlab_nameserver_brokers",
		"Brokers registered now.", nil, nil)
	descRemovals = prometheus.NewDesc("brokerlab_nameserver_broker_removals_total",
		"Brokers removed, by reason: expired (silent past the expiry), dropped (connection closed), unregistered.", []string{"reason"}, nil)
)

func (c serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRegistrations, descRegistrationBytes, descQueries, descSnapshotsUnchanged,
		descQueryBytes, descNSBytes, descConnections, descBrokers, descRemovals} {
		ch <- d
	}
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRegistrations, st.RegisterRequests)
	counter(descRegistrationBytes, st.RegisterBytesIn, "received")
	counter(descRegistrationBytes, st.RegisterBytesOut, "sent")
	counter(descQueries, st.RouteQueries, "route")
	counter(descQueries, st.SnapshotQueries, "snapshot")
	counter(descQueries, st.ClusterInfoQueries, "cluster-info")
	counter(descSnapshotsUnchanged, st.SnapshotsUnchanged)
	counter(descQueryBytes, st.QueryBytesOut-st.ClusterInfoBytesOut, "route")
	counter(descQueryBytes, st.ClusterInfoBytesOut, "cluster-info")
	counter(descNSBytes, st.BytesIn, "received")
	counter(descNSBytes, st.BytesOut, "sent")
	counter(descRemovals, st.Expired, "expired")
	counter(descRemovals, st.Dropped, "dropped")
	counter(descRemovals, st.Unregistered, "unregistered")
	ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(st.Connections))
	ch <- prometheus.MustNewConstMetric(descBrokers, prometheus.GaugeValue, float64(st.Brokers))
}
