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
)

// NodeResources is what one node (or, in-process, the whole process) spent
// over a run's measured window: from the producers' start to the end of the
// drain.
type NodeResources struct {
	// Node is "broker 0", "nameserver 1", "etcd 0", or "process" for the
	// in-process runtime, where every node, the runner and its clients share
	// one process.
	Node string `json:"node"`
	// CPUSeconds is user plus system CPU time.
	CPUSeconds float64 `json:"cpu_seconds"`
	// PeakMemoryBytes is the peak resident set size: the kernel's
	// high-water mark in-process, the largest value sampled once a second
	// from the node's process metrics otherwise.
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
	// WindowS is the length of the window in seconds.
	WindowS float64 `json:"window_s"`
	// Source says how it was measured.
	Source string `json:"source"`
	// Heap, in-process only, splits the process's live heap by owner (the
	// nodes, the workload's clients, the fault layer's link buffers, the
	// runner): each owner's largest share seen at a collection while the
	// run went on, sampled every heapSampleEvery. The history's table is
	// outside the heap.
	Heap []HeapShare `json:"heap,omitempty"`
}

// heapSampleEvery is how often the in-process runtime splits the live
// heap by owner.
const heapSampleEvery = 2 * time.Second

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
	if runtime == RuntimeInProcess {
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

// stop ends sampling and returns each node's use, sorted by node. It may
// be called more than once.
func (r *resourceSampler) stop() []NodeResources {
	window := time.Since(r.start).Seconds()
	r.stopOnce.Do(func() { close(r.stopCh) })
	<-r.done
	if r.runtime == RuntimeInProcess {
		r.mu.Lock()
		defer r.mu.Unlock()
		var heap []HeapShare
		for _, o := range []string{OwnerNodes, OwnerClients, OwnerLinks, OwnerRunner} {
			if b, ok := r.heap[o]; ok {
				heap = append(heap, HeapShare{Owner: o, Bytes: b})
			}
		}
		return []NodeResources{{Node: "process", CPUSeconds: processCPU() - r.startCPU,
			PeakMemoryBytes: peakRSS(), WindowS: window, Source: "getrusage, VmHWM", Heap: heap}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NodeResources, 0, len(r.nodes))
	for node, u := range r.nodes {
		out = append(out, NodeResources{Node: node, CPUSeconds: u.cpu.Totals()["cpu"] - u.first,
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

// resourceTable lists CPU and memory per node and topology.
func resourceTable(all []TopologyResult) table {
	t := table{header: []string{"topology", "node", "CPU (s)", "CPU (cores)", "peak memory (MiB)", "measured by"}}
	heap := false
	for _, tr := range all {
		for _, n := range tr.Resources {
			heap = heap || len(n.Heap) > 0
		}
	}
	if heap {
		t.header = append(t.header, "largest live heap by owner (MiB)")
	}
	heads := labels(all)
	for i, tr := range all {
		for _, n := range tr.Resources {
			cores := "–"
			if n.WindowS > 0 {
				cores = strconv.FormatFloat(n.CPUSeconds/n.WindowS, 'f', 2, 64)
			}
			row := []string{heads[i], n.Node, fmtSec(n.CPUSeconds), cores,
				strconv.FormatFloat(float64(n.PeakMemoryBytes)/(1<<20), 'f', 1, 64), n.Source}
			if heap {
				row = append(row, formatShares(n.Heap))
			}
			t.rows = append(t.rows, row)
		}
	}
	return t
}

// cpuPerAcked is the CPU the nodes (in-process: the whole process) spent per
// acknowledged message, in microseconds; 0 when unknown.
func cpuPerAcked(t TopologyResult) float64 {
	var cpu float64
	for _, n := range t.Resources {
		cpu += n.CPUSeconds
	}
	if cpu == 0 || t.Summary.Acked == 0 {
		return 0
	}
	return cpu / float64(t.Summary.Acked) * 1e6
}
