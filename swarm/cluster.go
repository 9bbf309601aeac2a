package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Labels on every service, container, network and volume a run creates.
// Owner is "<hostname>/<pid>" of the runner: the next run removes what a
// dead owner on this host left behind.
const (
	labelRun   = "org.brokerlab.swarm.run"
	labelOwner = "org.brokerlab.swarm.owner"
	labelNode  = "org.brokerlab.node"
	// labelRoles on a swarm node restricts which roles run there
	// (comma-separated: broker, etcd, nameserver, client); nodes without
	// it take every role.
	labelRoles = "org.brokerlab.roles"
)

// Node states.
type nodeState int

const (
	stateUp nodeState = iota
	stateKilled
	statePaused
)

// node is one brokerlab process: a swarm service of one replica pinned to
// one swarm node. Peers and load generators reach it by its service name on
// the run's overlay network (DNS round robin, so a restarted task is found
// at its new address); the runner reaches it through ports published on its
// swarm node (host mode).
type node struct {
	name    string // "broker 0", "etcd 1", "nameserver 0", "client 0"
	role    string // "broker", "etcd", "nameserver", "client"
	service string // service name = overlay DNS name
	port    int    // service port
	ports   []int  // container ports published, service port first
	pub     map[int]int
	host    string // swarm node id it is pinned to
	hostIP  string // that node's address, as the runner dials it
	args    []string

	serviceID string
	container string // the current task's container
	taskIP    string // the current task's overlay address
	state     nodeState
	isolated  bool
}

// advertised is the address peers and load generators use.
func (n *node) advertised() string { return net.JoinHostPort(n.service, strconv.Itoa(n.port)) }

// runnerAddr is the address the runner dials for container port p.
func (n *node) runnerAddr(p int) string {
	return net.JoinHostPort(n.hostIP, strconv.Itoa(n.pub[p]))
}

// addr is the runner's address of the service port.
func (n *node) addr() string { return n.runnerAddr(n.port) }

// swarmHost is one swarm node the run places services on.
type swarmHost struct {
	id, hostname, addr string
	roles              map[string]bool // nil: every role
}

func (h swarmHost) takes(role string) bool { return h.roles == nil || h.roles[role] }

// cluster is one run on a swarm: its overlay network, its services, and
// the faults the engines apply to their tasks.
type cluster struct {
	pool    *dockertest.Pool
	eng     *engine
	image   image.Image
	runID   string
	owner   string
	network string // id of the run's overlay network
	hosts   []swarmHost
	self    string // the swarm node id of the engine the runner talks to
	cutter  *cutter
	logger  *slog.Logger

	mu       sync.Mutex
	nodes    map[string]*node
	order    []string
	byRole   map[string]int // round-robin position per role
	nextPort int
	cuts     map[[2]string]bool
	closed   bool
}

// newCluster removes leftovers of dead runs, reads the swarm's nodes and
// creates the run's attachable overlay network.
func newCluster(ctx context.Context, pool *dockertest.Pool, eng *engine, img image.Image, self string, logger *slog.Logger) (*cluster, error) {
	c := &cluster{
		pool: pool, eng: eng, image: img, self: self, logger: logger,
		runID:  fmt.Sprintf("blswarm-%06x", rand.IntN(1<<24)),
		owner:  owner(),
		nodes:  map[string]*node{},
		byRole: map[string]int{},
		cuts:   map[[2]string]bool{},
		// Below Linux's ephemeral range (32768-60999), where other
		// processes' outgoing connections and port-0 listeners live.
		nextPort: 20000 + 20*rand.IntN(600),
	}
	sweep(ctx, pool.Client, eng, logger)
	hosts, err := readHosts(ctx, eng)
	if err != nil {
		return nil, err
	}
	c.hosts = hosts
	nw, err := eng.createOverlay(ctx, c.runID, map[string]string{labelRun: c.runID, labelOwner: c.owner})
	if err != nil {
		return nil, fmt.Errorf("swarm: create overlay network: %w", err)
	}
	c.network = nw
	c.cutter = newCutter()
	return c, nil
}

