package scenarios

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

// clientFailRuntime is a runtime of the runner's own tests: its driver
// builds stubDeployments whose n-th producer or consumer fails to build.
const clientFailRuntime = "runner-test-client-failure"

var (
	stubMu   sync.Mutex
	stubNext *stubDeployment
)

func init() {
	RegisterDriver(clientFailRuntime, "kafka-external", func(context.Context, Env) (Deployment, error) {
		stubMu.Lock()
		defer stubMu.Unlock()
		return stubNext, nil
	})
}

// stubDeployment is an in-memory stand-in for one piece under test (the
// runner's client lifecycle): clients block until their context ends, and
// Close records how many were still running.
type stubDeployment struct {
	failProducer, failConsumer int // index that fails to build, -1 none
	running                    atomic.Int32
	runningAtClose             atomic.Int32
	closed                     atomic.Bool
}

type blockingClient struct{ d *stubDeployment }

// run blocks until ctx ends. A client counts as running from its build
// (the runner always runs what it built) until Run returns.
func (c blockingClient) run(ctx context.Context) error {
	defer c.d.running.Add(-1)
	<-ctx.Done()
	return ctx.Err()
}

func (c blockingClient) Run(ctx context.Context, _ func(history.Send)) error { return c.run(ctx) }

type blockingConsumer struct{ blockingClient }

func (c blockingConsumer) Run(ctx context.Context, _ func(history.Receive)) error { return c.run(ctx) }

func (c blockingConsumer) CaughtUp(context.Context) (bool, error) { return true, nil }

func (d *stubDeployment) CreateTopic(context.Context, scenario.Topic) error { return nil }

func (d *stubDeployment) NewProducer(cfg ProducerConfig) (Producer, error) {
	if int(cfg.ID) == d.failProducer {
		return nil, errors.New("no producer today")
	}
	d.running.Add(1)
	return blockingClient{d}, nil
}

func (d *stubDeployment) NewConsumer(cfg ConsumerConfig) (Consumer, error) {
	if cfg.ID == d.failConsumer {
		return nil, errors.New("no consumer today")
	}
	d.running.Add(1)
	return blockingConsumer{blockingClient{d}}, nil
}

func (d *stubDeployment) Apply(context.Context, scenario.Step, string) (string, error) {
	return "", ErrNotApplicable
}

func (d *stubDeployment) Detected(string, time.Time) time.Time { return time.Time{} }

func (d *stubDeployment) Converged(string, time.Time) time.Time { return time.Time{} }

func (d *stubDeployment) ControlPlane() []analysis.CPSample { return nil }

func (d *stubDeployment) Close() error {
	d.runningAtClose.Store(d.running.Load())
	d.closed.Store(true)
	return nil
}

// TestRunStopsClientsWhenOneFailsToStart: when producer or consumer i
// cannot be built, the clients started before it are stopped and waited
// for before the deployment closes, and none outlives the run.
func TestRunStopsClientsWhenOneFailsToStart(t *testing.T) {
	for _, c := range []struct {
		name                       string
		failProducer, failConsumer int
		want                       string
	}{
		{"producer", 2, -1, "producer 2"},
		{"consumer", -1, 1, "consumer 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, err := scenario.Parse("stub.yaml", []byte("name: stub\ntopologies: [kafka-external]\n"+
				"topic: {partitions: 3, replication: 1, min_insync: 1}\n"+
				"workload: {producers: 3, consumers: 2, duration: 2s, warmup: 1s, drain: 1s}\n"))
			if err != nil {
				t.Fatal(err)
			}
			d := &stubDeployment{failProducer: c.failProducer, failConsumer: c.failConsumer}
			stubMu.Lock()
			stubNext = d
			stubMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := RunScenario(ctx, spec, RunOptions{Out: t.TempDir(), Runtime: clientFailRuntime})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Topologies) != 1 || !strings.Contains(res.Topologies[0].Error, c.want) {
				t.Fatalf("results %+v, want one failed with %q", res.Topologies, c.want)
			}
			if !d.closed.Load() {
				t.Fatal("deployment not closed")
			}
			if n := d.runningAtClose.Load(); n != 0 {
				t.Errorf("%d clients still running when the deployment closed", n)
			}
			if n := d.running.Load(); n != 0 {
				t.Errorf("%d clients still running after the run", n)
			}
		})
	}
}
