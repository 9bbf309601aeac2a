package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/brokerlab/brokerlab/history"
)

// ErrHistory wraps failures to read a streamed history back.
var ErrHistory = errors.New("scenarios: history file")

// ReadHistoryFile opens a history the runner streamed to disk (see package
// history for the format) together with the run's description the runner
// appended to it, ready for Analyze. The history is split into shard
// files next to path (history.SplitFile), so that Analyze needs the
// memory of one shard; release it (run.History.Release) when done.
func ReadHistoryFile(path string) (Run, error) {
	sp, meta, err := history.SplitFile(path, filepath.Dir(path), 0)
	if err != nil {
		if sp != nil {
			sp.Release()
		}
		return Run{}, fmt.Errorf("%w %s: %w", ErrHistory, path, err)
	}
	if meta == nil {
		sp.Release()
		return Run{}, fmt.Errorf("%w %s: no run description (the run did not finish)", ErrHistory, path)
	}
	var run Run
	if err := json.Unmarshal(meta, &run); err != nil {
		sp.Release()
		return Run{}, fmt.Errorf("%w %s: run description: %w", ErrHistory, path, err)
	}
	run.History = sp
	return run, nil
}

// Recheck re-analyses every streamed history in dir (history-*.blh) and
// replaces the result of the same topology and rate in dir/result.json,
// then rewrites the reports. It returns how many it replaced.
func Recheck(dir string, cfg AnalysisConfig) (int, error) {
	res, err := ReadResult(filepath.Join(dir, ResultFile))
	if err != nil {
		return 0, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "history-*"+HistoryExt))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	slices.Sort(files)
	n := 0
	for _, f := range files {
		run, err := ReadHistoryFile(f)
		if err != nil {
			return n, err
		}
		i := slices.IndexFunc(res.Topologies, func(t TopologyResult) bool {
			return t.Topology == run.Topology && t.TargetRate == run.TargetRate
		})
		tr := Analyze(run, cfg)
		run.History.Release()
		if i < 0 {
			res.Topologies = append(res.Topologies, tr)
		} else {
			res.Topologies[i] = tr
		}
		n++
	}
	return n, WriteAll(dir, res)
}