// readHosts lists the ready, active swarm nodes, sorted by hostname.
func readHosts(ctx context.Context, eng *engine) ([]swarmHost, error) {
	ns, err := eng.nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []swarmHost
	for _, n := range ns {
		if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
			continue
		}
		h := swarmHost{id: n.ID, hostname: n.Description.Hostname, addr: n.Status.Addr}
		if h.addr == "" || h.addr == "0.0.0.0" {
			h.addr = "127.0.0.1"
			if n.ManagerStatus != nil {
				if a, _, err := net.SplitHostPort(n.ManagerStatus.Addr); err == nil {
					h.addr = a
				}
			}
		}
		if v, ok := n.Spec.Labels[labelRoles]; ok {
			h.roles = map[string]bool{}
			for _, r := range strings.Split(v, ",") {
				h.roles[strings.TrimSpace(r)] = true
			}
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("swarm: no ready, active node")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hostname+out[i].id < out[j].hostname+out[j].id })
	return out, nil
}

// place picks the next host for role, round robin over the hosts that
// take it.
func (c *cluster) placeLocked(role string) (swarmHost, error) {
	var eligible []swarmHost
	for _, h := range c.hosts {
		if h.takes(role) {
			eligible = append(eligible, h)
		}
	}
	if len(eligible) == 0 {
		return swarmHost{}, fmt.Errorf("swarm: no node takes role %q (label %s)", role, labelRoles)
	}
	h := eligible[c.byRole[role]%len(eligible)]
	c.byRole[role]++
	return h, nil
}

// add reserves a node: its service name, swarm node and published ports.
// launch starts it. Splitting the two lets members know each other's
// addresses before any starts.
func (c *cluster) add(name, role string, ports ...int) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("swarm: cluster closed")
	}
	if _, ok := c.nodes[name]; ok {
		return nil, fmt.Errorf("swarm: node %q exists", name)
	}
	h, err := c.placeLocked(role)
	if err != nil {
		return nil, err
	}
	n := &node{
		name: name, role: role, service: c.runID + "-" + strings.ReplaceAll(name, " ", "-"),
		port: ports[0], ports: ports, pub: map[int]int{}, host: h.id, hostIP: h.addr,
	}
	for _, p := range ports {
		n.pub[p] = c.freePortLocked()
	}
	c.nodes[name] = n
	c.order = append(c.order, name)
	return n, nil
}

// freePortLocked returns the next port no process of the runner's host
// listens on (other machines of a swarm are not asked: a clash there
// fails the task's start, and the run, with the engine's message).
func (c *cluster) freePortLocked() int {
	for range 1000 {
		p := c.nextPort
		c.nextPort++
		if c.nextPort >= 32768 {
			c.nextPort = 20000
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	return c.nextPort
}

// spec is n's service: one replica pinned to its swarm node, never
// restarted by swarm (restarts are faults the runner applies), its data in
// a node-local volume, its ports published on its node.
func (c *cluster) spec(n *node) swarm.ServiceSpec {
	labels := map[string]string{labelRun: c.runID, labelOwner: c.owner, labelNode: n.name}
	one := uint64(1)
	var ports []swarm.PortConfig
	for _, p := range n.ports {
		ports = append(ports, swarm.PortConfig{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(p),
			PublishedPort: uint32(n.pub[p]), PublishMode: swarm.PortConfigPublishModeHost,
		})
	}
	none := swarm.RestartPolicyConditionNone
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: n.service, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: c.image.Ref(), Args: n.args, Hostname: n.service, Labels: labels,
				Mounts: []mount.Mount{{
					Type: mount.TypeVolume, Source: n.service, Target: "/data",
					VolumeOptions: &mount.VolumeOptions{Labels: labels},
				}},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: none},
			Placement:     &swarm.Placement{Constraints: []string{"node.id==" + n.host}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: c.network, Aliases: []string{n.service}}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: ports},
	}
}

