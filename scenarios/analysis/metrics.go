package analysis

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// Run is everything the runner recorded for one topology (and one rate step
// of a sweep). It is the input of Analyze.
type Run struct {
	Topology scenario.Topology
	// TargetRate is the step's total rate in msgs/s; 0 is unbounded.
	TargetRate float64
	// Start is t=0 of the open-loop schedule: fault offsets count from it.
	Start time.Time
	// WarmupEnd is Start + warm-up; latency and rate figures start here.
	WarmupEnd time.Time
	// End is when producers stopped scheduling (Start + duration).
	End time.Time
	// DrainEnd is when consumers stopped; zero means the last event.
	DrainEnd time.Time
	// Partitions of the topic (for per-partition figures); 0 = unknown.
	Partitions int
	// History is the run's compact history (sends, live receives and the
	// verification read): a table in memory or a streamed file split into
	// shards. When nil, Analyze builds it from Sends, Receives and Final.
	History history.Source `json:"-"`
	// Sends, Receives and Final are the same history as events, for tests
	// and small tools; the runner records into History instead.
	Sends    []history.Send    `json:"-"`
	Receives []history.Receive `json:"-"`
	// Final is what fresh consumers read from offset 0 after the drain:
	// the log as it finally stands. When set, the checker judges loss,
	// duplication and order on it (a message a live consumer saw before
	// the log lost it is still lost); Receives still give delivery
	// latency and the consumed series.
	Final []history.Receive `json:"-"`
	// FinalReads is how far the verification read got in each partition,
	// nil when its consumer cannot tell; FinalStart and FinalEnd bound the
	// read. Acked messages it did not reach count as unreadable, not lost.
	FinalReads           []PartitionRead
	FinalStart, FinalEnd time.Time
	// Faults fired, in order, reverts (restart, resume, heal) included.
	Faults []FaultEvent
	// ControlPlane holds cumulative counter samples.
	ControlPlane []CPSample
	// Resources is CPU and memory per node (per process in-process).
	Resources []NodeResources
	// Error is a runner failure (the run was cut short); it is reported.
	Error string
	// Repeat (1-based) and FaultSeed are TopologyResult's, set by the
	// runner and kept in a streamed history's metadata.
	Repeat    int
	FaultSeed *uint64
	// ProducerRetries is how the producers retried (RetryReporter); empty
	// when they do not say.
	ProducerRetries string
	// Noise is what else used the machine while producers ran; nil when
	// unknown.
	Noise *Noise
}

// FaultEvent is one fault as it happened.
type FaultEvent struct {
	At     time.Time
	Action scenario.Action
	// Target is the scenario's text ("leader-of bench/0").
	Target string
	// Node is what it resolved to ("broker 2"), if the runner knows.
	Node string
	// Err is set when the fault could not be applied or was skipped.
	Err string
	// Note says what else the runner saw (a roll step's wait for a full
	// ISR).
	Note string
	// Detected is when the control plane marked the node dead (lease
	// expired, name server dropped it); zero when unknown or not applicable.
	Detected time.Time
	// Converged is when every client used the new route; zero when unknown.
	Converged time.Time
	// Placement maps each broker node ("broker 2") to the partitions it led
	// or replicated just before the fault (Placer); nil when the runtime
	// cannot tell, and every partition is then taken as affected.
	Placement map[string][]int32
}

// CPSample is a cumulative control-plane counter sample: all requests and
// request+response bytes of one kind (e.g. "etcd/put", "nameserver/register")
// since the control plane started. Counters may reset (a restarted name
// server); a decrease is read as a reset.
type CPSample struct {
	At       time.Time
	Kind     string
	Requests int64
	Bytes    int64
}

// AnalysisConfig tunes Analyze.
type AnalysisConfig struct {
	// Samples is how many examples of each checker finding to keep.
	Samples int
	// HistogramMax is the largest latency recorded exactly; larger values
	// are recorded as this.
	HistogramMax time.Duration
	// SignificantFigures of the HdrHistograms (1-5).
	SignificantFigures int
}

