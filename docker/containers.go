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

	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/nodes"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// Labels on every container and network a run creates. Owner is
// "<hostname>/<pid>" of the creating process: a later run removes what a
// dead owner on this host left behind (an interrupted run, a test binary
// killed by its timeout).
const (
	labelRun     = "org.brokerlab.run"
	labelOwner   = "org.brokerlab.owner"
	labelNode    = "org.brokerlab.node"
	labelSandbox = "org.brokerlab.sandbox" // on network-namespace holders
)

// errNoCuts: a link cut needs packet filter rules inside a container, which
// a scratch image cannot hold, so the runner applies them from the engine's
// host.
var errNoCuts = fmt.Errorf("%w: per-link cuts under docker need root, nsenter and iptables on the engine's host (isolate works everywhere)", scenarios.ErrNotApplicable)

// containers is the docker runtime's Launcher: a private bridge network
// and, per node, two containers. A sandbox running /pause owns the node's
// fixed address on the network, and the node's brokerlab process runs in
// the sandbox's network namespace, like the containers of a Kubernetes
// pod. So a killed node's address stays up and its kernel refuses
// connections at once (a process crash on a live host, as in the
// in-process runtime), a restart comes back on the same address, and
// isolation and link cuts act on the sandbox, whose namespace outlives
// restarts.
type containers struct {
	pool    *dockertest.Pool
	image   image.Image
	runID   string
	owner   string
	network *dc.Network
	subnet  netip.Prefix
	nsenter *Nsenter // nil when per-link cuts are unavailable
	api     string   // the engine's API version, for per-start clients
	logger  *slog.Logger

	mu     sync.Mutex
	ctrs   map[*Node]*ctr
	nextIP netip.Addr // next free address
}

// ctr is one node's pair of containers.
type ctr struct {
	id      string // the brokerlab container
	sandbox string // the pause container holding the network namespace
}

// imageCache holds the image built by this process: every deployment of a
// run (and every test of a test binary) shares one build.
var imageCache struct {
	sync.Mutex
	img image.Image
	ok  bool
}

// EnsureImage builds the image from the source tree once per process, or
// falls back to brokerlab:local when there is no source tree here.
func EnsureImage(ctx context.Context, pool *dockertest.Pool, logger *slog.Logger) (image.Image, error) {
	imageCache.Lock()
	defer imageCache.Unlock()
	if imageCache.ok {
		return imageCache.img, nil
	}
	img, err := image.Build(ctx, pool, image.Options{Logger: logger})
	if errors.Is(err, image.ErrNoSource) {
		img, err = image.Local(pool)
	}
	if err != nil {
		return image.Image{}, err
	}
	imageCache.img, imageCache.ok = img, true
	return img, nil
}

// PrepareImage builds the image once, before the runner's first set-up
// bound. Where no engine answers it does nothing: the drivers then say so
// per topology.
func PrepareImage(ctx context.Context, logger *slog.Logger) error {
	pool, err := image.Connect(ctx)
	if err != nil {
		return nil
	}
	_, err = EnsureImage(ctx, pool, logger)
	return err
}

// newContainers connects to the engine, makes sure the image exists and
// creates the run's network, after removing what dead owners on this host
// left behind.
func newContainers(ctx context.Context, _ scenarios.Env, logger *slog.Logger) (Launcher, error) {
	pool, err := image.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: no engine answers at %s: %w", image.Endpoint(), err)
	}
	img, err := EnsureImage(ctx, pool, logger)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	c := &containers{
		pool: pool, image: img, logger: logger.With("component", "docker"),
		runID: fmt.Sprintf("brokerlab-%06x", rand.IntN(1<<24)),
		owner: host + "/" + strconv.Itoa(os.Getpid()),
		ctrs:  map[*Node]*ctr{},
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
	if strings.HasPrefix(image.Endpoint(), "unix://") {
		c.nsenter = NewNsenter()
	}
	return c, nil
}

