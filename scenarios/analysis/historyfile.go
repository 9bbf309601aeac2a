package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

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

// HistoryExt is the file extension of a streamed history.
const HistoryExt = ".blh"
