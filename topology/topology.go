package topology

import (
	"flag"
	"image/color"
	"log/slog"

	"github.com/brokerlab/brokerlab/broker"
)

// Descriptor is everything brokerlab needs to know about one topology. It
// is the guide to adding one; a new topology provides:
//
//  1. A package of its own (the control plane, or the reference system's
//     driver) that calls [Register] from an init function with this
//     descriptor. Nothing outside that package lists the topology.
//  2. Name, Description and Family: what scenario files write in
//     `topologies:`, and what `brokerlab help` shows.
//  3. Roles: the nodes it runs besides brokers. Each role gives a
//     `cluster:` field counting its members (and the least and default
//     count) and a fault-target word ("nameserver 1", "etcd", "controller").
//     Brokers, leader-of, follower-of, killed and links apply to every
//     topology and need no role.
//  4. Validate, for rules between fields the roles cannot say (the
//     nameserver topology splits brokers into groups of `replication`).
//  5. Broker, if `brokerlab broker` can run under it: the flags it binds and
//     the [broker.ControlPlane] it builds from them.
//  6. Color and Order: its colour in every chart and its place among the
//     columns and rows of reports.
//  7. One driver file per runtime (scenarios/inprocess, docker; reference
//     systems may have one runtime only) that starts its cluster for a
//     scenario and registers with scenarios.RegisterDriver. Faults reach
//     the driver through the runtime's node layer; a driver resolves only
//     the targets of its own roles.
//  8. A line in the README's topology table, and scenarios in the
//     catalogue that list it.
type Descriptor struct {
	// Name is the word scenario files use ([a-z0-9-]).
	Name string
	// Description is one line for `brokerlab help` and the docs.
	Description string
	// Family groups topologies modelled on one system ("kafka",
	// "rocketmq", "gossip", "reference").
	Family string
	// Order places the topology among the others in reports and help;
	// lower first, ties by name.
	Order int
	// Color is the topology's colour in every chart. The zero value lets
	// reports pick one from a spare palette.
	Color color.RGBA
	// Default marks a topology a scenario runs when it lists none.
	Default bool
	// Roles are the node kinds the topology runs besides brokers.
	Roles []Role
	// Validate checks relations of a scenario's shape the roles cannot
	// express. It may be nil. Problems name the field, as
	// "topic.replication", so the scenario error points at its line.
	Validate func(Shape) []Problem
	// Broker is the broker-side half of a control plane; nil for a
	// reference system the broker cannot run under.
	Broker *BrokerPlane
}

// Role is one kind of node a topology runs besides brokers, and the
// fault-target word that names it.
type Role struct {
	// Target is the fault-target word: "nameserver", "etcd",
	// "controller". Several topologies may share a word ("controller");
	// the target applies to each of them.
	Target string
	// Noun is the singular for messages ("name server", "etcd member").
	Noun string
	// Field is the `cluster:` key counting the role's members
	// ("nameservers"), or "" when the role is one node picked at run time
	// among others (the coordinator's controller is a broker).
	Field string
	// Plural names Field's members in reports ("name servers"); default
	// Field.
	Plural string
	// Min is the fewest members the topology runs with; Default is the
	// count when the scenario leaves Field out. Topologies sharing a
	// Field must agree on Default.
	Min, Default int
	// Bare is what the word without an index means.
	Bare Bare
}

// Bare says what a role's target word means without an index.
type Bare int

const (
	// BareEvery: every member ("etcd" hits all etcd members).
	BareEvery Bare = iota
	// BareActive: the one member currently in charge, which the driver
	// resolves at fault time ("controller").
	BareActive
)

// Indexed reports whether "WORD N" names member N of the role.
func (r Role) Indexed() bool { return r.Field != "" }

// Shape is what a scenario asks of a topology's cluster.
type Shape struct {
	Brokers int
	// Nodes counts the members of every registered cluster field, by
	// field name; a field the scenario leaves out holds its default.
	Nodes       map[string]int
	Partitions  int
	Replication int
}

// Problem is one thing wrong with a scenario for a topology.
type Problem struct {
	// Field is the scenario path, e.g. "topic.replication".
	Field string
	Msg   string
}

// BrokerPlane is the broker side of a control plane: what `brokerlab
// broker` needs to run a broker under it.
type BrokerPlane struct {
	// Flags binds the plane's settings to fs (their defaults are the
	// plane's defaults) and returns the function that builds the plane
	// from them once fs is parsed. It is called once per command line, on
	// a fresh flag set holding the broker's own flags too, so a plane's
	// flag names must not collide with the broker's (--id, --listen,
	// --data, ...); planes never share a flag set with each other.
	Flags func(fs *flag.FlagSet) Builder
	// Infer is a flag whose presence selects this plane when the command
	// line gives no --control-plane ("etcd" for coordinator); "" for a
	// plane that must be named. No two planes infer from one flag.
	Infer string
}

// Builder builds a control plane for one broker. Summary is a few words
// for the start-up line ("etcd 127.0.0.1:2379").
type Builder func(env BrokerEnv) (cp broker.ControlPlane, summary string, err error)

// BrokerEnv is what a plane gets from the broker's own settings.
type BrokerEnv struct {
	NodeID int32
	// DataDir is the broker's data directory; a plane keeping local state
	// (the nameserver registrar's topic table) keeps it there.
	DataDir string
	Logger  *slog.Logger
	// Replicas returns the broker's local replicas (broker.Broker.Status);
	// nil until the broker exists. A plane that ranks by replication
	// progress (gossip's failover votes) reads it.
	Replicas func() []broker.ReplicaStatus
}

// Log returns the broker's logger tagged with component; a nil Logger
// discards.
func (e BrokerEnv) Log(component string) *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger.With("component", component)
}
