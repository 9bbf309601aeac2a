package coordinator

import (
	"context"
	"maps"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/stats"
)

// Kinds of etcd traffic counted by Stats.ByKind.
const (
	KindKeepAlive   = "lease-keepalive" // LeaseKeepAlive stream messages
	KindLeaseGrant  = "lease-grant"
	KindLeaseRevoke = "lease-revoke"
	KindLeaseTTL    = "lease-ttl" // LeaseTimeToLive
	KindWatch       = "watch"     // Watch stream: create/cancel requests, responses with events
	KindGet         = "get"       // Range
	KindPut         = "put"
	KindDelete      = "delete" // DeleteRange
	KindTxn         = "txn"
	KindOther       = "other" // cluster, maintenance, auth
)

var kinds = []string{KindKeepAlive, KindLeaseGrant, KindLeaseRevoke, KindLeaseTTL, KindWatch,
	KindGet, KindPut, KindDelete, KindTxn, KindOther}

// kindOf maps a gRPC method of the etcd API to its kind's index in kinds.
func kindOf(method string) int {
	name := method[strings.LastIndexByte(method, '/')+1:]
	switch name {
	case "LeaseKeepAlive":
		return 0
	case "LeaseGrant":
		return 1
	case "LeaseRevoke":
		return 2
	case "LeaseTimeToLive":
		return 3
	case "Watch":
		return 4
	case "Range":
		return 5
	case "Put":
		return 6
	case "DeleteRange":
		return 7
	case "Txn":
		return 8
	}
	return 9
}

// Counter is the traffic of one kind. Messages, not calls: a stream's every
// message counts, so Requests of KindKeepAlive is the number of keep-alives
// sent. Bytes are gRPC message sizes with gRPC framing, without HTTP/2 or TCP
// overhead.
type Counter struct {
	Requests      int64 `json:"requests" yaml:"requests"`   // messages sent to etcd
	Responses     int64 `json:"responses" yaml:"responses"` // messages received from etcd
	BytesSent     int64 `json:"bytes_sent" yaml:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received" yaml:"bytes_received"`
}

// Add returns the sum of c and o.
func (c Counter) Add(o Counter) Counter {
	return Counter{c.Requests + o.Requests, c.Responses + o.Responses,
		c.BytesSent + o.BytesSent, c.BytesReceived + o.BytesReceived}
}

// Sub returns c minus o, for rates between two samples.
func (c Counter) Sub(o Counter) Counter {
	return Counter{c.Requests - o.Requests, c.Responses - o.Responses,
		c.BytesSent - o.BytesSent, c.BytesReceived - o.BytesReceived}
}

// Stats is the etcd traffic of one handle (or a sum of handles) since it
// was created.
type Stats struct {
	ByKind map[string]Counter `json:"by_kind" yaml:"by_kind"`
	// WatchEvents is the number of key events received on watches.
	WatchEvents int64 `json:"watch_events" yaml:"watch_events"`
}

// Total sums all kinds.
func (s Stats) Total() Counter {
	var t Counter
	for _, c := range s.ByKind {
		t = t.Add(c)
	}
	return t
}

// Add returns the sum of s and o.
func (s Stats) Add(o Stats) Stats {
	out := Stats{ByKind: maps.Clone(s.ByKind), WatchEvents: s.WatchEvents + o.WatchEvents}
	if out.ByKind == nil {
		out.ByKind = make(map[string]Counter, len(o.ByKind))
	}
	for k, c := range o.ByKind {
		out.ByKind[k] = out.ByKind[k].Add(c)
	}
	return out
}

// Sub returns s minus o, for rates between two samples.
func (s Stats) Sub(o Stats) Stats {
	out := Stats{ByKind: maps.Clone(s.ByKind), WatchEvents: s.WatchEvents - o.WatchEvents}
	if out.ByKind == nil {
		out.ByKind = make(map[string]Counter, len(o.ByKind))
	}
	for k, c := range o.ByKind {
		out.ByKind[k] = out.ByKind[k].Sub(c)
	}
	return out
}

