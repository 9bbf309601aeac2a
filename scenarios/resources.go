package scenarios

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// resourceSampler measures CPU and memory over a run: the process's own
// rusage in-process, each node's process series (process_cpu_seconds_total,
// process_resident_memory_bytes) from its metrics endpoint otherwise.
type resourceSampler struct {
	runtime string
	targets func() map[string]string // nil in-process or without endpoints
	client  *http.Client

	start    time.Time
	startCPU float64 // in-process

	mu    sync.Mutex
	nodes map[string]*nodeUse
	heap  map[string]int64 // in-process: largest live heap share by owner

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

type nodeUse struct {
	cpu   *metrics.Cumulative // carries restarts over
	first float64             // cumulative CPU at the first sample
	seen  bool
	peak  float64
}

func startResources(ctx context.Context, runtime string, dep Deployment) *resourceSampler {
	r := &resourceSampler{runtime: runtime, client: &http.Client{Timeout: time.Second},
		nodes: map[string]*nodeUse{}, stopCh: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	if runtime == scenario.RuntimeInProcess {
		r.startCPU = processCPU()
		resetPeakRSS()
		r.heap = map[string]int64{}
		go r.sampleHeap(ctx)
		return r
	}
	if mt, ok := dep.(MetricsTargets); ok {
		r.targets = mt.MetricsTargets
	}
	go func() {
		defer close(r.done)
		if r.targets == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		r.sample(ctx)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.stopCh:
				r.sample(ctx)
				return
			case <-t.C:
				r.sample(ctx)
			}
		}
	}()
	return r
}

func (r *resourceSampler) sample(ctx context.Context) {
	var wg sync.WaitGroup
	for node, url := range r.targets() {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			ss, err := metrics.Scrape(sctx, r.client, url)
			if err != nil {
				return
			}
			cpu := ss.Sum("process_cpu_seconds_total", nil)
			rss := ss.Sum("process_resident_memory_bytes", nil)
			r.mu.Lock()
			defer r.mu.Unlock()
			u := r.nodes[node]
			if u == nil {
				u = &nodeUse{cpu: metrics.NewCumulative()}
				r.nodes[node] = u
			}
			u.cpu.Observe(node, map[string]float64{"cpu": cpu})
			if !u.seen {
				u.first, u.seen = u.cpu.Totals()["cpu"], true
			}
			u.peak = max(u.peak, rss)
		})
	}
	wg.Wait()
}

// heapSampleEvery is how often the in-process runtime splits the live
// heap by owner.
const heapSampleEvery = 2 * time.Second

// sampleHeap keeps each owner's largest share of the live heap (as of the
// collection before each sample) until stop.
func (r *resourceSampler) sampleHeap(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(heapSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.stopCh:
			return
		case <-t.C:
		}
		shares := heapByOwner()
		r.mu.Lock()
		for _, s := range shares {
			r.heap[s.Owner] = max(r.heap[s.Owner], s.Bytes)
		}
		r.mu.Unlock()
	}
}

// stop ends sampling and returns each node's use, sorted by node. It may
// be called more than once.
func (r *resourceSampler) stop() []analysis.NodeResources {
	window := time.Since(r.start).Seconds()
	r.stopOnce.Do(func() { close(r.stopCh) })
	<-r.done
	if r.runtime == scenario.RuntimeInProcess {
		r.mu.Lock()
		defer r.mu.Unlock()
		var heap []analysis.HeapShare
		for _, o := range analysis.HeapOwners {
			if b, ok := r.heap[o]; ok {
				heap = append(heap, analysis.HeapShare{Owner: o, Bytes: b})
			}
		}
		return []analysis.NodeResources{{Node: "process", CPUSeconds: processCPU() - r.startCPU,
			PeakMemoryBytes: peakRSS(), WindowS: window, Source: "getrusage, VmHWM", Heap: heap}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]analysis.NodeResources, 0, len(r.nodes))
	for node, u := range r.nodes {
		out = append(out, analysis.NodeResources{Node: node, CPUSeconds: u.cpu.Totals()["cpu"] - u.first,
			PeakMemoryBytes: int64(u.peak), WindowS: window, Source: "process metrics"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// processCPU is this process's user plus system CPU seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// resetPeakRSS resets the kernel's resident-set high-water mark (Linux;
// elsewhere the peak is the process's lifetime peak).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM, falling back to getrusage's lifetime maximum.
func peakRSS() int64 {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}
