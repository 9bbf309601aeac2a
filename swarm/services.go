package swarm

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/docker"
	"github.com/brokerlab/brokerlab/docker/image"
	"github.com/brokerlab/brokerlab/scenarios"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

func init() {
	docker.RegisterRuntime(scenario.RuntimeSwarm, newServices)
	scenarios.RegisterPreparer(scenario.RuntimeSwarm, func(ctx context.Context, logger *slog.Logger) error {
		if os.Getenv(ImageEnv) != "" {
			return nil // the user's image, already on every machine
		}
		return docker.PrepareImage(ctx, logger)
	})
}

// Labels on every service, container, network and volume a run creates.
// Owner is "<hostname>/<pid>" of the runner: the next run removes what a
// dead owner on this host left behind.
const (
	labelRun   = "org.brokerlab.swarm.run"
	labelOwner = "org.brokerlab.swarm.owner"
	labelNode  = "org.brokerlab.node"
	// labelRoles on a swarm node restricts which roles run there
	// (comma-separated: broker, etcd, nameserver, controller, client);
	// nodes without it take every role.
	labelRoles = "org.brokerlab.roles"
)

// loadgenPort is the load generators' port in their tasks.
const loadgenPort = 7070

// ImageEnv names an image every swarm node holds (e.g. brokerlab:local,
// loaded with docker save | docker load); when set, it is used as it is
// and nothing is built.
const ImageEnv = "BROKERLAB_SWARM_IMAGE"

// swarmHost is one swarm node the run places services on.
type swarmHost struct {
	id, hostname, addr string
	roles              map[string]bool   // nil: every role
	labels             map[string]string // the node's labels
}

func (h swarmHost) takes(role string) bool { return h.roles == nil || h.roles[role] }

// services is the swarm runtime's Launcher: per node a swarm service of
// one replica pinned to one swarm node. Peers and load generators reach it
// by its service name on the run's overlay network (DNS round robin, so a
// restarted task is found at its new address); the runner reaches it
// through ports published on its swarm node (host mode).
type services struct {
	pool    *dockertest.Pool
	eng     *engine
	image   image.Image
	runID   string
	owner   string
	network string // id of the run's overlay network
	hosts   []swarmHost
	agents  *agentClient
	// noFilter: why no agent can run packet filter rules ("" when some can)
	noFilter string
	release  func() // leaves a swarm this run formed
	logger   *slog.Logger
	spec     scenario.Spec

	mu     sync.Mutex
	tasks  map[*docker.Node]*task
	byRole map[string]int // round-robin position per role
	// bySelector: round-robin position per role and placement selector
	bySelector map[string]int
	nextPort   int
	gens       *loadgens
}

// task is a node's service and its current task.
type task struct {
	service   string // service name = overlay DNS name
	serviceID string
	host      swarmHost // the swarm node it is pinned to
	pub       map[int]int
	args      []string
	container string // the current task's container
}

// connect returns the engine's pool and its swarm API client.
func connect(ctx context.Context) (*dockertest.Pool, *engine, error) {
	pool, err := image.Connect(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("swarm: no engine answers at %s: %w", image.Endpoint(), err)
	}
	env, err := pool.Client.Version()
	if err != nil {
		return nil, nil, fmt.Errorf("swarm: engine version: %w", err)
	}
	eng, err := newEngine(pool.Client, image.Endpoint(), env.Get("ApiVersion"))
	if err != nil {
		return nil, nil, err
	}
	return pool, eng, nil
}

func swarmImage(ctx context.Context, pool *dockertest.Pool, logger *slog.Logger) (image.Image, error) {
	ref := os.Getenv(ImageEnv)
	if ref == "" {
		return docker.EnsureImage(ctx, pool, logger)
	}
	repo, tag, ok := strings.Cut(ref, ":")
	if !ok || repo == "" || tag == "" {
		return image.Image{}, fmt.Errorf("swarm: %s=%q: want repository:tag", ImageEnv, ref)
	}
	return image.Image{Repository: repo, Tag: tag}, nil
}

