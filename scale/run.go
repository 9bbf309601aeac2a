package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/brokerlab/brokerlab/broker"
)

// Config is one sweep step: a topology at one cluster shape.
type Config struct {
	Topology string
	Shape
	// Idle is how long idle control-plane cost is measured.
	Idle time.Duration
	// Settle bounds each wait (registration, topic propagation, failover).
	Settle time.Duration
	// Progress, if set, receives one line per phase.
	Progress func(string)
	// OnView, if set, sees every view every broker applies, as it applies
	// it (from the broker's own goroutine: return quickly).
	OnView func(id int32, at time.Time, v broker.ClusterView)
	// DataPlane runs every broker as a real broker (Kafka listener on
	// loopback, a log under Dir, replication) over the same control plane,
	// instead of the stand-in: the figures are then taken on the views the
	// control plane hands those brokers. For comparing the stand-in with
	// the full system at small sizes.
	DataPlane bool
}

// Point is the figures of one sweep step.
type Point struct {
	Topology   string `json:"topology"`
	Brokers    int    `json:"brokers"`
	Partitions int    `json:"partitions"`
	Profile    string `json:"profile"`
	// StartS is how long registering every broker and creating the
	// partitions took.
	StartS float64 `json:"start_s"`
	// Propagation: creation of a new topic to each broker's view holding it
	// with a leader for every partition.
	Propagation Dist `json:"propagation"`
	// Idle cost per second, total and per broker.
	IdleRequestsPerS float64 `json:"idle_requests_per_s"`
	IdleBytesPerS    float64 `json:"idle_bytes_per_s"`
	// Failure of the broker leading the most partitions.
	Victim       int32   `json:"victim"`
	VictimLeads  int     `json:"victim_leads"`
	DetectionS   float64 `json:"detection_s"` // first view without the victim; -1 if none
	RemovedS     float64 `json:"removed_s"`   // every view without it
	ReElection   Dist    `json:"reelection"`  // per partition: every view on a new leader
	NotReElected int     `json:"not_reelected"`
	// FailureCost is the traffic of the failover window above the idle rate.
	FailureRequests int64 `json:"failure_requests"`
	FailureBytes    int64 `json:"failure_bytes"`
	// Process resources while the step ran (brokers, servers and harness
	// share one process here).
	CPUSeconds  float64 `json:"cpu_seconds"`
	PeakRSSByte int64   `json:"peak_rss_bytes"`
	// HeapPerPartition is the live heap the partitions added, per
	// partition per broker: after a collection once every broker holds
	// them, less after a collection once every broker had registered. It
	// includes the servers' copy (etcd's keys, the name servers' tables),
	// which is small next to the brokers'.
	HeapPerPartition float64 `json:"heap_per_partition_bytes"`
	Error            string  `json:"error,omitempty"`
}

// Dist summarises seconds over nodes or partitions.
type Dist struct {
	N   int     `json:"n"`
	Min float64 `json:"min_s"`
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
}

func dist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	q := func(p float64) float64 { return xs[min(len(xs)-1, int(math.Ceil(p*float64(len(xs))))-1)] }
	return Dist{N: len(xs), Min: xs[0], P50: q(0.5), P99: q(0.99), Max: xs[len(xs)-1]}
}

// startConcurrency is how many brokers register at once.
const startConcurrency = 8

// ErrTooLarge is returned for a shape this machine cannot hold.
var ErrTooLarge = errors.New("scale: cluster too large for this machine")

// bytesPerPartitionView is a broker's memory per partition of metadata it
// holds: the control plane's cache, the views in flight and the stand-in's
// newest. Measured: 100 coordinator brokers × 10,000 partitions peaked at
// 1.47 GB resident, about 1.4 KB per partition per broker.
const bytesPerPartitionView = 500

// Estimate is the memory a shape needs, in bytes.
func Estimate(s Shape) int64 {
	perBroker := int64(s.Partitions)*bytesPerPartitionView + 256<<10 // plus connections and goroutines
	return int64(s.Brokers) * perBroker
}

// CheckFits refuses a shape whose estimate exceeds 70 % of available memory.
func CheckFits(s Shape) error {
	avail := memAvailable()
	if avail <= 0 {
		return nil
	}
	if need := Estimate(s); need > avail*7/10 {
		return fmt.Errorf("%w: %d brokers × %d partitions need about %.1f GB (each broker holds the whole cluster's metadata); %.1f GB available",
			ErrTooLarge, s.Brokers, s.Partitions, float64(need)/1e9, float64(avail)/1e9)
	}
	return nil
}

