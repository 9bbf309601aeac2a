package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// needEngine skips the test, with one line, where no Docker engine answers.
func needEngine(t *testing.T) *dockertest.Pool {
	t.Helper()
	pool, err := image.Connect(context.Background())
	if err != nil {
		t.Skipf("docker: no engine answers at %s: %v", image.Endpoint(), err)
	}
	return pool
}

// imageBuildTimeout bounds the one image build of the test binary. A cold
// build of every dependency with CGO_ENABLED=0 takes about 2 minutes on 2
// idle cores and much longer while other packages' tests run, so it must
// not count against any one test's deadline.
const imageBuildTimeout = 8 * time.Minute

var testImg struct {
	once sync.Once
	img  image.Image
	err  error
}

// testImage builds (or finds) the brokerlab image once per test binary,
// under its own deadline, and fails the test if that is impossible.
func testImage(t *testing.T, pool *dockertest.Pool) image.Image {
	t.Helper()
	testImg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
		defer cancel()
		began := time.Now()
		testImg.img, testImg.err = EnsureImage(ctx, pool, testLogger(t))
		t.Logf("image %s ready in %v (built: %v)", testImg.img.Ref(), time.Since(began).Round(time.Millisecond), testImg.img.Built)
	})
	if testImg.err != nil {
		t.Fatal(testImg.err)
	}
	return testImg.img
}

// testLogger routes logs at warn and above to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testSpec is 3 brokers, RF 3, min in-sync 2, acks=all, fast timings.
func testSpec(t *testing.T, topology string) scenario.Spec {
	t.Helper()
	s := scenario.DefaultSpec()
	s.Name = "docker-test"
	s.Topologies = []string{topology}
	s.Runtime = scenario.RuntimeDocker
	s.Cluster.Brokers = 3
	s.Cluster.Nodes = map[string]int{"etcd": 3, "nameservers": 2, "controllers": 3}
	s.Cluster.Profile = scenario.ProfileFast
	s.Topic.Partitions, s.Topic.Replication, s.Topic.MinInsync = 3, 3, 2
	s.Topic.ReplicationMode = scenario.ReplSync
	s.Workload.Rates = []float64{500}
	s.Workload.Timeout = 5 * time.Second
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// deploy starts a topology's docker deployment and checks, at cleanup, that
// Close removed every container and the network.
func deploy(t *testing.T, spec scenario.Spec) (scenarios.Deployment, *base) {
	t.Helper()
	pool := needEngine(t)
	start := starters(newContainers)[spec.Topologies[0]]
	testImage(t, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	dep, err := start(ctx, scenarios.Env{Spec: spec, Runtime: scenario.RuntimeDocker, DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var b *base
	switch d := dep.(type) {
	case *coordinatorDeployment:
		b = d.base
	case *nameServerDeployment:
		b = d.base
	case *gossipDeployment:
		b = d.base
	}
	ctrs := b.l.(*containers)
	t.Logf("%s: %d nodes up in %v (run %s)", spec.Topologies[0], len(b.names()), time.Since(began).Round(time.Millisecond), ctrs.runID)
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range b.names() {
				t.Logf("--- %s log tail:\n%s", name, b.logs(name, 15))
			}
		}
		if err := dep.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		assertGone(t, pool, ctrs.runID, ctrs.network.ID)
	})
	return dep, b
}

// assertGone fails unless no container of run and no network id is left.
func assertGone(t *testing.T, pool *dockertest.Pool, run, networkID string) {
	t.Helper()
	cts, err := pool.Client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelRun + "=" + run}}})
	if err != nil {
		t.Errorf("list containers: %v", err)
	}
	for _, ct := range cts {
		t.Errorf("container %s (%s) of run %s is still there", ct.Names, ct.State, run)
	}
	if nw, err := pool.Client.NetworkInfo(networkID); err == nil {
		t.Errorf("network %s of run %s is still there", nw.Name, run)
	}
}

// fault is one step of a test workload, at an offset from the start.
type fault struct {
	at     time.Duration
	action scenario.Action
	target string // a target, or "" to revert the previous fault
	// clients is the isolate's clients option ("" or scenario.ClientsKeep).
	clients string
	// after, when set, runs right after the fault is applied, with when it
	// was applied and what it resolved to; it must return before the next
	// fault is due.
	after func(at time.Time, node string)
}

// outcome is what a test workload recorded.
type outcome struct {
	sends    []history.Send
	receives []history.Receive
	check    analysis.CheckResult
	faultAt  []time.Time
	nodes    []string // what each fault resolved to
	start    time.Time
	caughtUp bool
}

