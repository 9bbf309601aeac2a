package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/nameserver/controller"
	"github.com/brokerlab/brokerlab/producer"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
)

// A container runtime is the topology drivers of this package over one
// Launcher: the docker runtime's runs a container (and its network sandbox)
// per node, the swarm runtime's (package swarm) a service per node. The
// drivers (coordinator.go, nameserver.go, nameserver_controller.go,
// gossip.go) decide what runs where with which flags and how the runner
// watches it; the Cluster keeps every node's state and applies faults
// through the Launcher; the Launcher makes the engine calls.

// Roles of nodes, as launchers place them (the swarm runtime's node labels
// name them).
const (
	RoleBroker     = "broker"
	RoleEtcd       = "etcd"
	RoleNameserver = "nameserver"
	RoleController = "controller"
	// RoleClient is a launcher's own client node (the swarm runtime's load
	// generators): not a fault target, not listed by Nodes.
	RoleClient = "client"
)

// Launcher runs one run's nodes on a container engine. The Cluster calls
// it for one node at a time, never for a node it is already changing, and
// keeps the node's state (up, killed, paused, isolated, cuts) itself.
type Launcher interface {
	// Reserve fixes a new node's addresses before any node starts (so that
	// members of a cluster can be given each other's): n.Host, where peers
	// and clients on the run's network reach it, and n.Runner, where the
	// runner reaches each of n.Ports.
	Reserve(n *Node) error
	// Start creates and starts n running args and returns once it serves
	// on its ports, with its current address on the run's network (the
	// source address of its packets, which link cuts drop).
	Start(ctx context.Context, n *Node, args []string) (ip string, err error)
	// Kill sends SIGKILL and returns once the process has stopped; paused
	// says it is frozen now (the launcher thaws it first).
	Kill(ctx context.Context, n *Node, paused bool) error
	// Restart starts a killed node again with its data and returns its
	// address; with wait, once it serves.
	Restart(ctx context.Context, n *Node, wait bool) (ip string, err error)
	// Pause freezes every process of n (cgroup freezer); Resume thaws.
	Pause(ctx context.Context, n *Node) error
	Resume(ctx context.Context, n *Node) error
	// Netfilter runs `iptables -w rule...` in n's network namespace.
	Netfilter(ctx context.Context, n *Node, rule ...string) error
	// NetfilterErr is nil when Netfilter works here, else why not (wrapping
	// scenarios.ErrNotApplicable).
	NetfilterErr() error
	// KeepsNetwork reports whether a restarted node keeps its network
	// namespace and address (the docker runtime's sandboxes), so packet
	// filter rules survive restarts; otherwise the Cluster applies them
	// again.
	KeepsNetwork() bool
	// Logs returns the last lines of n's output, for error messages.
	Logs(n *Node, lines int) string
	// Clients returns the run's producers and consumers, finding the
	// cluster as spec says; c lets a launcher run client nodes of its own.
	Clients(ctx context.Context, c *Cluster, spec ClientSpec) (Clients, error)
	// Close removes everything the run created. It is idempotent.
	Close() error
}

// NewLauncher connects a runtime to its engine for one deployment.
type NewLauncher func(ctx context.Context, env scenarios.Env, logger *slog.Logger) (Launcher, error)

// Disconnector is a Launcher that isolates a node by taking it off the
// run's network (the docker runtime); others isolate with packet filter
// rules dropping everything but loopback.
type Disconnector interface {
	Disconnect(ctx context.Context, n *Node) error
	Reconnect(ctx context.Context, n *Node) error
}

// GracefulStopper is a Launcher that can SIGTERM a node and wait until it
// exits (the stop fault).
type GracefulStopper interface {
	Stop(ctx context.Context, n *Node) error
}

// PowerCutter is a Launcher that can cut a stopped broker's segment files
// to their synced lengths (the power-loss fault, operations.go).
type PowerCutter interface {
	CutToSynced(ctx context.Context, n *Node) (lost int64, err error)
}

// ClientSpec says how the run's clients find the cluster: the producers'
// style and one of the discovery configurations, with addresses on the
// run's network; route changes go to Routes.
type ClientSpec struct {
	Style       producer.Style
	Bootstrap   *discovery.BootstrapConfig
	NameServers *discovery.NameServersConfig
	Routes      *nodes.RouteLog
	Logger      *slog.Logger
}

// Clients makes the run's producers and consumers.
type Clients interface {
	NewProducer(cfg scenarios.ProducerConfig) (scenarios.Producer, error)
	NewConsumer(cfg scenarios.ConsumerConfig) (scenarios.Consumer, error)
}

// Node states.
type nodeState int

const (
	stateUp nodeState = iota
	stateKilled
	statePaused
)

// Node is one brokerlab process of a run. Name, Role and Ports are the
// driver's; Host and Runner the launcher's (Reserve); the rest is the
// Cluster's, under its lock.
type Node struct {
	Name  string // "broker 0", "etcd 1", "nameserver 0", "loadgen 0"
	Role  string // RoleBroker, ...
	Ports []int  // container ports the runner reaches, the service port first
	// Host is where peers and clients on the run's network reach the node:
	// a fixed address, or a name the network's DNS resolves.
	Host string
	// Runner maps each of Ports to the address the runner dials.
	Runner map[int]string

	ip       string // current address on the run's network
	state    nodeState
	isolated bool
	peersCut []string // names of the nodes isolatePeers dropped
}

// Port is the node's service port.
func (n *Node) Port() int { return n.Ports[0] }

// Addr is the service address peers and clients on the run's network dial.
func (n *Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port())) }

// RunnerAddr is the address the runner dials for container port p.
func (n *Node) RunnerAddr(p int) string { return n.Runner[p] }

// addr is the runner's address of the service port, which its probes dial.
func (n *Node) addr() string { return n.RunnerAddr(n.Port()) }

// peerAddrs lists the nodes' service addresses on the run's network.
func peerAddrs(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Addr()
	}
	return out
}

// runnerAddrs lists the nodes' service addresses as the runner dials them.
func runnerAddrs(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.addr()
	}
	return out
}

// Serving checks that n's process answers through the runner's addresses,
// at the application level: a GET of its metrics endpoint where its role
// has one (etcd's is its client port), a leader query to a controller,
// and a TCP connect to its service port. A launcher whose runner addresses
// go through a proxy that accepts before the process listens (and after
// it died), such as swarm's published ports, needs more than a connect.
func Serving(ctx context.Context, n *Node) error {
	if port := MetricsPort(n.Role); port != 0 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.RunnerAddr(port)+metrics.Path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: metrics: %s", n.Name, resp.Status)
		}
		if n.Port() == port {
			return nil
		}
	}
	if n.Role == RoleController {
		_, _, err := controller.LeaderOf(ctx, n.addr(), nil)
		return err
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", n.addr())
	if err != nil {
		return err
	}
	return conn.Close()
}