// launch creates n's service running args. It does not wait.
func (c *cluster) launch(ctx context.Context, n *node, args []string) error {
	c.mu.Lock()
	n.args = args
	spec := c.spec(n)
	c.mu.Unlock()
	id, err := c.eng.createService(ctx, spec)
	if err != nil {
		return fmt.Errorf("swarm: create service %s: %w", n.service, err)
	}
	c.mu.Lock()
	n.serviceID = id
	c.mu.Unlock()
	return nil
}

// launchAll launches nodes and waits until every one serves.
func (c *cluster) launchAll(ctx context.Context, nodes []*node, args func(i int, n *node) []string) error {
	for i, n := range nodes {
		if err := c.launch(ctx, n, args(i, n)); err != nil {
			return err
		}
	}
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- c.waitServing(ctx, n, "") }()
	}
	var all []error
	for range nodes {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// currentTask returns the newest task of n's service.
func (c *cluster) currentTask(ctx context.Context, n *node) (swarm.Task, error) {
	c.mu.Lock()
	id := n.serviceID
	c.mu.Unlock()
	ts, err := c.eng.tasks(ctx, "service", id)
	if err != nil {
		return swarm.Task{}, err
	}
	if len(ts) == 0 {
		return swarm.Task{}, fmt.Errorf("swarm: %s has no task yet", n.name)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].CreatedAt.After(ts[j].CreatedAt) })
	return ts[0], nil
}

// waitServing waits until n's newest task other than oldContainer runs and
// its service port accepts connections through its published port; it
// records the task's container and overlay address.
func (c *cluster) waitServing(ctx context.Context, n *node, oldContainer string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var last error
	for {
		last = c.checkServing(ctx, n, oldContainer)
		if last == nil {
			return nil
		}
		var fatal *taskFailed
		if errors.As(last, &fatal) {
			return last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: %s does not serve: %w (last: %v)", n.name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond): // polling the engine
		}
	}
}

// taskFailed: the task ended before serving.
type taskFailed struct{ msg string }

func (e *taskFailed) Error() string { return e.msg }

func (c *cluster) checkServing(ctx context.Context, n *node, oldContainer string) error {
	t, err := c.currentTask(ctx, n)
	if err != nil {
		return err
	}
	cs := t.Status.ContainerStatus
	if cs == nil || cs.ContainerID == "" || cs.ContainerID == oldContainer {
		return fmt.Errorf("task %s: %s", t.ID, t.Status.State)
	}
	switch t.Status.State {
	case swarm.TaskStateRunning:
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateShutdown:
		return &taskFailed{fmt.Sprintf("swarm: %s ended before serving (%s: %s %s): %s", n.name, t.Status.State, t.Status.Message, t.Status.Err, c.logs(cs.ContainerID, 20))}
	default:
		return fmt.Errorf("task %s: %s", t.ID, t.Status.State)
	}
	var ip string
	for _, a := range t.NetworksAttachments {
		if a.Network.ID == c.network && len(a.Addresses) > 0 {
			ip, _, _ = strings.Cut(a.Addresses[0], "/")
		}
	}
	if err := ready(ctx, n); err != nil {
		return err
	}
	c.mu.Lock()
	n.container, n.taskIP, n.state = cs.ContainerID, ip, stateUp
	c.mu.Unlock()
	return nil
}

// ready checks that n's process answers through its published ports. A
// TCP connect is not enough: the engine's userland proxy accepts on a
// published port before the process listens (and after it died), then
// closes. So a node with an HTTP endpoint (metrics, etcd's client port)
// must answer a GET, and a load generator a clock exchange.
func ready(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if n.role == roleClient {
		return clockExchange(ctx, n.runnerAddr(loadgenPort))
	}
	port := metricsPort
	if n.role == roleEtcd {
		port = etcdPort
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.runnerAddr(port)+"/metrics", nil)
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
		return fmt.Errorf("%s: metrics: %s", n.name, resp.Status)
	}
	if n.port == port {
		return nil
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", n.addr())
	if err != nil {
		return err
	}
	return conn.Close()
}

// logs returns the last lines of a container's output on the local engine.
func (c *cluster) logs(container string, lines int) string {
	var buf strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.pool.Client.Logs(dc.LogsOptions{Context: ctx, Container: container, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: strconv.Itoa(lines)})
	return strings.TrimSpace(buf.String())
}