// newServices connects, joins or forms the swarm, makes sure the image
// exists, removes leftovers of dead runs, reads the swarm's nodes and
// creates the run's attachable overlay network.
func newServices(ctx context.Context, env scenarios.Env, logger *slog.Logger) (docker.Launcher, error) {
	pool, eng, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	_, release, err := acquireSwarm(ctx, eng, logger)
	if err != nil {
		return nil, err
	}
	// Placement first: a scenario that names a machine the swarm lacks
	// fails before anything is built or created.
	hosts, err := readHosts(ctx, eng)
	if err == nil {
		err = checkPlacement(env.Spec, hosts)
	}
	if err != nil {
		release()
		return nil, err
	}
	img, err := swarmImage(ctx, pool, logger)
	if err != nil {
		release()
		return nil, err
	}
	s := &services{
		pool: pool, eng: eng, image: img, release: release, hosts: hosts,
		logger: logger.With("component", "swarm"), spec: env.Spec,
		runID:  fmt.Sprintf("blswarm-%06x", rand.IntN(1<<24)),
		owner:  owner(),
		tasks:  map[*docker.Node]*task{},
		byRole: map[string]int{}, bySelector: map[string]int{},
		// Below Linux's ephemeral range (32768-60999), where other
		// processes' outgoing connections and port-0 listeners live.
		nextPort: 20000 + 20*rand.IntN(600),
	}
	sweep(ctx, pool.Client, eng, logger)
	nw, err := eng.createOverlay(ctx, s.runID, map[string]string{labelRun: s.runID, labelOwner: s.owner})
	if err != nil {
		release()
		return nil, fmt.Errorf("swarm: create overlay network: %w", err)
	}
	s.network = nw
	if err := s.startAgents(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
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
		h := swarmHost{id: n.ID, hostname: n.Description.Hostname, addr: n.Status.Addr, labels: n.Spec.Labels}
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

// Reserve places the node on a swarm node and picks its published ports;
// peers reach it by its service name.
func (s *services) Reserve(n *docker.Node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.placeLocked(n.Role)
	if err != nil {
		return err
	}
	t := &task{service: s.runID + "-" + strings.ReplaceAll(n.Name, " ", "-"), host: h, pub: map[int]int{}}
	n.Host = t.service
	n.Runner = map[int]string{}
	for _, p := range n.Ports {
		t.pub[p] = s.freePortLocked()
		n.Runner[p] = net.JoinHostPort(h.addr, strconv.Itoa(t.pub[p]))
	}
	s.tasks[n] = t
	return nil
}

// freePortLocked returns the next port no process of the runner's host
// listens on (other machines of a swarm are not asked: a clash there
// fails the task's start, and the run, with the engine's message).
func (s *services) freePortLocked() int {
	for range 1000 {
		p := s.nextPort
		s.nextPort++
		if s.nextPort >= 32768 {
			s.nextPort = 20000
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	return s.nextPort
}

func (s *services) task(n *docker.Node) task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.tasks[n]
}

// serviceSpec is a node's service: one replica pinned to its swarm node,
// never restarted by swarm (restarts are faults the runner applies), its
// data in a node-local volume, its ports published on its node.
func (s *services) serviceSpec(n *docker.Node, t task) swarm.ServiceSpec {
	labels := map[string]string{labelRun: s.runID, labelOwner: s.owner, labelNode: n.Name}
	one := uint64(1)
	var ports []swarm.PortConfig
	for _, p := range n.Ports {
		ports = append(ports, swarm.PortConfig{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(p),
			PublishedPort: uint32(t.pub[p]), PublishMode: swarm.PortConfigPublishModeHost,
		})
	}
	none := swarm.RestartPolicyConditionNone
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: t.service, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: s.image.Ref(), Args: t.args, Hostname: t.service, Labels: labels,
				Mounts: []mount.Mount{{
					Type: mount.TypeVolume, Source: t.service, Target: "/data",
					VolumeOptions: &mount.VolumeOptions{Labels: labels},
				}},
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: none},
			Placement:     &swarm.Placement{Constraints: []string{"node.id==" + t.host.id}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: s.network, Aliases: []string{t.service}}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: ports},
	}
}

// Start creates n's service and waits until its task serves.
func (s *services) Start(ctx context.Context, n *docker.Node, args []string) (string, error) {
	s.mu.Lock()
	s.tasks[n].args = args
	t := *s.tasks[n]
	s.mu.Unlock()
	id, err := s.eng.createService(ctx, s.serviceSpec(n, t))
	if err != nil {
		return "", fmt.Errorf("swarm: create service %s: %w", t.service, err)
	}
	s.mu.Lock()
	s.tasks[n].serviceID = id
	s.mu.Unlock()
	return s.waitServing(ctx, n, "")
}

