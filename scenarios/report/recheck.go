package report

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
)

// Recheck re-analyses every streamed history in dir (history-*.blh) and
// replaces the result of the same topology, rate and repeat in dir/result.json,
// then rewrites the reports. It returns how many it replaced.
func Recheck(dir string, cfg analysis.AnalysisConfig) (int, error) {
	res, err := ReadResult(filepath.Join(dir, ResultFile))
	if err != nil {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "history-*"+analysis.HistoryExt))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", analysis.ErrHistory, err)
	}
	slices.Sort(files)
	n := 0
	for _, f := range files {
		run, err := analysis.ReadHistoryFile(f)
		if err != nil {
			return n, err
		}
		i := slices.IndexFunc(res.Topologies, func(t analysis.TopologyResult) bool {
			return t.Topology == run.Topology && t.TargetRate == run.TargetRate && t.Repeat == run.Repeat
		})
		tr := analysis.Analyze(run, cfg)
		run.History.Release()
		if i < 0 {
			res.Topologies = append(res.Topologies, tr)
		} else {
			res.Topologies[i] = tr
		}
		n++
	}
	res.Repeats = AggregateRepeats(res)
	return n, WriteAll(dir, res)
}
