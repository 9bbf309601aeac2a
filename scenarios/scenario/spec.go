package scenario

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/brokerlab/brokerlab/topology"
)

// ErrInvalidSpec is wrapped by every error about a scenario's content.
var ErrInvalidSpec = errors.New("scenarios: invalid scenario")

// SpecError is one problem in a scenario file: the file, the line (0 when
// unknown, e.g. for a Spec built in Go), the field path and what is wrong.
// Error() reads "quickstart.yaml:12: workload.rate: ...".
type SpecError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// Topology names a control plane (or a reference system) a scenario runs on:
// a name registered with package topology.
type Topology = string

// KnownTopologies lists every registered topology in the order reports show
// them (package topology's registry; a binary knows the topologies whose
// packages it links).
func KnownTopologies() []Topology { return topology.Names() }

// Runtimes.
const (
	RuntimeInProcess = "inprocess" // every node in this process, loopback TCP
	RuntimeDocker    = "docker"    // one container per node (dockertest)
	RuntimeSwarm     = "swarm"     // one swarm service per node (package swarm)
)

// Acks values of Workload.Acks.
const (
	AcksNone   = 0
	AcksLeader = 1
	AcksAll    = -1
)

// Spec is a parsed, validated scenario. Parse fills every field, applying
// the defaults of DefaultSpec to fields the file leaves out. Durations are
// time.Duration (nanoseconds in result.json); sizes are bytes; rates are
// messages per second.
type Spec struct {
	// Name identifies the scenario in reports and result directories
	// ([a-z0-9._-]); default: the file name without extension.
	Name string `json:"name"`
	// Description is free text shown at the top of reports.
	Description string `json:"description,omitempty"`
	// Topologies are run back to back, in this order.
	Topologies []Topology `json:"topologies"`
	// Runtime is RuntimeInProcess (default), RuntimeDocker or RuntimeSwarm.
	Runtime  string   `json:"runtime"`
	Cluster  Cluster  `json:"cluster"`
	Topic    Topic    `json:"topic"`
	Workload Workload `json:"workload"`
	// Faults in firing order (sorted by At; ties keep file order).
	Faults []Fault `json:"faults"`
	// Random, when set, draws further faults from a set onto the
	// timeline from a seed (see RandomFaults).
	Random *RandomFaults `json:"random,omitempty"`
	// Repeat runs every topology (and every rate of a sweep) this many
	// times, a fresh cluster each time, interleaved (A B C A B C) so drift
	// of the machine falls on every topology alike; reports give each
	// figure's spread over the repeats. 0 and 1 both mean one run.
	Repeat int `json:"repeat,omitempty"`
	// External configures the kafka-external topology.
	External External `json:"external"`
	// File is the path the spec was parsed from, for messages.
	File string `json:"file,omitempty"`

	lines map[string]int // field path -> line, for Validate's messages
}

// Cluster is the shape of the system under test.
type Cluster struct {
	// Brokers is the number of broker nodes, ids 0..Brokers-1.
	Brokers int `json:"brokers"`
	// Nodes counts the members of every control-plane role by its cluster
	// field ("nameservers", "etcd"), as the registered topologies declare
	// them (topology.Role.Field). DefaultSpec fills every registered field
	// with its default. In YAML and JSON the fields sit beside brokers.
	Nodes map[string]int `json:"-"`
	// Profile is the timing profile: "production" or "fast".
	Profile string `json:"timings"`
	// Overrides replace single values of the profile; zero keeps the
	// profile's value. Use Spec.Timings for the effective values.
	Overrides Timings `json:"timing_overrides"`
	// Fsync is every broker's fsync policy: "never" (page cache only, the
	// default), "interval" (every FsyncInterval) or "always" (before an
	// append returns). What a power-loss fault takes depends on it.
	Fsync string `json:"fsync"`
	// FsyncInterval is the period of policy "interval" (default 1 s).
	FsyncInterval time.Duration `json:"fsync_interval"`
	// Placement pins a role's nodes to machines where a runtime has
	// several (the swarm runtime): by the role's cluster key ("brokers",
	// a registered role field such as "nameservers", or "clients" for the
	// load generators), a list of selectors, each a machine's host name,
	// its swarm node id, or label=value of its node labels. The role's
	// members go round robin over the list (member i on selector i mod
	// len), and over the machines a selector matches. Roles it leaves out
	// are spread as the runtime does by default. Single-machine runtimes
	// ignore it.
	Placement map[string][]string `json:"placement,omitempty"`
}

