package analysis

import ()

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
}
