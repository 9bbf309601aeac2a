package external

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/report"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// startBroker starts a brokerlab standalone broker, the stand-in for a
// Kafka cluster the user runs.
func startBroker(t *testing.T) string {
	t.Helper()
	return brokertest.Standalone(t).Addr()
}

func testEnv(t *testing.T, bootstrap ...string) scenarios.Env {
	spec := scenario.DefaultSpec()
	spec.Cluster.Profile = scenario.ProfileFast
	return scenarios.Env{Spec: spec, Runtime: scenario.RuntimeInProcess, DataDir: t.TempDir(),
		Logger: testutil.Logger(t, slog.LevelInfo), Bootstrap: bootstrap}
}

// produceConsume runs one producer and one consumer for a short while on a
// fresh deployment and returns the checker's verdict.
func produceConsume(ctx context.Context, t *testing.T, addr string, topic scenario.Topic) analysis.CheckResult {
	t.Helper()
	dep, err := Start(ctx, testEnv(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := dep.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := dep.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sends []history.Send
	var receives []history.Receive
	const runFor = 800 * time.Millisecond
	w := scenario.Workload{MessageSize: 100, Acks: scenario.AcksAll, Retries: 5, Timeout: 5 * time.Second, Duration: runFor}
	p, err := dep.NewProducer(scenarios.ProducerConfig{ID: 0, Topic: topic.Name, Rate: 500, Start: time.Now().Add(50 * time.Millisecond), Duration: runFor, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dep.NewConsumer(scenarios.ConsumerConfig{ID: 0, Topic: topic.Name})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.Run(cctx, func(r history.Receive) {
			mu.Lock()
			receives = append(receives, r)
			mu.Unlock()
		})
	})
	if err := p.Run(ctx, func(s history.Send) {
		mu.Lock()
		sends = append(sends, s)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if ok, err := c.CaughtUp(ctx); err != nil || !ok {
			return errors.New("consumer behind")
		}
		return nil
	})
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return analysis.Check(sends, receives, 5)
}

// TestStandaloneBroker runs the workload twice against the same topic of a
// brokerlab standalone broker: the second run must ignore the first one's
// messages, which carry the same producer ids and sequences.
func TestStandaloneBroker(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := scenario.Topic{Name: "bench", Partitions: 2, Replication: 1, MinInsync: 1}
	for run := range 2 {
		res := produceConsume(ctx, t, addr, topic)
		t.Logf("run %d: %+v", run, res)
		// 500/s for 0.8 s; brokerlab's producer starts its schedule once it
		// has the route, a little after Start.
		if res.Sent < 100 || res.Sent > 400 || res.Acked != res.Sent || res.Delivered != res.Sent {
			t.Errorf("run %d: sent %d acked %d delivered %d, want up to 400 each", run, res.Sent, res.Acked, res.Delivered)
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.Reordered != 0 || res.Unexpected != 0 {
			t.Errorf("run %d: %+v", run, res)
		}
	}

	dep, err := Start(ctx, testEnv(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	if err := dep.CreateTopic(ctx, scenario.Topic{Name: "bench", Partitions: 3, Replication: 1}); !errors.Is(err, ErrTopicMismatch) {
		t.Errorf("3 partitions of a 2-partition topic: %v", err)
	}
	if _, err := dep.NewProducer(scenarios.ProducerConfig{Topic: "bench"}); err == nil {
		t.Error("producer of a topic CreateTopic refused")
	}
	for _, target := range []scenario.Target{{Kind: scenario.TargetBroker}, {Kind: scenario.TargetLeaderOf, Topic: "bench"}, {Kind: "controller", Index: -1}} {
		tg := target.String()
		step := scenario.Step{Fault: scenario.Fault{Action: scenario.ActionKill, Target: target}, Revert: -1}
		if _, err := dep.Apply(ctx, step, ""); !errors.Is(err, scenarios.ErrNotApplicable) {
			t.Errorf("kill %s: %v, want ErrNotApplicable", tg, err)
		}
	}
	if cp := dep.ControlPlane(); len(cp) != 0 {
		t.Errorf("control plane %+v", cp)
	}
}

func TestStartErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := Start(ctx, testEnv(t)); !errors.Is(err, ErrNoBootstrap) {
		t.Errorf("no bootstrap: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := Start(ctx, testEnv(t, closed)); !errors.Is(err, ErrUnreachable) {
		t.Errorf("closed port: %v", err)
	}
}

// TestRunner drives a scenario with a fault through the runner: the run
// completes, the checker is clean and the fault is reported as skipped.
func TestRunner(t *testing.T) {
	addr := startBroker(t)
	yaml := `
name: external-smoke
topologies: [kafka-external]
cluster: {brokers: 1, timings: fast}
topic: {name: smoke, partitions: 2, replication: 1, min_insync: 1}
workload: {producers: 1, consumers: 1, message_size: 128B, rate: 300, acks: all, duration: 2s, warmup: 500ms, drain: 5s}
faults:
  - {at: 1s, kill: broker 0}
`
	spec, err := scenario.Parse("external-smoke.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := scenarios.RunScenario(ctx, spec, scenarios.RunOptions{Out: out, Bootstrap: []string{addr}, Logger: testutil.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Topologies) != 1 {
		t.Fatalf("%d topology results", len(res.Topologies))
	}
	tr := res.Topologies[0]
	if tr.Error != "" {
		t.Fatal(tr.Error)
	}
	s := tr.Summary
	if s.Acked < 500 || s.Lost != 0 || s.Duplicated != 0 || s.Unexpected != 0 {
		t.Errorf("summary %+v", s)
	}
	if len(tr.Faults) != 1 || tr.Faults[0].Err == "" {
		t.Errorf("faults %+v, want one skipped kill", tr.Faults)
	}
	for _, f := range []string{report.ResultFile, report.ReportMarkdownFile, report.ReportHTMLFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