// DefaultAnalysisConfig returns 10 samples and 3-digit histograms up to an hour.
func DefaultAnalysisConfig() AnalysisConfig {
	return AnalysisConfig{Samples: 10, HistogramMax: time.Hour, SignificantFigures: 3}
}

// ErrInvalidConfig is wrapped by configuration errors.
var ErrInvalidConfig = errors.New("scenarios: invalid configuration")

// Validate checks the configuration.
func (c AnalysisConfig) Validate() error {
	if c.Samples < 0 {
		return fmt.Errorf("%w: samples %d is negative", ErrInvalidConfig, c.Samples)
	}
	if c.HistogramMax < time.Millisecond {
		return fmt.Errorf("%w: histogram max %v below 1ms", ErrInvalidConfig, c.HistogramMax)
	}
	if c.SignificantFigures < 1 || c.SignificantFigures > 5 {
		return fmt.Errorf("%w: significant figures %d not in 1..5", ErrInvalidConfig, c.SignificantFigures)
	}
	return nil
}

// TopologyResult is the analysis of one topology's run.
type TopologyResult struct {
	Topology   scenario.Topology `json:"topology"`
	TargetRate float64           `json:"target_rate"` // msgs/s, 0 = unbounded
	Start      time.Time         `json:"start"`
	WarmupEnd  time.Time         `json:"warmup_end"`
	End        time.Time         `json:"end"`
	Error      string            `json:"error,omitempty"`
	// Repeat is which repeat (1-based) of a repeated scenario this run
	// is; 0 when the scenario ran once.
	Repeat int `json:"repeat,omitempty"`
	// FaultSeed is the seed this run's random faults were drawn from
	// (Spec.Random), nil without a random schedule.
	FaultSeed *uint64 `json:"fault_seed,omitempty"`
	// ProducerRetries is how the producers retried and what order within a
	// partition they promise ("ordered: ...", "unordered: ...").
	ProducerRetries string `json:"producer_retries,omitempty"`
	// Noise is the CPU other processes, the hypervisor and the runner took
	// while producers ran, with warnings when it could move the figures.
	Noise *Noise `json:"noise,omitempty"`

	Summary      Summary          `json:"summary"`
	Latency      Latencies        `json:"latency"`
	Series       Series           `json:"series"`
	Faults       []FaultResult    `json:"faults"`
	Check        CheckResult      `json:"check"`
	ControlPlane ControlPlaneCost `json:"control_plane"`
	// Resources is CPU and memory per node, or per process in-process.
	Resources []NodeResources `json:"resources,omitempty"`
}

// Summary holds the headline figures. Latency and rate figures exclude the
// warm-up; counts cover the whole run.
type Summary struct {
	Sent          int64 `json:"sent"`
	Acked         int64 `json:"acked"`
	Failed        int64 `json:"failed"` // failed or unknown outcome
	Lost          int64 `json:"lost"`
	Unreadable    int64 `json:"unreadable"` // acked, in a partition not read to its end
	Duplicated    int64 `json:"duplicated"`
	Reordered     int64 `json:"reordered"`
	Indeterminate int64 `json:"indeterminate"`
	Unexpected    int64 `json:"unexpected"`
	// Consumed is the distinct messages the live consumers received
	// (the verification read is not counted).
	Consumed int64 `json:"consumed"`
	// PublishRate is acks per second after warm-up (acks with Done in
	// [warm-up end, end)).
	PublishRate float64 `json:"publish_rate"`
	// ConsumeRate is distinct messages the live consumers first received
	// per second in the same window.
	ConsumeRate    float64 `json:"consume_rate"`
	PublishP50Ms   float64 `json:"publish_p50_ms"`
	PublishP90Ms   float64 `json:"publish_p90_ms"`
	PublishP99Ms   float64 `json:"publish_p99_ms"`
	PublishP999Ms  float64 `json:"publish_p999_ms"`
	PublishMaxMs   float64 `json:"publish_max_ms"`
	E2EP50Ms       float64 `json:"e2e_p50_ms"`
	E2EP99Ms       float64 `json:"e2e_p99_ms"`
	E2EP999Ms      float64 `json:"e2e_p999_ms"`
	SendDelayP99Ms float64 `json:"send_delay_p99_ms"`
	// MaxUnavailabilityS is the longest topic-level write unavailability
	// over all faults, each gap charged to one fault only.
	MaxUnavailabilityS float64 `json:"max_unavailability_s"`
	// DetectionS and ConvergenceS are the longest over faults; null when
	// no fault reported them.
	DetectionS     *float64 `json:"detection_s"`
	ConvergenceS   *float64 `json:"convergence_s"`
	CPRequestsPerS float64  `json:"cp_requests_per_s"`
	CPBytesPerS    float64  `json:"cp_bytes_per_s"`
}