// Placement keys besides the registered role fields.
const (
	PlaceBrokers = "brokers"
	PlaceClients = "clients"
)

// PlacementOf returns the selectors for the nodes of role, a fault-target
// word ("broker", "nameserver", "etcd", "controller") or "client"; nil
// when the scenario leaves the role to the runtime.
func (c Cluster) PlacementOf(role string) []string {
	switch role {
	case "broker":
		return c.Placement[PlaceBrokers]
	case "client":
		return c.Placement[PlaceClients]
	}
	for _, d := range topology.All() {
		for _, r := range d.Roles {
			if r.Target == role && r.Field != "" {
				return c.Placement[r.Field]
			}
		}
	}
	return nil
}

// placementKeys are the keys cluster.placement takes.
func placementKeys() []string {
	keys := []string{PlaceBrokers, PlaceClients}
	for _, f := range topology.Fields() {
		keys = append(keys, f.Name)
	}
	return keys
}

// ValidSelector reports whether sel can name machines: a host name or node
// id, or label=value, without spaces, at most 256 bytes.
func ValidSelector(sel string) bool {
	if sel == "" || len(sel) > 256 || strings.ContainsFunc(sel, unicode.IsSpace) {
		return false
	}
	if k, v, ok := strings.Cut(sel, "="); ok {
		return k != "" && v != ""
	}
	return true
}

// Fsync policies of Cluster.Fsync.
const (
	FsyncNever    = "never"
	FsyncInterval = "interval"
	FsyncAlways   = "always"
)

// Topic is the one topic a scenario writes.
type Topic struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replication"`
	// MinInsync is min.insync.replicas (acks=all needs this many in the
	// ISR); default min(2, Replication).
	MinInsync int `json:"min_insync"`
	// Fanout is how followers replicate: "star" (all fetch from the leader)
	// or "chain" (each fetches from the previous replica).
	Fanout string `json:"fanout"`
	// UncleanElection lets an out-of-sync replica become leader (coordinator).
	UncleanElection bool `json:"unclean_election"`
	// ReplicationMode is "sync" (SYNC_MASTER) or "async" (ASYNC_MASTER),
	// for the nameserver topology.
	ReplicationMode string `json:"replication_mode"`
}

// Fanout and replication-mode values.
const (
	FanoutStar  = "star"
	FanoutChain = "chain"
	ReplSync    = "sync"
	ReplAsync   = "async"
)

// Workload is the open-loop load every topology receives.
type Workload struct {
	Producers int `json:"producers"`
	Consumers int `json:"consumers"`
	// MessageSize is the payload size in bytes (headers not included).
	MessageSize int `json:"message_size"`
	// Keys is the number of distinct message keys; 0 sends without keys
	// (the client spreads messages over partitions).
	Keys int `json:"keys"`
	// Rates are total target rates in messages per second, over all
	// producers; 0 means unbounded. One entry is one run per topology; a
	// sweep (several entries) runs each rate in turn.
	Rates []float64 `json:"rates"`
	// RateSearch, when set, replaces Rates: each topology's highest
	// sustainable rate is searched for (see RateSearch).
	RateSearch *RateSearch `json:"rate_search,omitempty"`
	// Acks is 0, 1 or -1 (all).
	Acks int `json:"acks"`
	// AcksSweep, when set (acks: [all, 1] in a file), runs every topology
	// once per entry, in turn, with Acks set to it; Acks is its first.
	AcksSweep []int `json:"acks_sweep,omitempty"`
	// BatchSize is the most messages per produce request.
	BatchSize int `json:"batch_size"`
	// Linger is how long the client waits to fill a batch.
	Linger time.Duration `json:"linger"`
	// Retries is how many times a failed send is retried.
	Retries int `json:"retries"`
	// UnorderedRetries lets a client whose retries are its own (the
	// JetStream driver) retry each failed message on its own timer while
	// later messages of the partition go ahead, which reorders the
	// partition. By default such a client holds a partition's later
	// messages while an earlier one is retried and resends in order, as a
	// Kafka idempotent producer does. Results say which ran
	// (TopologyResult.ProducerRetries).
	UnorderedRetries bool `json:"unordered_retries,omitempty"`
	// Timeout bounds one send including retries; past it the send is
	// recorded as Unknown.
	Timeout time.Duration `json:"timeout"`
	// Duration is how long producers send, warm-up included.
	Duration time.Duration `json:"duration"`
	// Warmup is excluded from latency and rate figures.
	Warmup time.Duration `json:"warmup"`
	// Drain bounds the wait for consumers to catch up after sending stops.
	Drain time.Duration `json:"drain"`
}