// currentTask returns the newest task of n's service.
func (s *services) currentTask(ctx context.Context, n *docker.Node) (swarm.Task, error) {
	ts, err := s.eng.tasks(ctx, "service", s.task(n).serviceID)
	if err != nil {
		return swarm.Task{}, err
	}
	if len(ts) == 0 {
		return swarm.Task{}, fmt.Errorf("swarm: %s has no task yet", n.Name)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].CreatedAt.After(ts[j].CreatedAt) })
	return ts[0], nil
}

// waitServing waits until n's newest task other than oldContainer runs
// and serves through its published ports; it records the task's container
// and returns its overlay address.
func (s *services) waitServing(ctx context.Context, n *docker.Node, oldContainer string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		ip, err := s.checkServing(ctx, n, oldContainer)
		if err == nil {
			return ip, nil
		}
		var fatal *taskFailed
		if errors.As(err, &fatal) {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("swarm: %s does not serve: %w (last: %v)", n.Name, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond): // polling the engine
		}
	}
}

// taskFailed: the task ended before serving.
type taskFailed struct{ msg string }

func (e *taskFailed) Error() string { return e.msg }

func (s *services) checkServing(ctx context.Context, n *docker.Node, oldContainer string) (string, error) {
	t, err := s.currentTask(ctx, n)
	if err != nil {
		return "", err
	}
	cs := t.Status.ContainerStatus
	if cs == nil || cs.ContainerID == "" || cs.ContainerID == oldContainer {
		return "", fmt.Errorf("task %s: %s", t.ID, t.Status.State)
	}
	switch t.Status.State {
	case swarm.TaskStateRunning:
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateShutdown:
		return "", &taskFailed{fmt.Sprintf("swarm: %s ended before serving (%s: %s %s): %s", n.Name, t.Status.State, t.Status.Message, t.Status.Err, s.containerLogs(cs.ContainerID, 20))}
	default:
		return "", fmt.Errorf("task %s: %s", t.ID, t.Status.State)
	}
	var ip string
	for _, a := range t.NetworksAttachments {
		if a.Network.ID == s.network && len(a.Addresses) > 0 {
			ip, _, _ = strings.Cut(a.Addresses[0], "/")
		}
	}
	if err := ready(ctx, n); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.tasks[n].container = cs.ContainerID
	s.mu.Unlock()
	return ip, nil
}

// ready checks that n's process answers through its published ports: a
// load generator a clock exchange, other nodes docker.Serving (a TCP
// connect is not enough: the engine's proxy accepts on a published port
// before the process listens, and after it died).
func ready(ctx context.Context, n *docker.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if n.Role == docker.RoleClient {
		return clockExchange(ctx, n.RunnerAddr(loadgenPort))
	}
	return docker.Serving(ctx, n)
}

// containerLogs returns the last lines of a container's output on the
// local engine.
func (s *services) containerLogs(container string, lines int) string {
	var buf strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.pool.Client.Logs(dc.LogsOptions{Context: ctx, Container: container, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: strconv.Itoa(lines)})
	return strings.TrimSpace(buf.String())
}

func (s *services) Logs(n *docker.Node, lines int) string {
	return s.containerLogs(s.task(n).container, lines)
}

// agent asks the fault agent of the swarm node running n's task.
func (s *services) agent(ctx context.Context, n *docker.Node, op string, rule ...string) error {
	t := s.task(n)
	_, err := s.agents.call(ctx, t.host.id, agentRequest{Op: op, Container: t.container, Rule: rule})
	return err
}

// Kill has the task's node's agent SIGKILL its container and wait until it
// stopped (thawing it first when paused). Swarm does not restart it
// (restart condition none).
func (s *services) Kill(ctx context.Context, n *docker.Node, _ bool) error {
	return s.agent(ctx, n, opKill)
}

// Restart replaces a killed node's task: a forced service update starts a
// new task of the same service on the same swarm node with the same
// volume (the node's data) and the same service name; it waits until the
// new task serves (always: its packet filter rules go on afterwards).
func (s *services) Restart(ctx context.Context, n *docker.Node, _ bool) (string, error) {
	t := s.task(n)
	svc, err := s.eng.service(ctx, t.serviceID)
	if err != nil {
		return "", err
	}
	svc.Spec.TaskTemplate.ForceUpdate++
	if err := s.eng.updateService(ctx, svc); err != nil {
		return "", err
	}
	return s.waitServing(ctx, n, t.container)
}