// Latencies are the three open-loop latency distributions, after warm-up.
type Latencies struct {
	// Publish: Done - Intended of acked sends intended after warm-up.
	Publish LatencyStats `json:"publish"`
	// EndToEnd: first receive - Intended of messages intended after warm-up.
	EndToEnd LatencyStats `json:"e2e"`
	// SendDelay: Sent - Intended, how far the client fell behind schedule.
	SendDelay LatencyStats `json:"send_delay"`
}

// LatencyStats summarises a histogram in milliseconds and carries the
// histogram itself so reports can be re-rendered.
type LatencyStats struct {
	Count  int64   `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// HDR is the HdrHistogram of microsecond values in the standard V2
	// compressed base64 encoding (readable by every HdrHistogram port).
	HDR string `json:"hdr,omitempty"`
}

// Histogram decodes HDR; values are microseconds.
func (l LatencyStats) Histogram() (*hdrhistogram.Histogram, error) {
	if l.HDR == "" {
		return nil, fmt.Errorf("%w: no histogram", ErrResult)
	}
	h, err := hdrhistogram.Decode([]byte(l.HDR))
	if err != nil {
		return nil, fmt.Errorf("%w: histogram: %v", ErrResult, err)
	}
	return h, nil
}

// Series are per-second counts. Element i covers [start+i s, start+(i+1) s).
type Series struct {
	// Sent: messages handed to the network (by Sent time; by Intended when
	// never sent).
	Sent []int64 `json:"sent"`
	// Acked / Failed: outcomes by Done time (failed includes unknown).
	Acked  []int64 `json:"acked"`
	Failed []int64 `json:"failed"`
	// Consumed: distinct messages first received in the second.
	Consumed []int64 `json:"consumed"`
	// Backlog: at the end of the second, messages acked but not yet received.
	Backlog []int64 `json:"backlog"`
	// CPRequests: control-plane requests in the second (all kinds).
	CPRequests []int64 `json:"cp_requests"`
}

// FaultResult is what one fault did to one topology.
type FaultResult struct {
	AtS    float64         `json:"at_s"` // seconds after run start
	Action scenario.Action `json:"action"`
	Target string          `json:"target"`
	Node   string          `json:"node,omitempty"`
	Err    string          `json:"error,omitempty"`
	Note   string          `json:"note,omitempty"`
	// DetectionS / ConvergenceS: seconds from the fault; null if unknown.
	DetectionS   *float64 `json:"detection_s"`
	ConvergenceS *float64 `json:"convergence_s"`
	// UnavailableS is topic-level write unavailability: from the earliest
	// start to the latest end of the partition gaps charged to this fault.
	// Each gap is charged to one fault only (see Overlaps).
	UnavailableS float64 `json:"unavailable_s"`
	// GapStartS is when the first gap charged to this fault began (AtS
	// when none was).
	GapStartS float64 `json:"gap_start_s"`
	// Recovered is false when some partition never took a write again.
	Recovered bool `json:"recovered"`
	// Partitions are the gaps charged to this fault; empty when it caused
	// none.
	Partitions []PartitionGap `json:"partitions,omitempty"`
	// Overlaps lists the other faults (indexes into the topology's Faults)
	// that share a gap with this one: both could have caused it, it is
	// charged to the one that fired last before it began.
	Overlaps []int `json:"overlaps,omitempty"`
}

// PartitionGap is one partition's write unavailability after a fault:
// from the first failed send (or the fault, if later) to the first acked
// send intended after that failed one. Partition -1 collects sends that
// never reached a partition.
type PartitionGap struct {
	Partition    int32   `json:"partition"`
	StartS       float64 `json:"start_s"` // seconds after run start
	UnavailableS float64 `json:"unavailable_s"`
	Failed       int64   `json:"failed"` // failed or retried sends in the gap
	Recovered    bool    `json:"recovered"`
	// Overlaps lists the other faults (indexes into the topology's Faults)
	// that could also have caused this gap.
	Overlaps []int `json:"overlaps,omitempty"`
}

// ControlPlaneCost is request and byte rates to etcd or the name servers
// after warm-up.
type ControlPlaneCost struct {
	RequestsPerS float64    `json:"requests_per_s"`
	BytesPerS    float64    `json:"bytes_per_s"`
	Requests     int64      `json:"requests"` // whole run
	Bytes        int64      `json:"bytes"`
	ByKind       []KindCost `json:"by_kind,omitempty"`
}

// KindCost is ControlPlaneCost for one kind of request.
type KindCost struct {
	Kind         string  `json:"kind"`
	RequestsPerS float64 `json:"requests_per_s"`
	BytesPerS    float64 `json:"bytes_per_s"`
	Requests     int64   `json:"requests"`
	Bytes        int64   `json:"bytes"`
}

// Analyze turns one recorded run into its result. It never fails: missing
// data gives empty figures (a history that cannot be read is reported in
// the result's Error). An invalid cfg is replaced by the default.
//
// It reads the history one shard at a time (see history.Source): every
// figure is a sum, a histogram or a per-partition minimum over messages,
// so a streamed history is analysed in the memory of its largest shard
// (plus, when the run had faults, a compact view of every send for write
// unavailability).
func Analyze(run Run, cfg AnalysisConfig) TopologyResult {
	if cfg.Validate() != nil {
		cfg = DefaultAnalysisConfig()
	}
	res := TopologyResult{
		Topology:   run.Topology,
		TargetRate: run.TargetRate,
		Start:      run.Start,
		WarmupEnd:  run.WarmupEnd,
		End:        run.End,
		Error:      run.Error,

		ProducerRetries: run.ProducerRetries,
		Repeat:          run.Repeat,
		FaultSeed:       run.FaultSeed,
		Noise:           run.Noise,
	}
	h := newClock(run)
	var unread map[int32]UnreadablePartition
	if h.src.HasFinal() {
		unread = unreadablePartitions(run.FinalReads, h.src.AckedEnds(), run.FinalEnd.Sub(run.FinalStart))
	}
	lat := newLatencies(cfg)
	ser := newSeries(h)
	chk := newChecker(h.src, unread, cfg.Samples)
	var counts windowCounts
	var views [][]sendView // by shard, highest keys first
	for t, err := range h.src.Shards() {
		if err != nil {
			res.Error = strings.TrimPrefix(res.Error+"; analysis: "+err.Error(), "; ")
			break
		}
		lat.add(h, t)
		ser.add(h, t)
		chk.add(t)
		counts.add(h, t)
		if len(run.Faults) > 0 {
			views = append(views, sendViews(h, t))
		}
	}
	slices.Reverse(views)
	res.Latency = lat.result()
	res.Series = ser.result(run, h)
	res.Faults = faultResults(run, h, slices.Concat(views...))
	res.ControlPlane = controlPlaneCost(run)
	res.Resources = run.Resources
	res.Check = chk.result()
	res.Summary = summarise(run, res, counts)
	return res
}

// clock is a run's history with the run's instants in the history's time
// base (nanoseconds after its start).
type clock struct {
	src                   history.Source
	t0                    time.Time // the history's start
	start, warmupEnd, end int64
	last                  int64 // lastTime(run)
}

func newClock(run Run) clock {
	src := run.History
	if src == nil {
		src = tableOf(run.Start, run.Sends, run.Receives, run.Final)
	}
	c := clock{src: src, t0: src.Start()}
	c.start, c.warmupEnd, c.end = c.rel(run.Start), c.rel(run.WarmupEnd), c.rel(run.End)
	c.last = c.rel(lastTime(run, c))
	return c
}

// rel converts a time to nanoseconds after the history's start; NoTime for
// the zero time.
func (c clock) rel(at time.Time) int64 {
	if at.IsZero() {
		return history.NoTime
	}
	return int64(at.Sub(c.t0))
}

// abs converts nanoseconds after the history's start back to a time; the
// zero time for NoTime.
func (c clock) abs(ns int64) time.Time {
	if ns == history.NoTime {
		return time.Time{}
	}
	return c.t0.Add(time.Duration(ns))
}

// measured reports whether an intended time lies in the measured window.
func (c clock) measured(intended int64) bool {
	return intended != history.NoTime && intended >= c.warmupEnd && intended < c.end
}

// latencyHists accumulates the latency histograms shard by shard.
type latencyHists struct{ pub, delay, e2e *hdrhistogram.Histogram }

func newLatencies(cfg AnalysisConfig) latencyHists {
	return latencyHists{newHist(cfg), newHist(cfg), newHist(cfg)}
}

func (l latencyHists) add(h clock, t *history.Table) {
	for _, m := range t.Messages() {
		if !m.HasSend() || !h.measured(m.Intended) {
			continue
		}
		if m.Outcome == history.Acked && m.Done != history.NoTime {
			record(l.pub, time.Duration(m.Done-m.Intended))
		}
		if m.Sent != history.NoTime {
			record(l.delay, time.Duration(m.Sent-m.Intended))
		}
		if m.Received(false) && m.FirstRecv != history.NoTime {
			record(l.e2e, time.Duration(m.FirstRecv-m.Intended))
		}
	}
}

func (l latencyHists) result() Latencies {
	return Latencies{Publish: stats(l.pub), EndToEnd: stats(l.e2e), SendDelay: stats(l.delay)}
}

func newHist(cfg AnalysisConfig) *hdrhistogram.Histogram {
	return hdrhistogram.New(1, cfg.HistogramMax.Microseconds(), cfg.SignificantFigures)
}

// record adds d in microseconds, clamped into the histogram's range.
func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := max(d.Microseconds(), 0)
	us = min(us, h.HighestTrackableValue())
	_ = h.RecordValue(us) // cannot fail: us is in range
}

func UsToMs(us int64) float64 { return float64(us) / 1000 }

func stats(h *hdrhistogram.Histogram) LatencyStats {
	if h.TotalCount() == 0 {
		return LatencyStats{}
	}
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		enc = nil // reports fall back to the percentiles
	}
	return statsFrom(h, string(enc))
}

func statsFrom(h *hdrhistogram.Histogram, enc string) LatencyStats {
	return LatencyStats{
		Count:  h.TotalCount(),
		MinMs:  UsToMs(h.Min()),
		MeanMs: h.Mean() / 1000,
		P50Ms:  UsToMs(h.ValueAtQuantile(50)),
		P90Ms:  UsToMs(h.ValueAtQuantile(90)),
		P99Ms:  UsToMs(h.ValueAtQuantile(99)),
		P999Ms: UsToMs(h.ValueAtQuantile(99.9)),
		MaxMs:  UsToMs(h.Max()),
		HDR:    enc,
	}
}

// lastTime is the end of everything the series cover.
func lastTime(run Run, h clock) time.Time {
	if !run.DrainEnd.IsZero() {
		return later(run.DrainEnd, run.End)
	}
	last := later(run.End, h.abs(h.src.Last()))
	// A stray clock value must not make the series absurdly long.
	return earlier(last, run.End.Add(time.Hour))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// maxSeriesLen bounds the series (a week of seconds).
const maxSeriesLen = 7 * 24 * 3600

// seriesCounts accumulates the per-second series shard by shard.
type seriesCounts struct {
	s       Series
	backlog []int64 // difference array
}

func newSeries(h clock) *seriesCounts {
	n := int(math.Ceil(time.Duration(h.last - h.start).Seconds()))
	n = max(0, min(n, maxSeriesLen))
	return &seriesCounts{s: Series{
		Sent: make([]int64, n), Acked: make([]int64, n), Failed: make([]int64, n),
		Consumed: make([]int64, n), Backlog: make([]int64, n), CPRequests: make([]int64, n),
	}, backlog: make([]int64, n+1)}
}

// sec is the series index of ns, -1 outside the series.
func (c *seriesCounts) sec(h clock, ns int64) int {
	if ns == history.NoTime || ns < h.start {
		return -1
	}
	i := int((ns - h.start) / int64(time.Second))
	if i >= len(c.s.Sent) {
		return -1
	}
	return i
}

func (c *seriesCounts) inc(h clock, xs []int64, ns int64, v int64) {
	if i := c.sec(h, ns); i >= 0 {
		xs[i] += v
	}
}

func (c *seriesCounts) add(h clock, t *history.Table) {
	s := &c.s
	for _, m := range t.Messages() {
		if m.Received(false) {
			c.inc(h, s.Consumed, m.FirstRecv, 1)
		}
		if !m.HasSend() {
			continue
		}
		if m.Sent == history.NoTime {
			c.inc(h, s.Sent, m.Intended, 1)
		} else {
			c.inc(h, s.Sent, m.Sent, 1)
		}
		if m.Outcome != history.Acked {
			if m.Done == history.NoTime {
				c.inc(h, s.Failed, h.end, 1)
			} else {
				c.inc(h, s.Failed, m.Done, 1)
			}
			continue
		}
		c.inc(h, s.Acked, m.Done, 1)
		ok := m.Received(false) && m.FirstRecv != history.NoTime
		if ok && m.FirstRecv <= m.Done {
			continue // read before the ack arrived: never backlog
		}
		if i := c.sec(h, m.Done); i >= 0 {
			c.backlog[i]++
			if j := c.sec(h, m.FirstRecv); ok && j >= 0 {
				c.backlog[j]--
			}
		}
	}
}

func (c *seriesCounts) result(run Run, h clock) Series {
	var cur int64
	for i := range c.s.Backlog {
		cur += c.backlog[i]
		c.s.Backlog[i] = cur
	}
	forEachCPDelta(run.ControlPlane, func(cp CPSample, reqs, _ int64) { c.inc(h, c.s.CPRequests, h.rel(cp.At), reqs) })
	return c.s
}

// forEachCPDelta calls f with each sample's increase over the previous
// sample of its kind (a decrease is a counter reset: the new value is the
// increase).
func forEachCPDelta(samples []CPSample, f func(c CPSample, reqs, bytes int64)) {
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b CPSample) int { return a.At.Compare(b.At) })
	prev := map[string]CPSample{}
	for _, c := range sorted {
		p, ok := prev[c.Kind]
		prev[c.Kind] = c
		if !ok {
			continue // the first sample is the baseline
		}
		f(c, counterDelta(p.Requests, c.Requests), counterDelta(p.Bytes, c.Bytes))
	}
}

func counterDelta(prev, cur int64) int64 {
	if cur < prev {
		return max(cur, 0)
	}
	return cur - prev
}

// controlPlaneCost computes rates over the samples taken in [warm-up end,
// end]; with fewer than two there, over all samples.
func controlPlaneCost(run Run) ControlPlaneCost {
	var out ControlPlaneCost
	kinds := map[string]*KindCost{}
	get := func(kind string) *KindCost {
		if kinds[kind] == nil {
			kinds[kind] = &KindCost{Kind: kind}
		}
		return kinds[kind]
	}
	forEachCPDelta(run.ControlPlane, func(c CPSample, reqs, bytes int64) {
		k := get(c.Kind)
		k.Requests += reqs
		k.Bytes += bytes
	})
	for kind, k := range kinds {
		reqs, bytes, secs := windowDelta(run, kind)
		if secs > 0 {
			k.RequestsPerS = float64(reqs) / secs
			k.BytesPerS = float64(bytes) / secs
		}
		out.ByKind = append(out.ByKind, *k)
		out.Requests += k.Requests
		out.Bytes += k.Bytes
		out.RequestsPerS += k.RequestsPerS
		out.BytesPerS += k.BytesPerS
	}
	slices.SortFunc(out.ByKind, func(a, b KindCost) int { return cmp.Compare(a.Kind, b.Kind) })
	return out
}

// windowDelta returns one kind's increase over the measured window and the
// seconds it spans.
func windowDelta(run Run, kind string) (reqs, bytes int64, secs float64) {
	var in, all []CPSample
	for _, c := range run.ControlPlane {
		if c.Kind != kind {
			continue
		}
		all = append(all, c)
		if !c.At.Before(run.WarmupEnd) && !c.At.After(run.End) {
			in = append(in, c)
		}
	}
	if len(in) < 2 {
		in = all
	}
	if len(in) < 2 {
		return 0, 0, 0
	}
	var first, last time.Time
	forEachCPDelta(in, func(c CPSample, r, b int64) { reqs += r; bytes += b })
	first, last = in[0].At, in[0].At
	for _, c := range in {
		first, last = earlier(first, c.At), later(last, c.At)
	}
	return reqs, bytes, last.Sub(first).Seconds()
}

// windowCounts are the summary's message counts, accumulated shard by
// shard: distinct messages consumed live, and acked and consumed in the
// measured window.
type windowCounts struct {
	consumed, ackedIn, consumedIn int64
}

func (w *windowCounts) add(h clock, t *history.Table) {
	in := func(ns int64) bool { return ns != history.NoTime && ns >= h.warmupEnd && ns < h.end }
	for _, m := range t.Messages() {
		if m.HasSend() && m.Outcome == history.Acked && in(m.Done) {
			w.ackedIn++
		}
		if m.Received(false) {
			w.consumed++
			if in(m.FirstRecv) {
				w.consumedIn++
			}
		}
	}
}

func summarise(run Run, res TopologyResult, counts windowCounts) Summary {
	c := res.Check
	l := res.Latency
	s := Summary{
		Sent: c.Sent, Acked: c.Acked, Failed: c.Failed + c.Unknown,
		Lost: c.Lost, Unreadable: c.Unreadable, Duplicated: c.Duplicated, Reordered: c.Reordered,
		Consumed:      counts.consumed,
		Indeterminate: c.Indeterminate, Unexpected: c.Unexpected,
		PublishP50Ms: l.Publish.P50Ms, PublishP90Ms: l.Publish.P90Ms, PublishP99Ms: l.Publish.P99Ms,
		PublishP999Ms: l.Publish.P999Ms, PublishMaxMs: l.Publish.MaxMs,
		E2EP50Ms: l.EndToEnd.P50Ms, E2EP99Ms: l.EndToEnd.P99Ms, E2EP999Ms: l.EndToEnd.P999Ms,
		SendDelayP99Ms: l.SendDelay.P99Ms,
		CPRequestsPerS: res.ControlPlane.RequestsPerS,
		CPBytesPerS:    res.ControlPlane.BytesPerS,
	}
	if window := run.End.Sub(run.WarmupEnd).Seconds(); window > 0 {
		s.PublishRate = float64(counts.ackedIn) / window
		s.ConsumeRate = float64(counts.consumedIn) / window
	}
	for _, f := range res.Faults {
		s.MaxUnavailabilityS = max(s.MaxUnavailabilityS, f.UnavailableS)
		s.DetectionS = maxOpt(s.DetectionS, f.DetectionS)
		s.ConvergenceS = maxOpt(s.ConvergenceS, f.ConvergenceS)
	}
	return s
}

func maxOpt(a, b *float64) *float64 {
	if b == nil || (a != nil && *a >= *b) {
		return a
	}
	v := *b
	return &v
}

// sinceFault returns t - at in seconds, or nil when t is zero.
func sinceFault(at, t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	v := t.Sub(at).Seconds()
	return &v
}

// ErrResult is wrapped by errors reading a result file or a histogram in it.
var ErrResult = errors.New("scenarios: bad result")