// External configures the kafka-external topology.
type External struct {
	// Bootstrap lists host:port of the external cluster's brokers.
	Bootstrap []string `json:"bootstrap,omitempty"`
}

// DefaultSpec returns the defaults applied to every field a scenario file
// leaves out. This is the one place defaults are defined.
func DefaultSpec() Spec {
	return Spec{
		Topologies: defaultTopologies(),
		Runtime:    RuntimeInProcess,
		Cluster: Cluster{
			Brokers:       3,
			Nodes:         defaultNodes(),
			Profile:       ProfileProduction,
			Fsync:         FsyncNever,
			FsyncInterval: time.Second,
		},
		Topic: Topic{
			Name:            "bench",
			Partitions:      3,
			Replication:     3,
			MinInsync:       0, // derived: min(2, replication)
			Fanout:          FanoutStar,
			ReplicationMode: ReplSync,
		},
		Workload: Workload{
			Producers:   1,
			Consumers:   1,
			MessageSize: 1024,
			Rates:       []float64{1000},
			Acks:        AcksAll,
			BatchSize:   100,
			Linger:      5 * time.Millisecond,
			Retries:     3,
			Timeout:     10 * time.Second,
			Duration:    60 * time.Second,
			Warmup:      5 * time.Second,
			Drain:       30 * time.Second,
		},
	}
}

// defaultTopologies are the registered topologies marked Default.
func defaultTopologies() []Topology {
	var out []Topology
	for _, d := range topology.All() {
		if d.Default {
			out = append(out, d.Name)
		}
	}
	return out
}

// defaultNodes holds every registered cluster field at its default.
func defaultNodes() map[string]int {
	out := map[string]int{}
	for _, f := range topology.Fields() {
		out[f.Name] = f.Default
	}
	return out
}

// Count returns the members of the role counted by a cluster field
// ("nameservers"); 0 for a field nobody registered.
func (c Cluster) Count(field string) int { return c.Nodes[field] }

// Shape is what the scenario asks of a topology's cluster.
func (s Spec) Shape() topology.Shape {
	return topology.Shape{Brokers: s.Cluster.Brokers, Nodes: maps.Clone(s.Cluster.Nodes),
		Partitions: s.Topic.Partitions, Replication: s.Topic.Replication}
}

// Bounds that keep a typo from asking for a run no machine can do.
const (
	maxNodes       = 1000
	maxPartitions  = 100000
	maxClients     = 10000
	maxMessageSize = 16 << 20
	maxRate        = 1e9
	maxDuration    = 7 * 24 * time.Hour
	maxRateSteps   = 100
	maxFaults      = 10000
)

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// Timings returns the effective timing values: the profile's with the
// overrides applied. An unknown profile yields the production values.
func (s Spec) Timings() Timings {
	base, ok := Profile(s.Cluster.Profile)
	if !ok {
		base, _ = Profile(ProfileProduction)
	}
	return base.Override(s.Cluster.Overrides)
}

// Rate returns the first (or only) target rate; 0 means unbounded.
func (s Spec) Rate() float64 {
	if len(s.Workload.Rates) == 0 {
		return 0
	}
	return s.Workload.Rates[0]
}

// Has reports whether the scenario runs topology t.
func (s Spec) Has(t Topology) bool {
	for _, x := range s.Topologies {
		if x == t {
			return true
		}
	}
	return false
}

// Line returns the line a field path (e.g. "workload.rate", "faults[2].at")
// was read from, or 0. Parent paths stand in for children Parse did not
// record, so "faults[2].target" falls back to the line of faults[2].
func (s Spec) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := s.lines[p]; ok {
			return l
		}
		var i int
		if n, _ := fmt.Sscanf(p, "faults[%d]", &i); n == 1 && p == fmt.Sprintf("faults[%d]", i) && i >= 0 && i < len(s.Faults) && s.Faults[i].Line > 0 {
			return s.Faults[i].Line
		}
	}
	return 0
}

