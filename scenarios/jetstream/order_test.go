package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// TestLeaderKillRetryOrder kills the leader of partition 0 under load with
// each retry setting. With ordered retries (the default) the driver holds
// a partition's later messages while a failed one is retried, so nothing
// is reordered though messages were retried; the old behaviour (each
// failed publish on its own timer) is kept as unordered_retries and its
// count is logged. Both say which ran.
func TestLeaderKillRetryOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: two 12 s leader kills")
	}
	for _, unordered := range []bool{false, true} {
		name := map[bool]string{false: "ordered", true: "unordered"}[unordered]
		t.Run(name, func(t *testing.T) {
			d, topic := startCluster(t, 3, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			w := workload(400, time.Second)
			w.UnorderedRetries = unordered
			prod, err := d.NewProducer(scenarios.ProducerConfig{ID: 9, Topic: topic.Name, Rate: 400, Duration: time.Second, Workload: w})
			if err != nil {
				t.Fatal(err)
			}
			if got := prod.(scenarios.RetryReporter).RetryOrder(); !strings.HasPrefix(got, name+":") {
				t.Errorf("retry order %q, want %s", got, name)
			}
			run := startLoad(ctx, t, d, topic, 400, 12*time.Second, func(w *scenario.Workload) { w.UnorderedRetries = unordered })
			if !sleepUntil(ctx, run.start.Add(2*time.Second)) {
				t.Fatal("context ended")
			}
			node, killedAt := applyStep(ctx, t, d, scenario.ActionKill, scenario.Target{Kind: scenario.TargetLeaderOf, Topic: topic.Name, Partition: 0}, "")
			awaitDetected(t, d, node, killedAt)
			res := run.finish(ctx)
			retried := 0
			sends, _ := run.rec.Events()
			for _, s := range sends {
				if s.Attempts > 1 {
					retried++
				}
			}
			t.Logf("%s retries: %d messages retried, %d reordered", name, retried, res.Reordered)
			if retried == 0 {
				t.Fatal("no message was retried: the kill tested nothing")
			}
			if !unordered && res.Reordered != 0 {
				t.Errorf("ordered retries reordered %d messages: %+v", res.Reordered, res.ReorderedSamples)
			}
		})
	}
}
