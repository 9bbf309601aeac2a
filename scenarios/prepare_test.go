package scenarios

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestPreparerRunsOnceBeforeSetup: a runtime's preparer (the container
// runtimes' image build) runs once before the first topology, outside the
// set-up bound (its context has no deadline), and its failure ends the run
// with the runtime named.
func TestPreparerRunsOnceBeforeSetup(t *testing.T) {
	const rt = "prepare-test"
	var calls int
	var failWith error
	RegisterPreparer(rt, func(ctx context.Context, _ *slog.Logger) error {
		calls++
		if _, ok := ctx.Deadline(); ok {
			t.Error("the preparer runs under a deadline: a slow image build would eat the set-up bound")
		}
		return failWith
	})
	var started []time.Duration
	RegisterDriver(rt, "kafka-external", func(ctx context.Context, _ Env) (Deployment, error) {
		if calls != 1 {
			t.Errorf("a topology started after %d preparer calls, want 1", calls)
		}
		dl, _ := ctx.Deadline()
		started = append(started, time.Until(dl))
		return nil, errors.New("stub: no cluster")
	})
	spec, err := scenario.Parse("prepare.yaml", []byte("name: prepare\ntopologies: [kafka-external]\nrepeat: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunScenario(context.Background(), spec, RunOptions{Out: t.TempDir(), Runtime: rt}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || len(started) != 2 {
		t.Fatalf("preparer called %d times, %d topology starts; want 1 and 2", calls, len(started))
	}
	failWith = errors.New("no image")
	_, err = RunScenario(context.Background(), spec, RunOptions{Out: t.TempDir(), Runtime: rt})
	if err == nil || !strings.Contains(err.Error(), rt) || !strings.Contains(err.Error(), "no image") {
		t.Fatalf("a failed preparation: %v", err)
	}
}