// parentPath strips the last ".field" or "[i]" of a field path.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// validator collects SpecErrors with the lines Parse recorded.
type validator struct {
	s    *Spec
	errs []error
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &SpecError{File: v.s.File, Line: v.s.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) intRange(path string, x, lo, hi int) {
	if x < lo || x > hi {
		v.fail(path, "%d out of range [%d, %d]", x, lo, hi)
	}
}

func (v *validator) durRange(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.fail(path, "%v out of range [%v, %v]", d, lo, hi)
	}
}

func (v *validator) oneOf(path, x string, allowed ...string) {
	for _, a := range allowed {
		if x == a {
			return
		}
	}
	v.fail(path, "%q is not one of %s", x, strings.Join(allowed, ", "))
}

// Validate checks every field and the relations between them. Parse calls
// it; call it yourself on a Spec built or changed in Go. The error joins
// one *SpecError per problem.
func (s Spec) Validate() error {
	v := &validator{s: &s}
	if !nameRE.MatchString(s.Name) {
		v.fail("name", "%q: want lower-case letters, digits, '.', '_' or '-' (at most 128)", s.Name)
	}
	s.validateTopologies(v)
	v.oneOf("runtime", s.Runtime, RuntimeInProcess, RuntimeDocker, RuntimeSwarm)
	s.validateCluster(v)
	s.validateTopic(v)
	s.validateWorkload(v)
	s.validateFaults(v)
	s.validateRepeat(v)
	s.validateRandom(v)
	return errors.Join(v.errs...)
}

func (s Spec) validateTopologies(v *validator) {
	if len(s.Topologies) == 0 {
		v.fail("topologies", "at least one topology is needed (%s)", strings.Join(KnownTopologies(), ", "))
	}
	seen := map[string]bool{}
	for i, t := range s.Topologies {
		path := fmt.Sprintf("topologies[%d]", i)
		v.oneOf(path, t, KnownTopologies()...)
		if seen[t] {
			v.fail(path, "%q listed twice", t)
		}
		seen[t] = true
	}
}

func (s Spec) validateCluster(v *validator) {
	c := s.Cluster
	v.intRange("cluster.brokers", c.Brokers, 1, maxNodes)
	switch c.Fsync {
	case FsyncNever, FsyncAlways:
	case FsyncInterval:
		if c.FsyncInterval <= 0 {
			v.fail("cluster.fsync_interval", "%v: fsync interval needs a positive period", c.FsyncInterval)
		}
	default:
		v.fail("cluster.fsync", "%q: want never, interval or always", c.Fsync)
	}
	for _, f := range slices.Sorted(maps.Keys(c.Nodes)) {
		v.intRange("cluster."+f, c.Nodes[f], 0, maxNodes)
	}
	keys := placementKeys()
	for _, k := range slices.Sorted(maps.Keys(c.Placement)) {
		path := "cluster.placement." + k
		if !slices.Contains(keys, k) {
			v.fail(path, "unknown role (known: %s)", strings.Join(keys, ", "))
			continue
		}
		sels := c.Placement[k]
		if len(sels) == 0 || len(sels) > maxNodes {
			v.fail(path, "want 1 to %d machine selectors, got %d", maxNodes, len(sels))
		}
		for i, sel := range sels {
			if !ValidSelector(sel) {
				v.fail(fmt.Sprintf("%s[%d]", path, i), "%q: want a host name, a node id or label=value, without spaces", sel)
			}
		}
	}
	shape := s.Shape()
	for _, t := range s.Topologies {
		if d, ok := topology.Lookup(t); ok {
			for _, p := range d.Check(shape) {
				v.fail(p.Field, "%s", p.Msg)
			}
		}
	}
	if _, ok := Profile(c.Profile); !ok {
		v.fail("cluster.timings", "unknown profile %q (want %s or %s)", c.Profile, ProfileProduction, ProfileFast)
	}
	t := s.Timings()
	for _, f := range t.fields() {
		path := "cluster.timings." + f.key
		if *f.d <= 0 || *f.d > maxDuration {
			v.fail(path, "%v out of range (0, %v]", *f.d, maxDuration)
		}
	}
	if t.Heartbeat >= t.BrokerExpiry {
		v.fail("cluster.timings.heartbeat", "heartbeat %v must be shorter than broker_expiry %v, or name servers drop live brokers", t.Heartbeat, t.BrokerExpiry)
	}
	if t.ScanInterval > t.BrokerExpiry {
		v.fail("cluster.timings.scan_interval", "scan_interval %v longer than broker_expiry %v", t.ScanInterval, t.BrokerExpiry)
	}
}

