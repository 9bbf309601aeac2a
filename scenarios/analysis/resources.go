package analysis

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
	// Heap, in-process only, splits the process's live heap by owner (see
	// HeapOwners): each owner's largest share seen at a collection while
	// the run went on. The history's table is outside the heap.
	Heap []HeapShare `json:"heap,omitempty"`
}

// Heap owners: who holds the live heap of an in-process run.
const (
	OwnerNodes   = "nodes"   // brokers, etcd, name servers, nats-server
	OwnerClients = "clients" // the workload's producers and consumers and their client libraries
	OwnerLinks   = "links"   // the fault layer's connection buffers (faultnet pumps)
	OwnerRunner  = "runner"  // the runner, the history's side maps, everything else
)

// HeapOwners lists the owners in report order.
var HeapOwners = []string{OwnerNodes, OwnerClients, OwnerLinks, OwnerRunner}

// HeapShare is the live heap one owner holds.
type HeapShare struct {
	Owner string `json:"owner"`
	Bytes int64  `json:"bytes"`
}