func (c *cluster) node(name string) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("swarm: no node %q", name)
	}
	return n, nil
}

func (c *cluster) snapshot(name string) (node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return node{}, false
	}
	return *n, true
}

// reachable reports whether the runner can talk to the named node now.
func (c *cluster) reachable(name string) bool {
	n, ok := c.snapshot(name)
	return ok && n.state == stateUp && !n.isolated
}

func (c *cluster) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.order {
		if c.nodes[name].role != roleClient {
			out = append(out, name)
		}
	}
	return out
}

// local checks that n's task runs on the swarm node of the engine the
// runner talks to: container-level faults go through that engine.
func (c *cluster) local(n *node) error {
	if n.host != c.self {
		return fmt.Errorf("%w: %s runs on swarm node %s, whose engine this runner does not reach (run the runner there, or see the README)", errRemote, n.name, n.host)
	}
	return nil
}

// kill sends SIGKILL to the task's container and waits until it stopped.
// Swarm does not restart it (restart condition none).
func (c *cluster) kill(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if err := c.local(n); err != nil {
		return err
	}
	c.mu.Lock()
	st, id := n.state, n.container
	c.mu.Unlock()
	if st == stateKilled {
		return fmt.Errorf("swarm: %s is already down", name)
	}
	if st == statePaused {
		_ = c.pool.Client.UnpauseContainer(id)
	}
	if err := c.pool.Client.KillContainer(dc.KillContainerOptions{ID: id, Signal: dc.SIGKILL, Context: ctx}); err != nil {
		return fmt.Errorf("swarm: kill %s: %w", name, err)
	}
	for {
		ct, err := c.pool.Client.InspectContainerWithContext(id, ctx)
		if err == nil && !ct.State.Running {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("swarm: kill %s: not seen stopped: %w", name, ctx.Err())
		}
		time.Sleep(20 * time.Millisecond) // polling the engine
	}
	c.mu.Lock()
	n.state = stateKilled
	c.mu.Unlock()
	return nil
}

// restart replaces a killed node's task: a forced service update starts a
// new task of the same service on the same swarm node with the same
// volume (the node's data) and the same service name; it waits until the
// new task serves. A paused node is resumed instead.
func (c *cluster) restart(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, old, isolated := n.state, n.container, n.isolated
	c.mu.Unlock()
	switch st {
	case stateUp:
		return fmt.Errorf("swarm: %s is already up", name)
	case statePaused:
		return c.resume(name)
	}
	svc, err := c.eng.service(ctx, n.serviceID)
	if err != nil {
		return fmt.Errorf("swarm: restart %s: %w", name, err)
	}
	svc.Spec.TaskTemplate.ForceUpdate++
	if err := c.eng.updateService(ctx, svc); err != nil {
		return fmt.Errorf("swarm: restart %s: %w", name, err)
	}
	if err := c.waitServing(ctx, n, old); err != nil {
		return err
	}
	if isolated {
		// The new task's network namespace is new: isolate it again.
		c.mu.Lock()
		n.isolated = false
		c.mu.Unlock()
		return c.isolate(ctx, name)
	}
	return c.reapplyCuts(name)
}

func (c *cluster) pause(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if err := c.local(n); err != nil {
		return err
	}
	c.mu.Lock()
	st, id := n.state, n.container
	c.mu.Unlock()
	if st != stateUp {
		return fmt.Errorf("swarm: %s is not running", name)
	}
	if err := c.pool.Client.PauseContainer(id); err != nil {
		return fmt.Errorf("swarm: pause %s: %w", name, err)
	}
	c.mu.Lock()
	n.state = statePaused
	c.mu.Unlock()
	return nil
}

func (c *cluster) resume(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, id := n.state, n.container
	c.mu.Unlock()
	if st != statePaused {
		return fmt.Errorf("swarm: %s is not paused", name)
	}
	if err := c.pool.Client.UnpauseContainer(id); err != nil {
		return fmt.Errorf("swarm: resume %s: %w", name, err)
	}
	c.mu.Lock()
	n.state = stateUp
	c.mu.Unlock()
	return nil
}