// createNetwork creates a bridge network with an explicit /24, which lets
// containers keep fixed addresses across restarts and reconnects. Subnets
// already in use are skipped.
func (c *containers) createNetwork(ctx context.Context) error {
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

// Reserve gives the node the next address of the subnet; the runner
// reaches it there too (the engine's host routes the bridge).
func (c *containers) Reserve(n *Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.subnet.Contains(c.nextIP) || c.nextIP.As4()[3] == 255 {
		return fmt.Errorf("docker: subnet %v is full", c.subnet)
	}
	n.Host = c.nextIP.String()
	c.nextIP = c.nextIP.Next()
	n.Runner = map[int]string{}
	for _, p := range n.Ports {
		n.Runner[p] = net.JoinHostPort(n.Host, strconv.Itoa(p))
	}
	c.ctrs[n] = &ctr{}
	return nil
}

func (c *containers) ctr(n *Node) ctr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.ctrs[n]
}

// Start creates and starts n's sandbox and then its brokerlab container
// running args, and waits until it serves.
func (c *containers) Start(ctx context.Context, n *Node, args []string) (string, error) {
	client, err := image.NewClient(c.api) // one per start: starts run concurrently
	if err != nil {
		return "", err
	}
	host := strings.ReplaceAll(n.Name, " ", "-")
	labels := map[string]string{labelRun: c.runID, labelOwner: c.owner, labelNode: n.Name}
	sbLabels := map[string]string{labelRun: c.runID, labelOwner: c.owner, labelNode: n.Name, labelSandbox: "true"}
	sb, err := client.CreateContainer(dc.CreateContainerOptions{
		Name:       c.runID + "-" + host + "-net",
		Config:     &dc.Config{Hostname: host, Image: c.image.Ref(), Entrypoint: []string{"/pause"}, Labels: sbLabels},
		HostConfig: &dc.HostConfig{NetworkMode: c.network.Name},
		NetworkingConfig: &dc.NetworkingConfig{EndpointsConfig: map[string]*dc.EndpointConfig{
			c.network.Name: {IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.Host}, Aliases: []string{host}},
		}},
		Context: ctx,
	})
	if err != nil {
		return "", fmt.Errorf("docker: create %s sandbox: %w", n.Name, err)
	}
	c.mu.Lock()
	c.ctrs[n].sandbox = sb.ID
	c.mu.Unlock()
	if err := client.StartContainerWithContext(sb.ID, nil, ctx); err != nil {
		return "", fmt.Errorf("docker: start %s sandbox: %w", n.Name, err)
	}
	ct, err := client.CreateContainer(dc.CreateContainerOptions{
		Name:       c.runID + "-" + host,
		Config:     &dc.Config{Image: c.image.Ref(), Cmd: args, Labels: labels},
		HostConfig: &dc.HostConfig{NetworkMode: "container:" + sb.ID},
		Context:    ctx,
	})
	if err != nil {
		return "", fmt.Errorf("docker: create %s: %w", n.Name, err)
	}
	c.mu.Lock()
	c.ctrs[n].id = ct.ID
	c.mu.Unlock()
	if err := client.StartContainerWithContext(ct.ID, nil, ctx); err != nil {
		return "", fmt.Errorf("docker: start %s: %w", n.Name, err)
	}
	return n.Host, c.waitServing(ctx, n)
}