func (s Spec) validateTopic(v *validator) {
	t := s.Topic
	if !topicRE.MatchString(t.Name) {
		v.fail("topic.name", "%q is not a legal topic name ([a-zA-Z0-9._-], 1-249 characters)", t.Name)
	}
	v.intRange("topic.partitions", t.Partitions, 1, maxPartitions)
	v.intRange("topic.replication", t.Replication, 1, maxNodes)
	if t.Replication > s.Cluster.Brokers {
		v.fail("topic.replication", "%d exceeds cluster.brokers %d", t.Replication, s.Cluster.Brokers)
	}
	if t.MinInsync < 1 || t.MinInsync > t.Replication {
		v.fail("topic.min_insync", "%d out of range [1, replication %d]", t.MinInsync, t.Replication)
	}
	v.oneOf("topic.fanout", t.Fanout, FanoutStar, FanoutChain)
	v.oneOf("topic.replication_mode", t.ReplicationMode, ReplSync, ReplAsync)
}

func (s Spec) validateWorkload(v *validator) {
	w := s.Workload
	v.intRange("workload.producers", w.Producers, 1, maxClients)
	v.intRange("workload.consumers", w.Consumers, 0, maxClients)
	v.intRange("workload.message_size", w.MessageSize, 1, maxMessageSize)
	v.intRange("workload.keys", w.Keys, 0, 1<<30)
	if len(w.Rates) == 0 || len(w.Rates) > maxRateSteps {
		v.fail("workload.rate", "want 1 to %d rates, got %d", maxRateSteps, len(w.Rates))
	}
	for _, r := range w.Rates {
		if !(r >= 0 && r <= maxRate) { // also catches NaN
			v.fail("workload.rate", "%v out of range [0, %g]", r, float64(maxRate))
		}
	}
	if w.Acks != AcksNone && w.Acks != AcksLeader && w.Acks != AcksAll {
		v.fail("workload.acks", "%d: want 0, 1 or all", w.Acks)
	}
	for i, a := range w.AcksSweep {
		if (a != AcksNone && a != AcksLeader && a != AcksAll) || slices.Index(w.AcksSweep, a) != i {
			v.fail(fmt.Sprintf("workload.acks[%d]", i), "%d: want 0, 1 or all, each once", a)
		}
	}
	v.intRange("workload.batch_size", w.BatchSize, 1, 1<<20)
	v.durRange("workload.linger", w.Linger, 0, time.Minute)
	v.intRange("workload.retries", w.Retries, 0, 1<<20)
	v.durRange("workload.timeout", w.Timeout, time.Millisecond, maxDuration)
	v.durRange("workload.duration", w.Duration, time.Second, maxDuration)
	v.durRange("workload.warmup", w.Warmup, 0, maxDuration)
	if w.Warmup >= w.Duration {
		v.fail("workload.warmup", "%v leaves nothing of duration %v to measure", w.Warmup, w.Duration)
	}
	v.durRange("workload.drain", w.Drain, 0, maxDuration)
	s.validateRateSearch(v)
}

func (s Spec) validateFaults(v *validator) {
	if len(s.Faults) > maxFaults {
		v.fail("faults", "%d faults, at most %d", len(s.Faults), maxFaults)
		return
	}
	stopped := false // some earlier fault killed or paused a node
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.At < 0 || f.At > s.Workload.Duration {
			v.fail(p+".at", "%v is outside the run (0 to workload.duration %v)", f.At, s.Workload.Duration)
		}
		if err := f.check(); err != nil {
			v.fail(p, "%v", err)
			continue
		}
		s.validateTargetRefs(v, p, f.Target)
		if f.Target.usesKilled() && !stopped {
			v.fail(p, "%q refers to no node: no earlier fault kills or pauses one", TargetKilled)
		}
		switch f.Action {
		case ActionKill, ActionPause, ActionPowerLoss, ActionStop:
			stopped = true
		}
		if !s.anyApplies(f) {
			v.fail(p, "%s %s applies to none of the topologies %s", f.Action, f.Target, strings.Join(s.Topologies, ", "))
		}
	}
}