// pid returns the main process id of n's task container, for entering its
// network namespace.
func (c *cluster) pid(n *node) int {
	c.mu.Lock()
	id := n.container
	c.mu.Unlock()
	ct, err := c.pool.Client.InspectContainer(id)
	if err != nil || ct.State.Pid <= 0 {
		return 0
	}
	return ct.State.Pid
}

// isolate drops every packet in and out of n's task except loopback: its
// peers, the load generators and the runner all lose it.
func (c *cluster) isolate(_ context.Context, name string) error {
	if c.cutter == nil {
		return errNoCuts
	}
	n, err := c.node(name)
	if err != nil {
		return err
	}
	if err := c.local(n); err != nil {
		return err
	}
	c.mu.Lock()
	already := n.isolated
	c.mu.Unlock()
	if already {
		return fmt.Errorf("swarm: %s is already isolated", name)
	}
	if err := c.cutter.isolate(c.pid(n)); err != nil {
		return err
	}
	c.mu.Lock()
	n.isolated = true
	c.mu.Unlock()
	return nil
}

func (c *cluster) rejoin(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	isolated := n.isolated
	c.mu.Unlock()
	if !isolated || c.cutter == nil {
		return nil
	}
	c.cutter.unisolate(c.pid(n))
	c.mu.Lock()
	n.isolated = false
	c.mu.Unlock()
	return nil
}

// cut drops the traffic between two nodes' tasks, both ways, by their
// overlay addresses.
func (c *cluster) cut(a, b string) error {
	if c.cutter == nil {
		return errNoCuts
	}
	l := [2]string{min(a, b), max(a, b)}
	c.mu.Lock()
	if c.cuts[l] {
		c.mu.Unlock()
		return fmt.Errorf("swarm: %s - %s is already cut", a, b)
	}
	c.mu.Unlock()
	if err := c.applyCut(a, b, true); err != nil {
		return err
	}
	c.mu.Lock()
	c.cuts[l] = true
	c.mu.Unlock()
	return nil
}

