package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
	"golang.org/x/sync/errgroup"
)

// Labels on every container and network a cluster creates. Owner is
// "<hostname>/<pid>" of the creating process: a later cluster removes what
// a dead owner on this host left behind (an interrupted run, a test binary
// killed by its timeout).
const (
	labelRun     = "org.brokerlab.run"
	labelOwner   = "org.brokerlab.owner"
	labelNode    = "org.brokerlab.node"
	labelSandbox = "org.brokerlab.sandbox" // on network-namespace holders
)

// Node states.
type nodeState int

const (
	stateUp nodeState = iota
	stateKilled
	statePaused
)

// node is one brokerlab process in its own container. The container runs
// in the network namespace of a sandbox container (docker/pause), which
// owns the node's fixed address on the run's network, like a Kubernetes pod.
// So a killed node's address stays up and its kernel refuses connections
// at once (a process crash on a live host, as in the in-process runtime),
// a restart comes back on the same address, and isolation and link cuts act
// on the sandbox, whose namespace outlives restarts.
type node struct {
	name     string // "broker 0", "etcd 1", "nameserver 0"
	ip       string
	port     int    // the service port waited on after a start
	id       string // the brokerlab container
	sandbox  string // the pause container holding the network namespace
	state    nodeState
	isolated bool
	peersCut []string // addresses isolatePeers dropped (docker/isolate.go)
}

func (n *node) addr() string { return net.JoinHostPort(n.ip, strconv.Itoa(n.port)) }

// addrsOf lists the nodes' service addresses.
func addrsOf(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.addr()
	}
	return out
}

// cluster is one run's private bridge network and its containers, with the
// faults the engine can apply to them. Methods are safe for concurrent use;
// engine calls are made outside the lock.
type cluster struct {
	pool    *dockertest.Pool
	image   image.Image
	runID   string
	owner   string
	network *dc.Network
	subnet  netip.Prefix
	cutter  *cutter // nil when per-link cuts are unavailable
	api     string  // the engine's API version, for clients of launchAll
	logger  *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*node
	order  []string         // creation order
	cuts   map[link]bool    // active link cuts
	losses map[link]float64 // links losing packets, by fraction (loss.go)
	nextIP netip.Addr       // next free address
	closed bool
}

// link is an unordered pair of node names, stored sorted.
type link [2]string

func newLink(a, b string) link {
	if b < a {
		a, b = b, a
	}
	return link{a, b}
}

// newCluster creates the run's network. It first removes what dead owners
// on this host left behind.
func newCluster(ctx context.Context, pool *dockertest.Pool, img image.Image, logger *slog.Logger) (*cluster, error) {
	host, _ := os.Hostname()
	c := &cluster{
		pool: pool, image: img, logger: logger,
		runID: fmt.Sprintf("brokerlab-%06x", rand.IntN(1<<24)),
		owner: host + "/" + strconv.Itoa(os.Getpid()),
		nodes: map[string]*node{}, cuts: map[link]bool{},
	}
	sweep(pool.Client, logger)
	env, err := pool.Client.Version()
	if err != nil {
		return nil, fmt.Errorf("docker: engine version: %w", err)
	}
	c.api = env.Get("ApiVersion")
	if err := c.createNetwork(ctx); err != nil {
		return nil, err
	}
	c.cutter = newCutter(logger)
	return c, nil
}

// createNetwork creates a bridge network with an explicit /24, which lets
// containers keep fixed addresses across restarts and reconnects. Subnets
// already in use are skipped.
func (c *cluster) createNetwork(ctx context.Context) error {
	first := rand.IntN(256)
	var lastErr error
	for i := range 64 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		third := (first + i) % 256
		subnet := netip.MustParsePrefix(fmt.Sprintf("172.29.%d.0/24", third))
		nw, err := c.pool.Client.CreateNetwork(dc.CreateNetworkOptions{
			Name:    c.runID,
			Driver:  "bridge",
			IPAM:    &dc.IPAMOptions{Driver: "default", Config: []dc.IPAMConfig{{Subnet: subnet.String()}}},
			Labels:  map[string]string{labelRun: c.runID, labelOwner: c.owner},
			Context: ctx,
		})
		if err == nil {
			c.network, c.subnet = nw, subnet
			c.nextIP = subnet.Addr().Next().Next() // .2: .1 is the gateway
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("docker: create network: %w", lastErr)
}

// add reserves a node and its address; launch starts it. Splitting the two
// lets a cluster's members know each other's addresses before any starts.
func (c *cluster) add(name string, port int) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("docker: cluster closed")
	}
	if _, ok := c.nodes[name]; ok {
		return nil, fmt.Errorf("docker: node %q exists", name)
	}
	if !c.subnet.Contains(c.nextIP) || c.nextIP.As4()[3] == 255 {
		return nil, fmt.Errorf("docker: subnet %v is full", c.subnet)
	}
	n := &node{name: name, ip: c.nextIP.String(), port: port}
	c.nextIP = c.nextIP.Next()
	c.nodes[name] = n
	c.order = append(c.order, name)
	return n, nil
}