func (s Spec) anyApplies(f Fault) bool {
	for _, t := range s.Topologies {
		if f.AppliesTo(t) {
			return true
		}
	}
	return false
}

// validateTargetRefs checks node indices and leader-of references against the
// cluster and topic.
func (s Spec) validateTargetRefs(v *validator, path string, t Target) {
	switch t.Kind {
	case TargetLink:
		for _, e := range t.Link {
			s.validateTargetRefs(v, path, e)
		}
	case TargetBroker:
		if t.Index >= s.Cluster.Brokers {
			v.fail(path, "%s: cluster has brokers 0 to %d", t, s.Cluster.Brokers-1)
		}
	case TargetLeaderOf, TargetFollowerOf:
		if t.Topic != s.Topic.Name {
			v.fail(path, "%s: the scenario's topic is %q", t, s.Topic.Name)
		} else if int(t.Partition) >= s.Topic.Partitions {
			v.fail(path, "%s: topic has partitions 0 to %d", t, s.Topic.Partitions-1)
		}
		if t.Kind == TargetFollowerOf && s.Topic.Replication < 2 {
			v.fail(path, "%s: replication 1 has no followers", t)
		}
	default:
		if t.Index < 0 {
			return
		}
		for _, topo := range s.Topologies {
			d, _ := topology.Lookup(topo)
			if r, ok := d.Role(string(t.Kind)); ok && r.Indexed() && t.Index >= s.Cluster.Count(r.Field) {
				v.fail(path, "%s: cluster has %s 0 to %d (cluster.%s)", t, cmp.Or(r.Plural, r.Field), s.Cluster.Count(r.Field)-1, r.Field)
				return
			}
		}
	}
}

// clusterJSON is Cluster's fixed part; MarshalJSON puts the Nodes fields
// beside it, as the YAML has them.
type clusterJSON struct {
	Brokers       int                 `json:"brokers"`
	Profile       string              `json:"timings"`
	Overrides     Timings             `json:"timing_overrides"`
	Fsync         string              `json:"fsync"`
	FsyncInterval time.Duration       `json:"fsync_interval"`
	Placement     map[string][]string `json:"placement,omitempty"`
}

// MarshalJSON writes brokers, then every Nodes field (registered fields in
// registry order, others by name), then the timings.
func (c Cluster) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"brokers":%d`, c.Brokers)
	var order []string
	for _, f := range topology.Fields() {
		if _, ok := c.Nodes[f.Name]; ok {
			order = append(order, f.Name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Nodes)) {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range order {
		key, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, `,%s:%d`, key, c.Nodes[k])
	}
	prof, err := json.Marshal(c.Profile)
	if err != nil {
		return nil, err
	}
	over, err := json.Marshal(c.Overrides)
	if err != nil {
		return nil, err
	}
	fsync, err := json.Marshal(c.Fsync)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&b, `,"timings":%s,"timing_overrides":%s,"fsync":%s,"fsync_interval":%d`, prof, over, fsync, c.FsyncInterval)
	if len(c.Placement) > 0 {
		pl, err := json.Marshal(c.Placement)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, `,"placement":%s`, pl)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads MarshalJSON's form: every integer field other than
// brokers goes to Nodes.
func (c *Cluster) UnmarshalJSON(data []byte) error {
	var fixed clusterJSON
	if err := json.Unmarshal(data, &fixed); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	*c = Cluster{Brokers: fixed.Brokers, Profile: fixed.Profile, Overrides: fixed.Overrides, Nodes: map[string]int{},
		Fsync: fixed.Fsync, FsyncInterval: fixed.FsyncInterval, Placement: fixed.Placement}
	for k, raw := range all {
		if k == "brokers" || k == "timings" || k == "timing_overrides" || k == "fsync" || k == "fsync_interval" || k == "placement" {
			continue
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("cluster.%s: %w", k, err)
		}
		c.Nodes[k] = n
	}
	return nil
}