// runLoad creates the topic, consumes every partition, produces at rate
// for duration with the faults fired on schedule, drains, and checks.
func runLoad(t *testing.T, dep scenarios.Deployment, spec scenario.Spec, rate float64, duration time.Duration, faults []fault) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	if err := dep.CreateTopic(ctx, spec.Topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	var mu sync.Mutex
	var out outcome
	timings := spec.Timings()
	cons, err := dep.NewConsumer(scenarios.ConsumerConfig{ID: 0, Topic: spec.Topic.Name, Timings: timings})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		_ = cons.Run(cctx, func(r history.Receive) { mu.Lock(); out.receives = append(out.receives, r); mu.Unlock() })
	}()
	out.start = time.Now().Add(200 * time.Millisecond)
	w := spec.Workload
	prod, err := dep.NewProducer(scenarios.ProducerConfig{ID: 0, Topic: spec.Topic.Name, Rate: rate, Start: out.start, Duration: duration, Workload: w, Timings: timings})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- prod.Run(ctx, func(s history.Send) { mu.Lock(); out.sends = append(out.sends, s); mu.Unlock() })
	}()
	var last string
	for _, f := range faults {
		time.Sleep(time.Until(out.start.Add(f.at))) // the fault schedule
		step := scenario.Step{Revert: -1, Fault: scenario.Fault{Action: f.action, Clients: f.clients}}
		node := ""
		if f.target == "" {
			node = last
			step.Revert = 0
		} else if step.Target, err = scenario.ParseTarget(f.target); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		resolved, err := dep.Apply(ctx, step, node)
		if err != nil {
			t.Fatalf("%s %s: %v", f.action, f.target, err)
		}
		t.Logf("t=%v %s %s -> %s (took %v)", at.Sub(out.start).Round(time.Millisecond), f.action, f.target, resolved, time.Since(at).Round(time.Millisecond))
		out.faultAt, out.nodes = append(out.faultAt, at), append(out.nodes, resolved)
		last = resolved
		if f.after != nil {
			f.after(at, resolved)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("producer: %v", err)
	}
	drain, cancelDrain := context.WithTimeout(ctx, 30*time.Second)
	_ = poll(drain, 100*time.Millisecond, func() error {
		ok, err := cons.CaughtUp(drain)
		if err != nil || !ok {
			return fmt.Errorf("not caught up (%v)", err)
		}
		out.caughtUp = true
		return nil
	})
	cancelDrain()
	stopConsumer()
	cwg.Wait()
	mu.Lock()
	defer mu.Unlock()
	out.check = analysis.Check(out.sends, out.receives, 5)
	c := out.check
	t.Logf("sent %d: acked %d, failed %d, unknown %d; delivered %d; lost %d, duplicated %d, reordered %d, indeterminate %d",
		c.Sent, c.Acked, c.Failed, c.Unknown, c.Delivered, c.Lost, c.Duplicated, c.Reordered, c.Indeterminate)
	return out
}

// mustBeSafe fails the test when an acknowledged message was lost,
// nothing was acknowledged or the consumer did not catch up.
func (o outcome) mustBeSafe(t *testing.T) {
	t.Helper()
	if o.check.Lost != 0 {
		t.Errorf("%d acknowledged messages lost, e.g. %+v", o.check.Lost, o.check.LostSamples)
	}
	if o.check.Acked == 0 {
		t.Fatal("nothing was acknowledged")
	}
	if !o.caughtUp {
		t.Errorf("the consumer did not catch up after the run")
	}
}

// outage returns partition p's write outage after at: from the first send
// to p handed to the network after at that failed (or went unanswered) to
// the acknowledgement of the first send after that one. ok is false when no
// send failed; end is zero when no send succeeded afterwards.
func (o outcome) outage(at time.Time, p int32) (begin, end time.Time, ok bool) {
	for _, s := range o.sends {
		if s.Partition == p && s.Outcome != history.Acked && s.Sent.After(at) && (begin.IsZero() || s.Sent.Before(begin)) {
			begin = s.Sent
		}
	}
	if begin.IsZero() {
		return begin, end, false
	}
	for _, s := range o.sends {
		if s.Partition == p && s.Outcome == history.Acked && s.Sent.After(begin) && (end.IsZero() || s.Done.Before(end)) {
			end = s.Done
		}
	}
	return begin, end, true
}

// firstAck returns the first acknowledgement of a send handed to the
// network after at.
func (o outcome) firstAck(at time.Time) (time.Time, bool) {
	var first time.Time
	for _, s := range o.sends {
		if s.Outcome == history.Acked && s.Sent.After(at) && (first.IsZero() || s.Done.Before(first)) {
			first = s.Done
		}
	}
	return first, !first.IsZero()
}

// longestAckGap is the longest time between consecutive acknowledgements
// (by Done) in [from, to] of partition p, or of the topic when p < 0: its
// write unavailability.
func (o outcome) longestAckGap(p int32, from, to time.Time) time.Duration {
	var dones []time.Time
	for _, s := range o.sends {
		if s.Outcome == history.Acked && (p < 0 || s.Partition == p) && !s.Done.Before(from) && !s.Done.After(to) {
			dones = append(dones, s.Done)
		}
	}
	sort.Slice(dones, func(i, j int) bool { return dones[i].Before(dones[j]) })
	prev, gap := from, time.Duration(0)
	for _, d := range dones {
		gap = max(gap, d.Sub(prev))
		prev = d
	}
	return max(gap, to.Sub(prev))
}

// awaitNewLeader polls until a broker the runner reaches names a leader of
// topic/0 other than the broker named old, and returns when; zero when ctx
// ends first.
func awaitNewLeader(ctx context.Context, b *base, topic, old string) time.Time {
	oldID, _ := nodes.BrokerID(old)
	var at time.Time
	_ = poll(ctx, 50*time.Millisecond, func() error {
		pm, ok := b.partition(ctx, topic, 0)
		if !ok || pm.Leader < 0 || pm.Leader == oldID {
			return errors.New("no new leader")
		}
		at = time.Now()
		return nil
	})
	return at
}

// since formats t - from, or "n/a" for a zero t.
func since(t, from time.Time) string {
	if t.IsZero() {
		return "n/a"
	}
	return t.Sub(from).Round(time.Millisecond).String()
}
