package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

// resourceTable lists CPU and memory per node and topology.
func resourceTable(all []analysis.TopologyResult) table {
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

// formatShares is "nodes 93.1, clients 58.0, ..." in MiB.
func formatShares(shares []analysis.HeapShare) string {
	var parts []string
	for _, s := range shares {
		parts = append(parts, fmt.Sprintf("%s %.1f", s.Owner, float64(s.Bytes)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// cpuPerAcked is the CPU the nodes (in-process: the whole process) spent per
// acknowledged message, in microseconds; 0 when unknown.
func cpuPerAcked(t analysis.TopologyResult) float64 {
	var cpu float64
	for _, n := range t.Resources {
		cpu += n.CPUSeconds
	}
	if cpu == 0 || t.Summary.Acked == 0 {
		return 0
	}
	return cpu / float64(t.Summary.Acked) * 1e6
}
