package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats-server/v2/server/sysmem"

	"github.com/brokerlab/brokerlab/faultnet"
	ipoll "github.com/brokerlab/brokerlab/internal/poll"
)

// clusterName is the nats-server cluster (and JetStream cluster) name.
const clusterName = "brokerlab"

// readyTimeout bounds how long a starting server may take to listen.
const readyTimeout = 10 * time.Second

// node is one nats-server of the cluster. Ports are picked at the first start
// and kept, so a restarted server comes back where clients and routes expect
// it, on the same store directory.
type node struct {
	idx  int
	name string // server_name, faultnet node name, "broker-N"

	mu          sync.Mutex
	srv         *server.Server // nil while killed
	clientAddr  string
	clusterAddr string
	// routes[j] carries this server's routes to server j (nil for itself).
	routes []*routeProxy
	// Fault flags set by Apply: the server cannot be seen by the others.
	paused, isolated bool
	lastRoutes       map[uint64]routeCount // route counters at the last sample, by route id
}

// server returns the running server, nil while killed.
func (n *node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// routeTarget is what the proxies of other servers dial: the cluster port of
// a running server, "" while it is killed.
func (n *node) routeTarget() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return ""
	}
	return n.clusterAddr
}

// visible reports whether the node runs and is neither paused nor isolated,
// i.e. whether what it says about itself is what the others see.
func (n *node) visible() (*server.Server, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv, n.srv != nil && !n.paused && !n.isolated
}

// cluster is the embedded nats-server cluster: servers, route proxies and the
// faultnet network every connection goes through.
type cluster struct {
	log        *slog.Logger
	dir        string
	nw         *faultnet.Network
	maxPayload int32
	sync       syncPolicy // the file store's flush policy (sync.go)
	// deadAdvertise is the cluster address every server advertises: a
	// closed port. Each server has explicit routes to all others (through
	// the proxies), so the implicit routes a server would otherwise open to
	// advertised addresses, bypassing faultnet, fail instead.
	deadAdvertise string
	nodes         []*node

	// clientMu guards clientNames, the faultnet names of every client.
	clientMu    sync.Mutex
	clientNames map[string]struct{}
}

// newCluster starts n servers and waits until they form a JetStream cluster
// with a meta leader.
func newCluster(ctx context.Context, log *slog.Logger, dir string, n int, maxPayload int32, sync syncPolicy) (*cluster, error) {
	c := &cluster{
		log:         log,
		dir:         dir,
		nw:          faultnet.New(log.With("component", "faultnet")),
		maxPayload:  maxPayload,
		sync:        sync,
		clientNames: map[string]struct{}{},
	}
	dead, err := closedPort()
	if err != nil {
		return nil, err
	}
	c.deadAdvertise = dead
	for i := range n {
		c.nodes = append(c.nodes, &node{idx: i, name: nodeName(i), routes: make([]*routeProxy, n)})
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			p, err := newRouteProxy(c.nw.Dialer(from.name), to.routeTarget)
			if err != nil {
				return nil, fmt.Errorf("jetstream: route proxy %s -> %s: %w", from.name, to.name, err)
			}
			from.routes[to.idx] = p
		}
	}
	for _, nd := range c.nodes {
		if err := c.start(nd); err != nil {
			return nil, err
		}
	}
	if err := poll(ctx, 30*time.Second, c.metaReady); err != nil {
		return nil, fmt.Errorf("jetstream: cluster did not form: %w", err)
	}
	ok = true
	return c, nil
}

// nodeName is a server's name: its server_name, its faultnet name and the
// name raft reports for it.
func nodeName(i int) string { return "broker-" + strconv.Itoa(i) }

// nodeIndex reads a server name back; -1 if it is not one of ours.
func (c *cluster) nodeIndex(name string) int {
	s, ok := strings.CutPrefix(name, "broker-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(c.nodes) {
		return -1
	}
	return i
}

// closedPort returns a loopback address nothing listens on (it was free a
// moment ago).
func closedPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// options builds a server's configuration. Ports are random at the first
// start and the same ones after.
func (c *cluster) options(n *node) (*server.Options, error) {
	clientPort, clusterPort := -1, -1
	if n.clientAddr != "" {
		p, err := portOf(n.clientAddr)
		if err != nil {
			return nil, err
		}
		clientPort = p
	}
	if n.clusterAddr != "" {
		p, err := portOf(n.clusterAddr)
		if err != nil {
			return nil, err
		}
		clusterPort = p
	}
	var routes []*url.URL
	for _, p := range n.routes {
		if p != nil {
			routes = append(routes, &url.URL{Scheme: "nats", Host: p.addr()})
		}
	}
	opts := &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       clientPort,
		NoSigs:     true,
		MaxPayload: c.maxPayload,
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, n.name),
		// nats-server takes 3/4 of the Go runtime's soft memory limit, when
		// one is set, as its ceiling for memory-backed streams; the
		// runner's -memory-limit is the process's pacing, not the broker's
		// setting, so the ceiling is the machine's share either way.
		JetStreamMaxMemory: jetStreamMaxMemory(),
	}
	c.sync.apply(opts)
	if c.clustered() {
		opts.Cluster = server.ClusterOpts{
			Name:      clusterName,
			Host:      "127.0.0.1",
			Port:      clusterPort,
			Advertise: c.deadAdvertise,
		}
		opts.Routes = routes
	}
	return opts, nil
}