// Pause and Resume go through the agent of the task's node.
func (s *services) Pause(ctx context.Context, n *docker.Node) error {
	return s.agent(ctx, n, opPause)
}

func (s *services) Resume(ctx context.Context, n *docker.Node) error {
	return s.agent(ctx, n, opResume)
}

// Netfilter has the agent of the task's node run the rule in the task's
// network namespace.
func (s *services) Netfilter(ctx context.Context, n *docker.Node, rule ...string) error {
	if err := s.agent(ctx, n, opIptables, rule...); err != nil {
		return fmt.Errorf("swarm: %s: %w", n.Name, err)
	}
	return nil
}

// NetfilterErr is nil when some swarm node's agent can run packet filter
// rules (a node that cannot answers its own requests with ErrNotApplicable).
func (s *services) NetfilterErr() error {
	if s.noFilter != "" {
		return fmt.Errorf("%w: %s", errNoCuts, s.noFilter)
	}
	return nil
}

// KeepsNetwork: a restart is a new task, with a new namespace and a new
// overlay address.
func (s *services) KeepsNetwork() bool { return false }

// Close removes every service, then the network and the volumes, and
// leaves a swarm this run formed.
func (s *services) Close() error {
	s.mu.Lock()
	var ns []*docker.Node
	for n, t := range s.tasks {
		if t.container != "" {
			ns = append(ns, n)
		}
	}
	gens := s.gens
	s.mu.Unlock()
	// A paused task is thawed so that its service can stop it; resuming a
	// running one fails, harmlessly.
	if s.agents != nil {
		for _, n := range ns {
			_ = s.agent(context.Background(), n, opResume)
		}
	}
	if gens != nil && gens.largestOffset() != 0 {
		s.logger.Info("load generator clocks", "largest-offset", gens.largestOffset())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := removeRun(ctx, s.pool.Client, s.eng, s.runID)
	s.release()
	return err
}

// agentPort is the fault agents' port in their tasks.
const agentPort = 7071

// startAgents deploys the run's fault agents, a global service (one task
// per swarm node) with its node's engine socket and root file system
// mounted and the capabilities to enter a namespace and change its packet
// filter, published in host mode at a port picked per run, and waits until
// every node's agent answers.
func (s *services) startAgents(ctx context.Context) error {
	token := make([]byte, 16)
	for i := range token {
		token[i] = byte(rand.IntN(256))
	}
	s.mu.Lock()
	port := s.freePortLocked()
	s.mu.Unlock()
	name := s.runID + "-faultagent"
	labels := map[string]string{labelRun: s.runID, labelOwner: s.owner, labelNode: "faultagent"}
	c := &agentClient{token: hex.EncodeToString(token), addrs: map[string]string{}}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:    s.image.Ref(),
				Args:     []string{"faultagent", "--listen", "0.0.0.0:" + strconv.Itoa(agentPort), "--run", s.runID, "--host-root", "/host"},
				Env:      []string{AgentTokenEnv + "=" + c.token},
				Hostname: "{{.Node.Hostname}}",
				Labels:   labels,
				Mounts: []mount.Mount{
					{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
					{Type: mount.TypeBind, Source: "/", Target: "/host"},
				},
				CapabilityAdd: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"},
			},
		},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: agentPort,
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}
	if _, err := s.eng.createService(ctx, spec); err != nil {
		return fmt.Errorf("swarm: create the fault agents: %w", err)
	}
	for _, h := range s.hosts {
		c.addrs[h.id] = net.JoinHostPort(h.addr, strconv.Itoa(port))
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	filters := 0
	var why []string
	for _, h := range s.hosts {
		var rep agentReply
		err := pollUntil(wctx, 200*time.Millisecond, func() error {
			var err error
			rep, err = c.call(wctx, h.id, agentRequest{Op: opHello})
			return err
		})
		if err != nil {
			return fmt.Errorf("swarm: the fault agent of swarm node %s does not answer: %w", h.hostname, err)
		}
		if rep.NoFilter == "" {
			filters++
		} else {
			why = append(why, rep.NoFilter)
		}
	}
	if filters == 0 {
		s.noFilter = strings.Join(why, "; ")
	}
	s.agents = c
	return nil
}
