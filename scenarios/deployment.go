package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/brokerlab/brokerlab/topology"
)

// A topology driver starts one topology's cluster under one runtime and
// gives the runner clients, faults and counters. A topology is described
// once, by the topology.Descriptor its own package registers; its drivers,
// one file per runtime (scenarios/inprocess, docker, or the reference
// system's own package), register with RegisterDriver. cmd/brokerlab
// imports the driver packages.

// Env is what a driver gets to start a cluster.
type Env struct {
	Spec scenario.Spec
	// Runtime is "inprocess", "docker" or "swarm".
	Runtime string
	// DataDir is a fresh directory for this deployment's data.
	DataDir string
	Logger  *slog.Logger
	// Bootstrap is the --bootstrap address list for kafka-external.
	Bootstrap []string
}

// Starter starts one topology's cluster.
type Starter func(ctx context.Context, env Env) (Deployment, error)

// Deployment is one running cluster of one topology.
type Deployment interface {
	// CreateTopic creates the scenario's topic and returns once every
	// partition has a leader clients can reach.
	CreateTopic(ctx context.Context, t scenario.Topic) error
	// NewProducer and NewConsumer build clients of this cluster.
	NewProducer(cfg ProducerConfig) (Producer, error)
	NewConsumer(cfg ConsumerConfig) (Consumer, error)
	// Apply executes one fault step. For a revert step, node is the node
	// (or link) its original step resolved to; otherwise "". It returns what
	// the target resolved to, in the form "broker 2", "etcd", "broker 0 -
	// broker 1". A step that does not apply to this topology returns
	// ErrNotApplicable (wrapped).
	Apply(ctx context.Context, step scenario.Step, node string) (resolved string, err error)
	// Detected returns when the control plane marked node dead, at or after
	// since; zero when it has not (yet) or the driver cannot tell.
	Detected(node string, since time.Time) time.Time
	// Converged returns when every client had switched to a new route for
	// what a fault on node at since affected; zero when unknown.
	Converged(node string, since time.Time) time.Time
	// ControlPlane returns cumulative control-plane counters, one sample
	// per request kind, taken now.
	ControlPlane() []analysis.CPSample
	// Close stops every node and client and removes what it created.
	Close() error
}

// ProducerConfig is one producer's share of the workload.
type ProducerConfig struct {
	ID    int32
	Topic string
	// Rate is this producer's messages per second; 0 is unbounded.
	Rate float64
	// Start is t=0 of the open-loop schedule; the producer sends from
	// Start until Start+Duration.
	Start    time.Time
	Duration time.Duration
	// Workload carries size, keys, acks, batching, retries and timeout.
	Workload scenario.Workload
	// Timings carries client timings (metadata max age, route poll).
	Timings scenario.Timings
}

// Producer sends on the open-loop schedule. Run returns after the schedule
// ends and every message has an outcome (outstanding sends end as Unknown
// after Workload.Timeout). Every message yields exactly one Send, passed
// to sink, which is safe for concurrent use.
type Producer interface {
	Run(ctx context.Context, sink func(history.Send)) error
}

// ConsumerConfig is one consumer; Partitions nil means every partition.
type ConsumerConfig struct {
	ID         int
	Topic      string
	Partitions []int32
	Timings    scenario.Timings
}

// Consumer reads from the start of its partitions until ctx ends, passing
// each delivered message to sink (safe for concurrent use). CaughtUp reports
// whether it has read everything the cluster will currently serve.
type Consumer interface {
	Run(ctx context.Context, sink func(history.Receive)) error
	CaughtUp(ctx context.Context) (bool, error)
}

// PartitionReader is a Consumer that can say how far it got in each of its
// partitions. The verification read uses it to report a partition it could
// not read to its end as unreadable rather than its messages as lost.
type PartitionReader interface {
	Reads() []analysis.PartitionRead
	// LogReaches reports whether the partition's log extends to offset
	// (Kafka answers a fetch past the log end with OFFSET_OUT_OF_RANGE,
	// one past the high watermark but within the log with nothing).
	LogReaches(ctx context.Context, partition int32, offset int64) (bool, error)
}

// ErrNotApplicable marks a fault step that a topology cannot take (for
// example `controller` under nameserver): it is skipped and reported.
var ErrNotApplicable = fmt.Errorf("scenarios: fault does not apply to this topology")

var (
	registryMu sync.Mutex
	registry   = map[string]Starter{}
)

// RegisterDriver makes the driver of topology under runtime available to
// the runner; call it from an init function. A second driver for the same
// runtime and topology is a programming error and panics.
func RegisterDriver(runtime string, topology scenario.Topology, s Starter) {
	registryMu.Lock()
	defer registryMu.Unlock()
	key := runtime + "/" + topology
	if _, dup := registry[key]; dup || s == nil {
		panic("scenarios: RegisterDriver " + key + ": registered twice or nil")
	}
	registry[key] = s
}

var preparers = map[string]func(context.Context, *slog.Logger) error{}

// RegisterPreparer gives a runtime a step the runner takes once, before the
// first topology and outside its set-up bound (the container runtimes
// build their image there: a cold build on a loaded machine takes longer
// than a cluster may to start). Call it from an init function; a second
// preparer for one runtime panics.
func RegisterPreparer(runtime string, prepare func(context.Context, *slog.Logger) error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := preparers[runtime]; dup || prepare == nil {
		panic("scenarios: RegisterPreparer " + runtime + ": registered twice or nil")
	}
	preparers[runtime] = prepare
}

func lookupPreparer(runtime string) func(context.Context, *slog.Logger) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	return preparers[runtime]
}

// Drivers returns the registered "runtime/topology" pairs, sorted.
func Drivers() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	return slices.Sorted(maps.Keys(registry))
}

// lookupDriver returns the driver for a runtime and topology.
func lookupDriver(runtime string, topo scenario.Topology) (Starter, error) {
	if _, ok := topology.Lookup(topo); !ok {
		return nil, fmt.Errorf("scenarios: no topology %q registered (have %v)", topo, scenario.KnownTopologies())
	}
	registryMu.Lock()
	s, ok := registry[runtime+"/"+topo]
	registryMu.Unlock()
	if ok {
		return s, nil
	}
	return nil, fmt.Errorf("scenarios: no driver for topology %q under runtime %q (have %v)", topo, runtime, Drivers())
}
