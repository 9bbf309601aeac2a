package analysis

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/brokerlab/brokerlab/history"
)

// ErrHistory wraps failures to read a streamed history back.
var ErrHistory = errors.New("scenarios: history file")

// ReadHistoryFile reads a history the runner streamed to disk (see package
// history for the format) together with the run's description the runner
// appended to it, ready for Analyze.
func ReadHistoryFile(path string) (Run, error) {
	t, meta, err := history.ReadFile(path)
	if err != nil {
		return Run{}, fmt.Errorf("%w %s: %w", ErrHistory, path, err)
	}
	if meta == nil {
		return Run{}, fmt.Errorf("%w %s: no run description (the run did not finish)", ErrHistory, path)
	}
	var run Run
	if err := json.Unmarshal(meta, &run); err != nil {
		return Run{}, fmt.Errorf("%w %s: run description: %w", ErrHistory, path, err)
	}
	run.History = t
	return run, nil
}

// HistoryExt is the file extension of a streamed history.
const HistoryExt = ".blh"