// addMembers adds count nodes of a role ("nameserver 0", ...) serving on
// port.
func (c *cluster) addMembers(role string, count, port int) ([]*node, error) {
	out := make([]*node, 0, count)
	for i := range count {
		n, err := c.add(nodes.MemberName(role, i), port)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// launch creates and starts n's sandbox and then its brokerlab container
// running args, with client. It does not wait for the node to serve
// (waitServing does).
func (c *cluster) launch(ctx context.Context, client *dc.Client, n *node, args []string) error {
	host := strings.ReplaceAll(n.name, " ", "-")
	labels := map[string]string{labelRun: c.runID, labelOwner: c.owner, labelNode: n.name}
	sbLabels := map[string]string{labelRun: c.runID, labelOwner: c.owner, labelNode: n.name, labelSandbox: "true"}
	sb, err := client.CreateContainer(dc.CreateContainerOptions{
		Name:       c.runID + "-" + host + "-net",
		Config:     &dc.Config{Hostname: host, Image: c.image.Ref(), Entrypoint: []string{"/pause"}, Labels: sbLabels},
		HostConfig: &dc.HostConfig{NetworkMode: c.network.Name},
		NetworkingConfig: &dc.NetworkingConfig{EndpointsConfig: map[string]*dc.EndpointConfig{
			c.network.Name: {IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.ip}, Aliases: []string{host}},
		}},
		Context: ctx,
	})
	if err != nil {
		return fmt.Errorf("docker: create %s sandbox: %w", n.name, err)
	}
	c.mu.Lock()
	n.sandbox = sb.ID
	c.mu.Unlock()
	if err := client.StartContainerWithContext(sb.ID, nil, ctx); err != nil {
		return fmt.Errorf("docker: start %s sandbox: %w", n.name, err)
	}
	ct, err := client.CreateContainer(dc.CreateContainerOptions{
		Name:       c.runID + "-" + host,
		Config:     &dc.Config{Image: c.image.Ref(), Cmd: args, Labels: labels},
		HostConfig: &dc.HostConfig{NetworkMode: "container:" + sb.ID},
		Context:    ctx,
	})
	if err != nil {
		return fmt.Errorf("docker: create %s: %w", n.name, err)
	}
	c.mu.Lock()
	n.id = ct.ID
	c.mu.Unlock()
	if err := client.StartContainerWithContext(ct.ID, nil, ctx); err != nil {
		return fmt.Errorf("docker: start %s: %w", n.name, err)
	}
	return nil
}

// launchAll launches nodes concurrently (the engine takes a second or more
// per container on a loaded machine) and waits until every one serves.
func (c *cluster) launchAll(ctx context.Context, nodes []*node, args func(i int, n *node) []string) error {
	g, gctx := errgroup.WithContext(ctx)
	for i, n := range nodes {
		g.Go(func() error {
			client, err := image.NewClient(c.api)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := c.launch(gctx, client, n, args(i, n)); err != nil {
				return err
			}
			t1 := time.Now()
			err = c.waitServing(gctx, n)
			c.logger.Debug("node up", "node", n.name, "launch", t1.Sub(t0).Round(time.Millisecond), "serving", time.Since(t1).Round(time.Millisecond))
			return err
		})
	}
	return g.Wait()
}

// waitServing polls until n accepts TCP connections, failing early with
// the container's log when it exits.
func (c *cluster) waitServing(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	lastInspect := time.Now()
	for {
		conn, err := net.DialTimeout("tcp", n.addr(), 250*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Since(lastInspect) > 500*time.Millisecond {
			lastInspect = time.Now()
			if ct, ierr := c.pool.Client.InspectContainerWithContext(n.id, ctx); ierr == nil && !ct.State.Running {
				return fmt.Errorf("docker: %s exited (code %d) before serving on %s: %s", n.name, ct.State.ExitCode, n.addr(), c.logs(n.name, 20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: %s does not serve on %s: %w (last: %v)", n.name, n.addr(), ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// node returns the named node.
func (c *cluster) node(name string) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return nil, fmt.Errorf("docker: no node %q", name)
	}
	return n, nil
}

// snapshot returns a copy of the named node's state.
func (c *cluster) snapshot(name string) (node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	if !ok {
		return node{}, false
	}
	return *n, true
}

// reachable reports whether the runner can talk to the named node now:
// running, not paused, not isolated.
func (c *cluster) reachable(name string) bool {
	n, ok := c.snapshot(name)
	return ok && n.state == stateUp && !n.isolated
}

// kill sends SIGKILL and waits until the container has stopped.
func (c *cluster) kill(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st := n.state
	c.mu.Unlock()
	if st == stateKilled {
		return fmt.Errorf("docker: %s is already down", name)
	}
	if st == statePaused {
		// A frozen process cannot take a signal; the engine kills it once
		// thawed, which is still one abrupt stop.
		_ = c.pool.Client.UnpauseContainer(n.id)
	}
	if err := c.pool.Client.KillContainer(dc.KillContainerOptions{ID: n.id, Signal: dc.SIGKILL, Context: ctx}); err != nil {
		return fmt.Errorf("docker: kill %s: %w", name, err)
	}
	// The node is killed once the engine says it stopped, not before: a
	// context that ends mid-poll leaves it up (thawed, if it was paused),
	// so that a later restart or kill sees the state it is really in.
	err = c.awaitStopped(ctx, n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if st == statePaused {
			n.state = stateUp
		}
		return fmt.Errorf("docker: kill %s: %w", name, err)
	}
	n.state = stateKilled
	return nil
}

// awaitStopped polls the engine until n's container is no longer running.
func (c *cluster) awaitStopped(ctx context.Context, n *node) error {
	for {
		ct, err := c.pool.Client.InspectContainerWithContext(n.id, ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("inspect: %w", err)
		case err == nil && !ct.State.Running:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not seen stopped: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond): // polling the engine
		}
	}
}

// restart starts a killed container again with its file system (its data),
// in its sandbox (same address, same cuts), and waits until it serves. A
// paused node is resumed instead.
func (c *cluster) restart(ctx context.Context, name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	st, isolated := n.state, n.isolated
	c.mu.Unlock()
	switch st {
	case stateUp:
		return fmt.Errorf("docker: %s is already up", name)
	case statePaused:
		return c.resume(name)
	}
	if err := c.pool.Client.StartContainerWithContext(n.id, nil, ctx); err != nil {
		return fmt.Errorf("docker: restart %s: %w", name, err)
	}
	c.mu.Lock()
	n.state = stateUp
	c.mu.Unlock()
	if isolated {
		return nil // nothing can reach it to check
	}
	return c.waitServing(ctx, n)
}

// pause freezes every process of the container (cgroup freezer):
// connections stay open, nothing answers.
func (c *cluster) pause(name string) error {
	return c.change(name, "is not running", func(n *node) bool { return n.state == stateUp },
		func(n *node) error { return engineErr("pause", name, c.pool.Client.PauseContainer(n.id)) },
		func(n *node) { n.state = statePaused })
}

func (c *cluster) resume(name string) error {
	return c.change(name, "is not paused", func(n *node) bool { return n.state == statePaused },
		func(n *node) error { return engineErr("resume", name, c.pool.Client.UnpauseContainer(n.id)) },
		func(n *node) { n.state = stateUp })
}

// isolate disconnects the container from the run's network: every peer and
// every client (the runner included) loses it at once.
func (c *cluster) isolate(ctx context.Context, name string) error {
	return c.change(name, "is already isolated", func(n *node) bool { return !n.isolated },
		func(n *node) error {
			return engineErr("disconnect", name, c.pool.Client.DisconnectNetwork(c.network.ID,
				dc.NetworkConnectionOptions{Container: n.sandbox, Force: true, Context: ctx}))
		},
		func(n *node) { n.isolated = true })
}

// rejoin connects an isolated container again, on its old address.
func (c *cluster) rejoin(ctx context.Context, name string) error {
	host := strings.ReplaceAll(name, " ", "-")
	return c.change(name, "is not isolated", func(n *node) bool { return n.isolated },
		func(n *node) error {
			return engineErr("reconnect", name, c.pool.Client.ConnectNetwork(c.network.ID, dc.NetworkConnectionOptions{
				Container:      n.sandbox,
				EndpointConfig: &dc.EndpointConfig{IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.ip}, Aliases: []string{host}},
				Context:        ctx,
			}))
		},
		func(n *node) { n.isolated = false })
}

// change applies one engine action to the named node: when ok (read under
// the lock) holds, do makes the engine call, and set records its effect
// under the lock; otherwise the node "is not" in a state for it.
func (c *cluster) change(name, isNot string, ok func(*node) bool, do func(*node) error, set func(*node)) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	can := ok(n)
	c.mu.Unlock()
	if !can {
		return fmt.Errorf("docker: %s %s", name, isNot)
	}
	if err := do(n); err != nil {
		return err
	}
	c.mu.Lock()
	set(n)
	c.mu.Unlock()
	return nil
}

// engineErr wraps a failed engine call on a node.
func engineErr(verb, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("docker: %s %s: %w", verb, name, err)
}

// cut drops all traffic between two nodes, both ways, with packet filter
// rules inside each end's network namespace.
func (c *cluster) cut(a, b string) error {
	if c.cutter == nil {
		return errNoCuts
	}
	na, err := c.node(a)
	if err != nil {
		return err
	}
	nb, err := c.node(b)
	if err != nil {
		return err
	}
	l := newLink(a, b)
	c.mu.Lock()
	if c.cuts[l] {
		c.mu.Unlock()
		return fmt.Errorf("docker: %s - %s is already cut", a, b)
	}
	c.cuts[l] = true
	c.mu.Unlock()
	var errs []error
	for _, p := range [][2]*node{{na, nb}, {nb, na}} {
		errs = append(errs, c.cutter.drop(c.sandboxPID(p[0]), p[1].ip))
	}
	return errors.Join(errs...)
}

// heal removes a cut between two nodes.
func (c *cluster) heal(a, b string) error {
	if c.cutter == nil {
		return errNoCuts
	}
	na, err := c.node(a)
	if err != nil {
		return err
	}
	nb, err := c.node(b)
	if err != nil {
		return err
	}
	lossErr := c.unloss(a, b)
	l := newLink(a, b)
	c.mu.Lock()
	wasCut := c.cuts[l]
	delete(c.cuts, l)
	c.mu.Unlock()
	if !wasCut {
		return lossErr
	}
	for _, p := range [][2]*node{{na, nb}, {nb, na}} {
		c.cutter.undrop(c.sandboxPID(p[0]), p[1].ip)
	}
	return nil
}

// healAll removes every cut and rejoins every isolated node.
func (c *cluster) healAll(ctx context.Context) error {
	c.mu.Lock()
	var cuts []link
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
	errs := []error{c.unlossAll()}
	for _, l := range cuts {
		errs = append(errs, c.heal(l[0], l[1]))
	}
	for _, name := range isolated {
		errs = append(errs, c.rejoin(ctx, name))
	}
	c.rejoinAllPeers()
	return errors.Join(errs...)
}

// sandboxPID returns the main process id of n's sandbox on the engine's
// host, 0 when unknown.
func (c *cluster) sandboxPID(n *node) int {
	ct, err := c.pool.Client.InspectContainer(n.sandbox)
	if err != nil || ct.State.Pid <= 0 {
		return 0
	}
	return ct.State.Pid
}

// logs returns the last lines of a node's output, for error messages.
func (c *cluster) logs(name string, lines int) string {
	n, err := c.node(name)
	if err != nil || n.id == "" {
		return ""
	}
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.pool.Client.Logs(dc.LogsOptions{Context: ctx, Container: n.id, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: strconv.Itoa(lines)})
	return strings.TrimSpace(buf.String())
}

// names returns the node names in creation order.
func (c *cluster) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.order)
}

// close removes every container and the network. It is idempotent and
// also removes containers of this run it lost track of.
func (c *cluster) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	return removeRun(c.pool.Client, c.runID, c.network)
}

