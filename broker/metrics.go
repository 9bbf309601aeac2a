package broker

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The broker's Prometheus series. The request path only adds to atomic
// counters and observes two histograms; everything else (partitions led,
// under-replicated partitions, log end offsets) is read from the replicas
// when scraped.

const maxErrorCode = 128 // Kafka error codes used today are below this

// requestCounters are per-API request counts and per-API, per-error-code
// counts of the error codes the broker answered (one per partition or
// topic carrying an error, as Kafka's ErrorsPerSec counts them).
type requestCounters struct {
	requests   [kmsg.MaxKey + 1]atomic.Int64
	errors     [kmsg.MaxKey + 1][maxErrorCode]atomic.Int64 // index 0 holds codes outside 1..127
	isrShrinks atomic.Int64
	isrExpands atomic.Int64
}

func (c *requestCounters) countRequest(key int16) {
	if key >= 0 && int(key) <= kmsg.MaxKey {
		c.requests[key].Add(1)
	}
}

func (c *requestCounters) countError(key, code int16) {
	if code == 0 || key < 0 || int(key) > kmsg.MaxKey {
		return
	}
	if code < 0 || code >= maxErrorCode {
		code = 0
	}
	c.errors[key][code].Add(1)
}

// countErrors adds the error codes of a response to the counters.
func (c *requestCounters) countErrors(key int16, r kmsg.Response) {
	count := func(code int16) { c.countError(key, code) }
	switch r := r.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			eachCode(t.Partitions, func(p *kmsg.ProduceResponseTopicPartition) int16 { return p.ErrorCode }, count)
		}
	case *kmsg.FetchResponse:
		count(r.ErrorCode)
		for _, t := range r.Topics {
			eachCode(t.Partitions, func(p *kmsg.FetchResponseTopicPartition) int16 { return p.ErrorCode }, count)
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			eachCode(t.Partitions, func(p *kmsg.ListOffsetsResponseTopicPartition) int16 { return p.ErrorCode }, count)
		}
	case *kmsg.OffsetForLeaderEpochResponse:
		for _, t := range r.Topics {
			eachCode(t.Partitions, func(p *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 { return p.ErrorCode }, count)
		}
	case *kmsg.MetadataResponse:
		eachCode(r.Topics, func(t *kmsg.MetadataResponseTopic) int16 { return t.ErrorCode }, count)
	case *kmsg.CreateTopicsResponse:
		eachCode(r.Topics, func(t *kmsg.CreateTopicsResponseTopic) int16 { return t.ErrorCode }, count)
	case *kmsg.DeleteTopicsResponse:
		eachCode(r.Topics, func(t *kmsg.DeleteTopicsResponseTopic) int16 { return t.ErrorCode }, count)
	case *kmsg.ApiVersionsResponse:
		count(r.ErrorCode)
	}
}

// eachCode passes the error code of every element of es to count.
func eachCode[E any](es []E, code func(*E) int16, count func(int16)) {
	for i := range es {
		count(code(&es[i]))
	}
}

// latencyBuckets span 100 µs to about 13 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 18)

// latencies are the produce and fetch duration histograms, created per
// broker (never registered globally).
type latencies struct {
	produce       prometheus.Histogram
	fetchConsumer prometheus.Observer
	fetchFollower prometheus.Observer
	fetch         *prometheus.HistogramVec
}

func newLatencies() latencies {
	produce := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "brokerlab_broker_produce_duration_seconds",
		Help:    "Time from reading a Produce request to its response being ready (acks=all includes the replication wait).",
		Buckets: latencyBuckets,
	})
	fetch := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "brokerlab_broker_fetch_duration_seconds",
		Help:    "Time from reading a Fetch request to its response being ready, long-poll wait included.",
		Buckets: latencyBuckets,
	}, []string{"fetcher"})
	return latencies{
		produce:       produce,
		fetch:         fetch,
		fetchConsumer: fetch.WithLabelValues("consumer"),
		fetchFollower: fetch.WithLabelValues("follower"),
	}
}

// observe records a request's duration when it is a produce or a fetch.
func (l *latencies) observe(r kmsg.Request, d time.Duration) {
	switch r := r.(type) {
	case *kmsg.ProduceRequest:
		l.produce.Observe(d.Seconds())
	case *kmsg.FetchRequest:
		if r.ReplicaID >= 0 {
			l.fetchFollower.Observe(d.Seconds())
		} else {
			l.fetchConsumer.Observe(d.Seconds())
		}
	}
}

// Collector returns the broker's Prometheus collector. Register it in the
// node's own registry (see internal/metrics); it reads the broker's
// counters when scraped.
func (b *Broker) Collector() prometheus.Collector { return (*brokerCollector)(b) }

type brokerCollector Broker