func (c *cluster) applyCut(a, b string, on bool) error {
	na, err := c.node(a)
	if err != nil {
		return err
	}
	nb, err := c.node(b)
	if err != nil {
		return err
	}
	if err := errors.Join(c.local(na), c.local(nb)); err != nil {
		return err
	}
	var errs []error
	for _, p := range [][2]*node{{na, nb}, {nb, na}} {
		c.mu.Lock()
		peer := p[1].taskIP
		c.mu.Unlock()
		if on {
			errs = append(errs, c.cutter.drop(c.pid(p[0]), peer))
		} else {
			c.cutter.undrop(c.pid(p[0]), peer)
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) heal(a, b string) error {
	if c.cutter == nil {
		return errNoCuts
	}
	l := [2]string{min(a, b), max(a, b)}
	c.mu.Lock()
	was := c.cuts[l]
	delete(c.cuts, l)
	c.mu.Unlock()
	if !was {
		return nil
	}
	return c.applyCut(a, b, false)
}

// reapplyCuts puts the cuts of a restarted node back: its new task has a
// new namespace and a new overlay address.
func (c *cluster) reapplyCuts(name string) error {
	c.mu.Lock()
	var peers []string
	for l := range c.cuts {
		if l[0] == name {
			peers = append(peers, l[1])
		} else if l[1] == name {
			peers = append(peers, l[0])
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, p := range peers {
		errs = append(errs, c.applyCut(name, p, true))
	}
	return errors.Join(errs...)
}

func (c *cluster) healAll() error {
	c.mu.Lock()
	var cuts [][2]string
	for l := range c.cuts {
		cuts = append(cuts, l)
	}
	var isolated []string
	for _, name := range c.order {
		if c.nodes[name].isolated {
			isolated = append(isolated, name)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, l := range cuts {
		errs = append(errs, c.heal(l[0], l[1]))
	}
	for _, name := range isolated {
		errs = append(errs, c.rejoin(name))
	}
	return errors.Join(errs...)
}

// close removes every service, then the network and the volumes. It is
// idempotent.
func (c *cluster) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var paused []string
	for _, n := range c.nodes {
		if n.state == statePaused {
			paused = append(paused, n.container)
		}
	}
	c.mu.Unlock()
	for _, id := range paused {
		_ = c.pool.Client.UnpauseContainer(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return removeRun(ctx, c.pool.Client, c.eng, c.runID)
}

// removeRun removes the services labelled with run, waits until their
// containers are gone, then removes the run's network and volumes.
func removeRun(ctx context.Context, client *dc.Client, eng *engine, run string) error {
	var errs []error
	sel := labelRun + "=" + run
	svcs, err := eng.services(ctx, "label", sel)
	if err != nil && !errors.Is(err, errNoSwarm) {
		errs = append(errs, err)
	}
	for _, s := range svcs {
		if err := eng.removeService(ctx, s.ID); err != nil && !errors.Is(err, errNotFound) {
			errs = append(errs, err)
		}
	}
	// Task containers go away shortly after their service; the network and
	// volumes can only be removed then. Containers left in an odd state
	// (paused, or a service removed while the engine was busy) are removed
	// by force.
	_ = pollUntil(ctx, 100*time.Millisecond, func() error {
		cts, err := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {sel}}})
		if err != nil {
			return err
		}
		for _, ct := range cts {
			if strings.Contains(ct.Status, "Paused") {
				_ = client.UnpauseContainer(ct.ID)
			}
			if ct.State != "running" && ct.State != "paused" {
				_ = client.RemoveContainer(dc.RemoveContainerOptions{ID: ct.ID, Force: true})
			}
		}
		if len(cts) > 0 {
			return fmt.Errorf("%d containers left", len(cts))
		}
		return nil
	})
	cts, _ := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {sel}}})
	for _, ct := range cts {
		if err := client.RemoveContainer(dc.RemoveContainerOptions{ID: ct.ID, Force: true}); err != nil {
			errs = append(errs, err)
		}
	}
	nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {sel: true}})
	if err != nil {
		errs = append(errs, err)
	}
	for _, nw := range nws {
		err := pollUntil(ctx, 200*time.Millisecond, func() error { return client.RemoveNetwork(nw.ID) })
		if err != nil {
			errs = append(errs, fmt.Errorf("swarm: remove network %s: %w", nw.Name, err))
		}
	}
	vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {sel}}})
	if err != nil {
		errs = append(errs, err)
	}
	for _, v := range vols {
		err := pollUntil(ctx, 200*time.Millisecond, func() error {
			return client.RemoveVolumeWithOptions(dc.RemoveVolumeOptions{Context: ctx, Name: v.Name})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("swarm: remove volume %s: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

// sweep removes what runs of dead owners on this host left behind: their
// services, networks and volumes. Runs of live processes are left alone.
func sweep(ctx context.Context, client *dc.Client, eng *engine, logger *slog.Logger) {
	runs := map[string]bool{}
	dead := func(labels map[string]string) {
		if run := labels[labelRun]; run != "" && deadOwner(labels[labelOwner]) {
			runs[run] = true
		}
	}
	if svcs, err := eng.services(ctx, "label", labelRun); err == nil {
		for _, s := range svcs {
			dead(s.Spec.Labels)
		}
	}
	if nws, err := client.FilteredListNetworks(dc.NetworkFilterOpts{"label": {labelRun: true}}); err == nil {
		for _, nw := range nws {
			dead(nw.Labels)
		}
	}
	if vols, err := client.ListVolumes(dc.ListVolumesOptions{Filters: map[string][]string{"label": {labelRun}}}); err == nil {
		for _, v := range vols {
			dead(v.Labels)
		}
	}
	for _, run := range slices.Sorted(mapsKeys(runs)) {
		logger.Info("removing leftovers of a dead run", "run", run)
		if err := removeRun(ctx, client, eng, run); err != nil {
			logger.Warn("leftovers not all removed", "run", run, "error", err)
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pollUntil calls f every interval until it succeeds or ctx ends.
func pollUntil(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
