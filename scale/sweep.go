package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Result is a scale run: result.json of a `data_plane: none` scenario.
type Result struct {
	Version  int       `json:"version"`
	Kind     string    `json:"kind"` // "scale"
	Scenario Sweep     `json:"scenario"`
	Start    time.Time `json:"start"`
	Points   []Point   `json:"points"`
	// Refused lists the shapes not run, with the reason (too large for
	// this machine).
	Refused []string `json:"refused,omitempty"`
}

// SweepOptions are the run's settings outside the scenario.
type SweepOptions struct {
	// Dir is the output directory; servers keep their data under Dir/data
	// while a step runs.
	Dir      string
	Logger   *slog.Logger
	Progress io.Writer
	// Topologies, if set, runs only these of the scenario's.
	Topologies []string
}

// RunSweep runs every topology at every shape the machine can hold,
// smallest first, and returns the points. A step that fails is recorded
// with its error and the sweep goes on; a refused shape is listed, not run.
func RunSweep(ctx context.Context, s Sweep, o SweepOptions) (Result, error) {
	res := Result{Version: 1, Kind: "scale", Scenario: s, Start: time.Now().UTC()}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	topos := s.Topologies
	if len(o.Topologies) > 0 {
		topos = o.Topologies
	}
	for _, shape := range s.Shapes() {
		if err := CheckFits(shape); err != nil {
			res.Refused = append(res.Refused, err.Error())
			if o.Progress != nil {
				fmt.Fprintf(o.Progress, "refused: %v\n", err)
			}
			continue
		}
		for _, topo := range topos {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			dir := filepath.Join(o.Dir, "data", fmt.Sprintf("%s-%d-%d", topo, shape.Brokers, shape.Partitions))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return res, fmt.Errorf("scale: %w", err)
			}
			shape.Dir, shape.Logger = dir, o.Logger
			began := time.Now()
			cfg := Config{Topology: topo, Shape: shape, Idle: s.Idle, Settle: s.Settle,
				Progress: func(line string) {
					if o.Progress != nil {
						fmt.Fprintf(o.Progress, "[%s] %s\n", time.Since(began).Round(time.Second), line)
					}
				}}
			pt, err := Run(ctx, cfg)
			if err != nil {
				if errors.Is(err, ErrTooLarge) {
					res.Refused = append(res.Refused, err.Error())
					continue
				}
				pt.Error = err.Error()
			}
			res.Points = append(res.Points, pt)
			_ = os.RemoveAll(dir)
		}
	}
	return res, nil
}