// waitServing polls until n accepts TCP connections, failing early with
// the container's log when it exits.
func (c *containers) waitServing(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	id := c.ctr(n).id
	lastInspect := time.Now()
	for {
		conn, err := net.DialTimeout("tcp", n.addr(), 250*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Since(lastInspect) > 500*time.Millisecond {
			lastInspect = time.Now()
			if ct, ierr := c.pool.Client.InspectContainerWithContext(id, ctx); ierr == nil && !ct.State.Running {
				return fmt.Errorf("docker: %s exited (code %d) before serving on %s: %s", n.Name, ct.State.ExitCode, n.addr(), c.Logs(n, 20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker: %s does not serve on %s: %w (last: %v)", n.Name, n.addr(), ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to the brokerlab container (its sandbox keeps the
// address) and waits until the engine reports it stopped. A frozen process
// cannot take a signal; the engine kills it once thawed, which is still
// one abrupt stop.
func (c *containers) Kill(ctx context.Context, n *Node, paused bool) error {
	id := c.ctr(n).id
	if paused {
		_ = c.pool.Client.UnpauseContainer(id)
	}
	if err := c.pool.Client.KillContainer(dc.KillContainerOptions{ID: id, Signal: dc.SIGKILL, Context: ctx}); err != nil {
		return err
	}
	return c.awaitStopped(ctx, id)
}

// awaitStopped polls the engine until the container is no longer running.
func (c *containers) awaitStopped(ctx context.Context, id string) error {
	for {
		ct, err := c.pool.Client.InspectContainerWithContext(id, ctx)
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

// Restart starts the same container again: its file system (the node's
// data), its sandbox (same address, same rules).
func (c *containers) Restart(ctx context.Context, n *Node, wait bool) (string, error) {
	if err := c.pool.Client.StartContainerWithContext(c.ctr(n).id, nil, ctx); err != nil {
		return "", err
	}
	if !wait {
		return n.Host, nil
	}
	return n.Host, c.waitServing(ctx, n)
}

func (c *containers) Pause(_ context.Context, n *Node) error {
	return c.pool.Client.PauseContainer(c.ctr(n).id)
}

func (c *containers) Resume(_ context.Context, n *Node) error {
	return c.pool.Client.UnpauseContainer(c.ctr(n).id)
}

// Disconnect takes the sandbox off the run's network: peers' connections
// to it hang.
func (c *containers) Disconnect(ctx context.Context, n *Node) error {
	return c.pool.Client.DisconnectNetwork(c.network.ID, dc.NetworkConnectionOptions{Container: c.ctr(n).sandbox, Force: true, Context: ctx})
}

// Reconnect puts the sandbox back on its old address.
func (c *containers) Reconnect(ctx context.Context, n *Node) error {
	host := strings.ReplaceAll(n.Name, " ", "-")
	return c.pool.Client.ConnectNetwork(c.network.ID, dc.NetworkConnectionOptions{
		Container:      c.ctr(n).sandbox,
		EndpointConfig: &dc.EndpointConfig{IPAMConfig: &dc.EndpointIPAMConfig{IPv4Address: n.Host}, Aliases: []string{host}},
		Context:        ctx,
	})
}

// Netfilter enters the sandbox's namespace from the engine's host.
func (c *containers) Netfilter(ctx context.Context, n *Node, rule ...string) error {
	if c.nsenter == nil {
		return errNoCuts
	}
	pid := 0
	if ct, err := c.pool.Client.InspectContainer(c.ctr(n).sandbox); err == nil {
		pid = ct.State.Pid
	}
	if err := c.nsenter.Iptables(ctx, pid, rule...); err != nil {
		return fmt.Errorf("docker: %s: %w", n.Name, err)
	}
	return nil
}

func (c *containers) NetfilterErr() error {
	if c.nsenter == nil {
		return errNoCuts
	}
	return nil
}

// KeepsNetwork: the sandbox outlives restarts.
func (c *containers) KeepsNetwork() bool { return true }

// Logs returns the last lines of a node's output.
func (c *containers) Logs(n *Node, lines int) string {
	id := c.ctr(n).id
	if id == "" {
		return ""
	}
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.pool.Client.Logs(dc.LogsOptions{Context: ctx, Container: id, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: strconv.Itoa(lines)})
	return strings.TrimSpace(buf.String())
}

// Clients run in the runner's process and reach the containers at their
// addresses on the bridge, which the engine's host routes.
func (c *containers) Clients(_ context.Context, _ *Cluster, spec ClientSpec) (Clients, error) {
	return &nodes.KafkaClients{
		NewDiscovery: func(name string, onChange func(discovery.Change)) (discovery.Discovery, error) {
			logger := spec.Logger.With("component", "discovery", "client", name)
			if spec.NameServers != nil {
				cfg := *spec.NameServers
				cfg.OnChange, cfg.Logger = onChange, logger
				return discovery.NewNameServers(cfg)
			}
			cfg := *spec.Bootstrap
			cfg.OnChange, cfg.Logger = onChange, logger
			return discovery.NewBootstrap(cfg)
		},
		Style:  spec.Style,
		Routes: spec.Routes,
		Logger: spec.Logger,
	}, nil
}

// Close removes every container and the network, also containers of this
// run it lost track of.
func (c *containers) Close() error {
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