// SumStats adds up the traffic of several handles, e.g. every broker of a
// run. Nil handles are skipped.
func SumStats(planes ...*Plane) Stats {
	var s Stats
	for _, p := range planes {
		if p != nil {
			s = s.Add(p.Stats())
		}
	}
	return s
}

// counters is a grpc stats.Handler that counts the client's messages by kind.
type counters struct {
	c           [10]atomicCounter // indexed like kinds
	watchEvents atomic.Int64
}

type atomicCounter struct{ req, resp, sent, recv atomic.Int64 }

var _ stats.Handler = (*counters)(nil)

type kindKey struct{}

func (h *counters) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, kindKey{}, kindOf(info.FullMethodName))
}

func (h *counters) HandleRPC(ctx context.Context, s stats.RPCStats) {
	k, ok := ctx.Value(kindKey{}).(int)
	if !ok {
		return
	}
	c := &h.c[k]
	switch s := s.(type) {
	case *stats.OutPayload:
		c.req.Add(1)
		c.sent.Add(int64(s.WireLength))
	case *stats.InPayload:
		c.resp.Add(1)
		c.recv.Add(int64(s.WireLength))
	}
}

func (h *counters) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (h *counters) HandleConn(context.Context, stats.ConnStats)                       {}

func (h *counters) snapshot() Stats {
	s := Stats{ByKind: make(map[string]Counter, len(kinds)), WatchEvents: h.watchEvents.Load()}
	for i, k := range kinds {
		c := &h.c[i]
		s.ByKind[k] = Counter{c.req.Load(), c.resp.Load(), c.sent.Load(), c.recv.Load()}
	}
	return s
}

// Collector returns the plane's Prometheus collector: the etcd traffic of
// this handle (one broker's), as the handle counts it, by request kind.
// Register it in the broker node's own registry next to the broker's.
func (p *Plane) Collector() prometheus.Collector { return planeCollector{p} }

type planeCollector struct{ p *Plane }

var (
	descEtcdRequests = prometheus.NewDesc("brokerlab_coordinator_etcd_requests_total",
		"gRPC messages sent to etcd by this broker's control-plane handle, by kind (a stream's every message counts).", []string{"kind"}, nil)
	descEtcdResponses = prometheus.NewDesc("brokerlab_coordinator_etcd_responses_total",
		"gRPC messages received from etcd, by kind.", []string{"kind"}, nil)
	descEtcdSent = prometheus.NewDesc("brokerlab_coordinator_etcd_sent_bytes_total",
		"Bytes sent to etcd (gRPC messages with gRPC framing), by kind.", []string{"kind"}, nil)
	descEtcdReceived = prometheus.NewDesc("brokerlab_coordinator_etcd_received_bytes_total",
		"Bytes received from etcd (gRPC messages with gRPC framing), by kind.", []string{"kind"}, nil)
	descWatchEvents = prometheus.NewDesc("brokerlab_coordinator_watch_events_total",
		"Key events received on etcd watches.", nil, nil)
)

func (c planeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEtcdRequests, descEtcdResponses, descEtcdSent, descEtcdReceived, descWatchEvents} {
		ch <- d
	}
}

func (c planeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.p.Stats()
	for _, k := range kinds {
		v := st.ByKind[k]
		ch <- prometheus.MustNewConstMetric(descEtcdRequests, prometheus.CounterValue, float64(v.Requests), k)
		ch <- prometheus.MustNewConstMetric(descEtcdResponses, prometheus.CounterValue, float64(v.Responses), k)
		ch <- prometheus.MustNewConstMetric(descEtcdSent, prometheus.CounterValue, float64(v.BytesSent), k)
		ch <- prometheus.MustNewConstMetric(descEtcdReceived, prometheus.CounterValue, float64(v.BytesReceived), k)
	}
	ch <- prometheus.MustNewConstMetric(descWatchEvents, prometheus.CounterValue, float64(st.WatchEvents))
}