// removeRun force-removes the containers labelled with run, then the
// network.
func removeRun(client *dc.Client, run string, nw *dc.Network) error {
	var errs []error
	cts, err := client.ListContainers(dc.ListContainersOptions{All: true, Filters: map[string][]string{"label": {labelRun + "=" + run}}})
	if err != nil {
		errs = append(errs, err)
	}
	// Processes first, then the sandboxes whose namespaces they use.
	slices.SortStableFunc(cts, func(a, b dc.APIContainers) int {
		return strings.Compare(a.Labels[labelSandbox], b.Labels[labelSandbox])
	})
	for _, ct := range cts {
		if strings.Contains(strings.ToLower(ct.State), "paused") || strings.Contains(ct.Status, "Paused") {
			_ = client.UnpauseContainer(ct.ID)
		}
		if err := client.RemoveContainer(dc.RemoveContainerOptions{ID: ct.ID, Force: true, RemoveVolumes: true}); err != nil && !isNoSuch(err) {
			errs = append(errs, fmt.Errorf("docker: remove container %s: %w", ct.ID[:12], err))
		}
	}
	if nw != nil {
		if err := client.RemoveNetwork(nw.ID); err != nil && !isNoSuch(err) {
			errs = append(errs, fmt.Errorf("docker: remove network %s: %w", nw.Name, err))
		}
	}
	return errors.Join(errs...)
}

func isNoSuch(err error) bool {
	var nsc *dc.NoSuchContainer
	if errors.As(err, &nsc) {
		return true
	}
	var nsn *dc.NoSuchNetwork
	if errors.As(err, &nsn) {
		return true
	}
	var de *dc.Error
	return errors.As(err, &de) && de.Status == 404
}