// Run runs one sweep step: start the servers and the brokers, create the
// partitions, time a new topic's propagation, measure idle cost, kill the
// broker leading the most partitions and time detection and re-election.
func Run(ctx context.Context, cfg Config) (Point, error) {
	pt := Point{Topology: cfg.Topology, Brokers: cfg.Brokers, Partitions: cfg.Partitions, Profile: cfg.Profile, DetectionS: -1}
	if err := CheckFits(cfg.Shape); err != nil {
		return pt, err
	}
	if cfg.Dir == "" {
		return pt, errors.New("scale: a data directory is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Replication <= 0 {
		cfg.Replication = 3
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	top, err := newTopology(cfg.Topology)
	if err != nil {
		return pt, err
	}
	cpu0 := cpuSeconds()
	if err := top.Start(ctx, cfg.Shape); err != nil {
		return pt, err
	}
	defer top.Close()
	obs := newObserver()
	nodes := make([]*node, cfg.Brokers)
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n != nil {
				wg.Add(1)
				go func() { defer wg.Done(); n.crash() }()
			}
		}
		wg.Wait()
	}()

	began := time.Now()
	progress(fmt.Sprintf("%s %d brokers × %d partitions: registering brokers", cfg.Topology, cfg.Brokers, cfg.Partitions))
	// Brokers start a few at a time, as a real cluster's brokers come up
	// over a while rather than in the same instant; each still has its own
	// connections and retries its registration with back-off if the
	// control plane is slow to answer.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(startConcurrency)
	for i := range nodes {
		cp, err := top.NewPlane(int32(i))
		if err != nil {
			return pt, err
		}
		n := newNode(int32(i), cp, obs, lagMax(cfg.Profile))
		n.onApplied = cfg.OnView
		if cfg.DataPlane {
			bc := broker.DefaultConfig()
			bc.NodeID, bc.Listen = int32(i), "127.0.0.1:0"
			bc.DataDir = filepath.Join(cfg.Dir, "broker-"+itoa(i))
			bc.ReplicaLagMax = lagMax(cfg.Profile)
			bc.ReplicaFetchWait = min(500*time.Millisecond, bc.ReplicaLagMax/4)
			bc.Logger = cfg.Logger.With("component", "broker", "node-id", i)
			n.full = &bc
		}
		nodes[i] = n
		obs.setRunning(n.id, true)
		start := func() error {
			rctx, cancel := context.WithTimeout(gctx, cfg.Settle)
			defer cancel()
			if err := n.start(rctx); err != nil {
				return fmt.Errorf("broker %d: register: %w", n.id, err)
			}
			return nil
		}
		if i == 0 {
			// The first broker starts alone: a gossip cluster's first
			// seed forms the cluster (claims the slots) when no other
			// seed answers, as a cluster is first brought up.
			if err := start(); err != nil {
				return pt, err
			}
			continue
		}
		g.Go(start)
	}
	if err := g.Wait(); err != nil {
		return pt, err
	}
	if err := waitFor(ctx, cfg.Settle, func() error { return allSeeBrokers(obs, nodes) }); err != nil {
		return pt, fmt.Errorf("brokers never saw each other: %w", err)
	}
	if st, ok := top.(settler); ok {
		if err := waitFor(ctx, cfg.Settle, st.Settled); err != nil {
			return pt, fmt.Errorf("the cluster never formed: %w", err)
		}
	}
	heap0 := liveHeap()

	progress(fmt.Sprintf("%s %d brokers × %d partitions: creating partitions", cfg.Topology, cfg.Brokers, cfg.Partitions))
	if err := createPartitions(ctx, nodes[0].cp, cfg, obs); err != nil {
		return pt, err
	}
	pt.StartS = time.Since(began).Seconds()

	progress(fmt.Sprintf("%s %d brokers × %d partitions: timing a new topic", cfg.Topology, cfg.Brokers, cfg.Partitions))
	probe := broker.TopicConfig{Name: "probe", Partitions: 10, ReplicationFactor: int16(cfg.Replication), MinInsync: 1}
	t0 := time.Now()
	obs.watchTopic(probe.Name, t0)
	if err := createTopics(ctx, nodes[0].cp, []broker.TopicConfig{probe}, cfg.Settle); err != nil {
		return pt, err
	}
	if err := waitFor(ctx, cfg.Settle, func() error {
		if m := obs.topicMissing(); m > 0 {
			return fmt.Errorf("%d brokers have not seen the new topic", m)
		}
		return nil
	}); err != nil {
		return pt, err
	}
	pt.Propagation = dist(obs.topicTimes())
	if held := float64(cfg.Brokers) * float64(cfg.Partitions+int(probe.Partitions)); held > 0 {
		pt.HeapPerPartition = float64(liveHeap()-heap0) / held
	}

	progress(fmt.Sprintf("%s %d brokers × %d partitions: idle cost for %v", cfg.Topology, cfg.Brokers, cfg.Partitions, cfg.Idle))
	c0, i0 := top.Cost(), time.Now()
	if err := sleepCtx(ctx, cfg.Idle); err != nil {
		return pt, err
	}
	c1, i1 := top.Cost(), time.Now()
	idle := c1.sub(c0)
	secs := i1.Sub(i0).Seconds()
	pt.IdleRequestsPerS, pt.IdleBytesPerS = float64(idle.Requests)/secs, float64(idle.Bytes)/secs

	victim, parts := obs.busiest(-1)
	pt.Victim, pt.VictimLeads = victim, len(parts)
	progress(fmt.Sprintf("%s %d brokers × %d partitions: killing broker %d (leads %d partitions)", cfg.Topology, cfg.Brokers, cfg.Partitions, victim, len(parts)))
	f0 := time.Now()
	obs.watchFailure(victim, parts, f0)
	obs.setRunning(victim, false)
	nodes[victim].crash()
	nodes[victim] = nil
	werr := waitFor(ctx, cfg.Settle, func() error {
		listing, unmoved := obs.failureProgress()
		if !top.MovesLeaders() {
			unmoved = 0
		}
		if listing > 0 || unmoved > 0 {
			return fmt.Errorf("%d brokers still list broker %d, %d partition views without a new leader", listing, victim, unmoved)
		}
		return nil
	})
	f1 := time.Now()
	var reelect []float64
	pt.DetectionS, pt.RemovedS, reelect, pt.NotReElected = obs.failureTimes()
	pt.ReElection = dist(reelect)
	failure := top.Cost().sub(c1)
	window := f1.Sub(i1).Seconds()
	// Above the idle rate; a failover that saves traffic (fewer brokers
	// heartbeating) reads as 0.
	pt.FailureRequests = max(0, failure.Requests-int64(pt.IdleRequestsPerS*window))
	pt.FailureBytes = max(0, failure.Bytes-int64(pt.IdleBytesPerS*window))
	pt.CPUSeconds = cpuSeconds() - cpu0
	pt.PeakRSSByte = peakRSS()
	if werr != nil {
		pt.Error = werr.Error()
	}
	return pt, nil
}

