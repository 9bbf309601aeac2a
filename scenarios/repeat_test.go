package scenarios

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
)

func TestRunOrderInterleaves(t *testing.T) {
	var got []string
	for _, p := range RunOrder([]scenario.Topology{"a", "b", "c"}, 2, 2) {
		got = append(got, p.Topology+string(rune('0'+p.Step))+string(rune('1'+p.Repeat)))
	}
	// topology, rate step, repeat: every topology's repeat 1 before any repeat 2.
	want := []string{"a01", "a11", "b01", "b11", "c01", "c11", "a02", "a12", "b02", "b12", "c02", "c12"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if n := len(RunOrder([]scenario.Topology{"a"}, 1, 0)); n != 1 {
		t.Errorf("repeat 0 runs %d times, want 1", n)
	}
}

const repeatRuntime = "runner-test-repeat"

var (
	repeatMu   sync.Mutex
	repeatDeps []*recordingDeployment
)

func init() {
	RegisterDriver(repeatRuntime, "kafka-external", func(_ context.Context, env Env) (Deployment, error) {
		repeatMu.Lock()
		defer repeatMu.Unlock()
		d := &recordingDeployment{dataDir: env.DataDir}
		repeatDeps = append(repeatDeps, d)
		return d, nil
	})
}

type recordingDeployment struct {
	stubDeployment
	dataDir string
	mu      sync.Mutex
	applied []string
}

type idleProducer struct{}

func (idleProducer) Run(context.Context, func(history.Send)) error { return nil }

func (d *recordingDeployment) NewProducer(ProducerConfig) (Producer, error) {
	return idleProducer{}, nil
}
func (d *recordingDeployment) NewConsumer(ConsumerConfig) (Consumer, error) {
	d.running.Add(1)
	return blockingConsumer{blockingClient{&d.stubDeployment}}, nil
}
func (d *recordingDeployment) Apply(_ context.Context, st scenario.Step, node string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = append(d.applied, string(st.Action)+" "+st.Target.String())
	if node != "" {
		return node, nil
	}
	return st.Target.String(), nil
}

// TestRunnerFiresEachRepeatsSchedule: with repeat: 2 and a random
// schedule, the runner starts a deployment per run (fresh data directory)
// and applies to each exactly the faults its repeat's seed draws, each
// followed by its undo; results record the seed.
func TestRunnerFiresEachRepeatsSchedule(t *testing.T) {
	spec, err := scenario.Parse("rep.yaml", []byte("name: rep\ntopologies: [kafka-external]\n"+
		"topic: {partitions: 3, replication: 1, min_insync: 1}\n"+
		"workload: {producers: 1, consumers: 1, duration: 2s, warmup: 1s, drain: 1s}\n"+
		"repeat: 2\nrandom: {seed: 5, every: 500ms, start: 200ms, for: 200ms, faults: [kill leader, pause broker]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	repeatMu.Lock()
	repeatDeps = nil
	repeatMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := RunScenario(ctx, spec, RunOptions{Out: t.TempDir(), Runtime: repeatRuntime})
	if err != nil {
		t.Fatal(err)
	}
	repeatMu.Lock()
	deps := repeatDeps
	repeatMu.Unlock()
	if len(deps) != 2 || len(res.Topologies) != 2 || deps[0].dataDir == deps[1].dataDir {
		t.Fatalf("%d deployments, %d results, want 2 each with their own data directories", len(deps), len(res.Topologies))
	}
	for r, d := range deps {
		var want []string
		for _, st := range spec.TimelineFor(r) {
			want = append(want, string(st.Action)+" "+st.Target.String())
		}
		d.mu.Lock()
		got := d.applied
		d.mu.Unlock()
		if len(want) != 8 || !reflect.DeepEqual(got, want) {
			t.Errorf("repeat %d applied %v, its seed draws %v", r+1, got, want)
		}
		tr := res.Topologies[r]
		if tr.Repeat != r+1 || tr.FaultSeed == nil || *tr.FaultSeed != 5+uint64(r) {
			t.Errorf("result %d: repeat %d, seed %v; want %d and %d", r, tr.Repeat, tr.FaultSeed, r+1, 5+r)
		}
	}
}