// jetStreamMaxMemory is nats-server's default ceiling for memory-backed
// streams without a runtime memory limit: 3/4 of the machine's memory.
func jetStreamMaxMemory() int64 {
	if m := sysmem.Memory(); m > 0 {
		return m / 4 * 3
	}
	return server.JetStreamMaxMemDefault
}

// clustered reports whether the servers form a JetStream cluster. A single
// server runs JetStream standalone (a cluster needs routes): no raft groups,
// and it leads every stream while it runs.
func (c *cluster) clustered() bool { return len(c.nodes) > 1 }

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// start starts node n's server (first start or restart) and waits until it
// accepts clients.
func (c *cluster) start(n *node) error {
	opts, err := c.options(n)
	if err != nil {
		return err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("jetstream: %s: %w", n.name, err)
	}
	srv.SetLoggerV2(natsLogger{log: c.log.With("node", n.name)}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("jetstream: %s not ready within %v", n.name, readyTimeout)
	}
	clientAddr, clusterAddr := srv.Addr().String(), ""
	if a := srv.ClusterAddr(); a != nil {
		clusterAddr = a.String()
	}
	n.mu.Lock()
	n.srv, n.clientAddr, n.clusterAddr = srv, clientAddr, clusterAddr
	n.lastRoutes = nil // route ids start again in a new process
	n.mu.Unlock()
	c.nw.Register(n.name, clientAddr)
	if clusterAddr != "" {
		c.nw.Register(n.name, clusterAddr)
	}
	return nil
}

// kill stops node n abruptly. nats-server has no crash switch, so the node is
// first cut off from everybody: what its shutdown would tell the others
// (raft leadership hand-off, the shutdown event) never leaves it. Its open
// connections are then reset and, unless a scenario isolated it, its links
// are restored so that dials to it are refused like dials to a dead process.
// Unlike a SIGKILL, Shutdown still flushes the server's own write buffers to
// its store files.
func (c *cluster) kill(n *node) error {
	n.mu.Lock()
	srv, isolated := n.srv, n.isolated
	n.mu.Unlock()
	if srv == nil {
		return fmt.Errorf("jetstream: %s is not running", n.name)
	}
	if !isolated {
		c.nw.Isolate(n.name)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	n.mu.Lock()
	n.srv = nil
	n.mu.Unlock()
	for _, other := range c.allNames() {
		if other != n.name {
			c.nw.Reset(n.name, other)
		}
	}
	if !isolated {
		c.nw.Rejoin(n.name)
	}
	return nil
}

// allNames lists every faultnet name in use: servers and clients.
func (c *cluster) allNames() []string {
	var names []string
	for _, n := range c.nodes {
		names = append(names, n.name)
	}
	c.clientMu.Lock()
	for name := range c.clientNames {
		names = append(names, name)
	}
	c.clientMu.Unlock()
	return names
}

// addClient records a client's faultnet name.
func (c *cluster) addClient(name string) {
	c.clientMu.Lock()
	c.clientNames[name] = struct{}{}
	c.clientMu.Unlock()
}

// clientURLs lists every server's client address.
func (c *cluster) clientURLs() []string {
	var urls []string
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.clientAddr != "" {
			urls = append(urls, "nats://"+n.clientAddr)
		}
		n.mu.Unlock()
	}
	return urls
}

// metaReady succeeds once a visible server leads the meta group and every
// running server has caught up with it.
func (c *cluster) metaReady() error {
	if !c.clustered() {
		if srv := c.nodes[0].server(); srv == nil || !srv.JetStreamEnabled() {
			return errors.New("JetStream not running")
		}
		return nil
	}
	leader := false
	for _, n := range c.nodes {
		srv := n.server()
		if srv == nil {
			continue
		}
		if !srv.JetStreamIsCurrent() {
			return fmt.Errorf("%s: meta group not current", n.name)
		}
		if _, ok := n.visible(); ok && srv.JetStreamIsLeader() {
			leader = true
		}
	}
	if !leader {
		return errors.New("no meta leader")
	}
	return nil
}

// close shuts every server down, then the proxies and the network.
func (c *cluster) close() {
	for _, n := range c.nodes {
		n.mu.Lock()
		srv := n.srv
		n.srv = nil
		n.mu.Unlock()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}
	for _, n := range c.nodes {
		for _, p := range n.routes {
			if p != nil {
				p.close()
			}
		}
	}
	c.nw.Close()
}

// poll calls f every 20 ms until it succeeds, ctx ends or timeout passes,
// and returns f's last error in the two latter cases.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	return ipoll.Until(ctx, timeout, 20*time.Millisecond, f)
}

// natsLogger routes nats-server logs to slog: errors at warn, warnings and
// notices at debug (nats-server warns about every routine step of a
// failover); debug and trace output is dropped. Route dial errors, which
// every kill causes on the other servers, go to debug too.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}

func (l natsLogger) Warnf(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}

func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
}

func (l natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "connect to route") {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

func (l natsLogger) Debugf(string, ...any) {}

func (l natsLogger) Tracef(string, ...any) {}