// createPartitions creates the sweep's partitions as topics of up to 1000
// partitions and waits until some broker's view holds them all with leaders.
func createPartitions(ctx context.Context, cp broker.ControlPlane, cfg Config, obs *observer) error {
	var topics []broker.TopicConfig
	for left, i := cfg.Partitions, 0; left > 0; i++ {
		n := min(left, 1000)
		topics = append(topics, broker.TopicConfig{Name: fmt.Sprintf("scale-%04d", i), Partitions: int32(n),
			ReplicationFactor: int16(cfg.Replication), MinInsync: 1})
		left -= n
	}
	obs.watchTopic(topics[len(topics)-1].Name, time.Now())
	for i := 0; i < len(topics); i += 50 {
		if err := createTopics(ctx, cp, topics[i:min(i+50, len(topics))], cfg.Settle); err != nil {
			return err
		}
	}
	return waitFor(ctx, cfg.Settle, func() error {
		if m := obs.topicMissing(); m > 0 {
			return fmt.Errorf("%d brokers lack the partitions", m)
		}
		return nil
	})
}

// createTopics creates ts, retrying what fails (a control plane still
// forming: gossip slots without a master yet) until limit.
func createTopics(ctx context.Context, cp broker.ControlPlane, ts []broker.TopicConfig, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		errs := cp.CreateTopics(cctx, ts)
		cancel()
		var retry []broker.TopicConfig
		var last error
		for i, err := range errs {
			if err != nil && !errors.Is(err, broker.ErrTopicExists) {
				retry, last = append(retry, ts[i]), err
			}
		}
		if len(retry) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("scale: create topics: %w", last)
		}
		ts = retry
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

func allSeeBrokers(obs *observer, nodes []*node) error {
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.last.Brokers) < len(nodes) {
		return fmt.Errorf("%d of %d brokers registered", len(obs.last.Brokers), len(nodes))
	}
	return nil
}

// waitFor polls cond until it returns nil or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", limit, err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// liveHeap is the heap still in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// memAvailable reads MemAvailable from /proc/meminfo; 0 when unknown.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); err == nil {
			return kb * 1024
		}
	}
	return 0
}