var (
	descRequests = prometheus.NewDesc("brokerlab_broker_requests_total",
		"Kafka protocol requests handled, by API.", []string{"api"}, nil)
	descErrors = prometheus.NewDesc("brokerlab_broker_response_errors_total",
		"Error codes answered, one per partition or topic that carried one, by API and Kafka error name.", []string{"api", "error"}, nil)
	descBytesIn = prometheus.NewDesc("brokerlab_broker_received_bytes_total",
		"Request bytes read from client and follower connections, framing included.", nil, nil)
	descBytesOut = prometheus.NewDesc("brokerlab_broker_sent_bytes_total",
		"Response bytes written to client and follower connections.", nil, nil)
	descProduceBytes = prometheus.NewDesc("brokerlab_broker_produce_record_bytes_total",
		"Record batch bytes accepted by Produce.", nil, nil)
	descReplicaBytes = prometheus.NewDesc("brokerlab_broker_replication_sent_bytes_total",
		"Record bytes served to followers, as leader or as the middle of a replication chain.", []string{"role"}, nil)
	descInFlight = prometheus.NewDesc("brokerlab_broker_requests_in_flight",
		"Requests being handled now.", nil, nil)
	descLed = prometheus.NewDesc("brokerlab_broker_partitions_led",
		"Partitions this broker leads.", nil, nil)
	descReplicas = prometheus.NewDesc("brokerlab_broker_replicas",
		"Partition replicas on this broker, by role.", []string{"role"}, nil)
	descUnderReplicated = prometheus.NewDesc("brokerlab_broker_under_replicated_partitions",
		"Partitions this broker leads whose ISR is smaller than their replica set.", nil, nil)
	descISRShrinks = prometheus.NewDesc("brokerlab_broker_isr_shrinks_total",
		"ISR shrinks this broker made as a leader and the control plane accepted.", nil, nil)
	descISRExpands = prometheus.NewDesc("brokerlab_broker_isr_expands_total",
		"ISR expands this broker made as a leader and the control plane accepted.", nil, nil)
	descLogEnd = prometheus.NewDesc("brokerlab_broker_log_end_offset",
		"Log end offset of each local replica.", []string{"topic", "partition", "role"}, nil)
	descHighWater = prometheus.NewDesc("brokerlab_broker_high_watermark",
		"High watermark of each local replica.", []string{"topic", "partition", "role"}, nil)
)

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descBytesIn, descBytesOut, descProduceBytes,
		descReplicaBytes, descInFlight, descLed, descReplicas, descUnderReplicated, descISRShrinks, descISRExpands,
		descLogEnd, descHighWater} {
		ch <- d
	}
	c.lat.produce.Describe(ch)
	c.lat.fetch.Describe(ch)
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	b := (*Broker)(c)
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	rc := &b.reqs
	for key := range rc.requests {
		if !servedAPI(int16(key)) {
			continue
		}
		api := kmsg.NameForKey(int16(key))
		counter(descRequests, rc.requests[key].Load(), api)
		for code := range rc.errors[key] {
			if n := rc.errors[key][code].Load(); n > 0 {
				counter(descErrors, n, api, errorName(int16(code)))
			}
		}
	}
	st := b.Stats()
	counter(descBytesIn, st.BytesIn)
	counter(descBytesOut, st.BytesOut)
	counter(descProduceBytes, st.ProduceBytes)
	counter(descReplicaBytes, st.ReplicaBytesOut, "leader")
	counter(descReplicaBytes, st.ChainBytesOut, "chain")
	gauge(descInFlight, float64(b.stats.inFlight.Load()))
	counter(descISRShrinks, rc.isrShrinks.Load())
	counter(descISRExpands, rc.isrExpands.Load())

	roles := map[string]int{"leader": 0, "follower": 0, "none": 0}
	led, under := 0, 0
	for _, p := range b.localPartitions() {
		s, replicas := p.metricsStatus()
		roles[s.Role]++
		if s.Role == "leader" {
			led++
			if len(s.ISR) < replicas {
				under++
			}
		}
		part := strconv.Itoa(int(s.Partition))
		gauge(descLogEnd, float64(s.LogEnd), s.Topic, part, s.Role)
		gauge(descHighWater, float64(s.HighWater), s.Topic, part, s.Role)
	}
	gauge(descLed, float64(led))
	gauge(descUnderReplicated, float64(under))
	for r, n := range roles {
		gauge(descReplicas, float64(n), r)
	}
	c.lat.produce.Collect(ch)
	c.lat.fetch.Collect(ch)
}

// servedAPI reports whether the broker answers this API key.
func servedAPI(key int16) bool {
	_, ok := apiVersions[key]
	return ok
}

// errorName is Kafka's name of an error code; code 0 stands for any code
// outside the counted range.
func errorName(code int16) string {
	if code == 0 {
		return "OTHER"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return "CODE_" + strconv.Itoa(int(code))
}
