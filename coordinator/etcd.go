package coordinator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/brokerlab/brokerlab/internal/flagutil"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

// EtcdConfig configures one embedded etcd member (what `brokerlab
// coordinator` runs).
type EtcdConfig struct {
	// Name is the member name, unique in the etcd cluster.
	Name string `yaml:"name" json:"name"`
	// DataDir holds the member's WAL and snapshots. Required: there is no
	// silent default.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// ListenClientURLs are the client URLs (http://host:port); port 0
	// picks a free port, reported by Endpoints.
	ListenClientURLs []string `yaml:"listen_client_urls" json:"listen_client_urls"`
	// ListenPeerURLs are the peer URLs; port 0 picks a free port (single
	// member only: other members must know the port).
	ListenPeerURLs []string `yaml:"listen_peer_urls" json:"listen_peer_urls"`
	// AdvertiseClientURLs and AdvertisePeerURLs default to the listen URLs.
	AdvertiseClientURLs []string `yaml:"advertise_client_urls" json:"advertise_client_urls"`
	AdvertisePeerURLs   []string `yaml:"advertise_peer_urls" json:"advertise_peer_urls"`
	// InitialCluster lists every member as name=peerURL,...; empty means
	// this member alone.
	InitialCluster string `yaml:"initial_cluster" json:"initial_cluster"`
	// InitialClusterState is "new" or "existing" (joining a running cluster).
	InitialClusterState string `yaml:"initial_cluster_state" json:"initial_cluster_state"`
	// InitialClusterToken keeps separate clusters from joining each other.
	InitialClusterToken string `yaml:"initial_cluster_token" json:"initial_cluster_token"`
	// HeartbeatInterval and ElectionTimeout are etcd's raft timings.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" json:"heartbeat_interval"`
	ElectionTimeout   time.Duration `yaml:"election_timeout" json:"election_timeout"`
	// CompactionRetention keeps this much history (periodic compaction);
	// watchers further behind list again.
	CompactionRetention time.Duration `yaml:"compaction_retention" json:"compaction_retention"`
	// MetricsListen is a host:port where etcd serves its own Prometheus
	// metrics (/metrics) besides the client URLs, which serve them too;
	// empty adds no endpoint.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen"`
	// UnsafeNoFsync skips fsync: for tests and benchmarks only.
	UnsafeNoFsync bool `yaml:"unsafe_no_fsync" json:"unsafe_no_fsync"`
	// LogLevel is the lowest etcd log level passed to Logger: debug, info,
	// warn or error.
	LogLevel string `yaml:"log_level" json:"log_level"`
	// Logger receives etcd's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultEtcdConfig returns a single member on etcd's usual local ports.
// DataDir must still be set.
func DefaultEtcdConfig() EtcdConfig {
	return EtcdConfig{
		Name:                "default",
		ListenClientURLs:    []string{"http://127.0.0.1:2379"},
		ListenPeerURLs:      []string{"http://127.0.0.1:2380"},
		InitialClusterState: embed.ClusterStateFlagNew,
		InitialClusterToken: "brokerlab",
		HeartbeatInterval:   100 * time.Millisecond,
		ElectionTimeout:     time.Second,
		CompactionRetention: 10 * time.Minute,
		LogLevel:            "error",
	}
}

// Validate reports the first invalid setting.
func (c EtcdConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("coordinator: etcd member name is required")
	case c.DataDir == "":
		return errors.New("coordinator: etcd data dir is required")
	case len(c.ListenClientURLs) == 0 || len(c.ListenPeerURLs) == 0:
		return errors.New("coordinator: etcd needs client and peer listen URLs")
	case c.InitialClusterState != embed.ClusterStateFlagNew && c.InitialClusterState != embed.ClusterStateFlagExisting:
		return fmt.Errorf("coordinator: initial cluster state %q is not new or existing", c.InitialClusterState)
	case c.HeartbeatInterval < time.Millisecond:
		return errors.New("coordinator: etcd heartbeat interval must be at least 1ms")
	case c.ElectionTimeout < 5*c.HeartbeatInterval:
		return errors.New("coordinator: etcd election timeout must be at least 5 heartbeat intervals")
	case c.CompactionRetention < 0:
		return errors.New("coordinator: compaction retention must not be negative")
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("coordinator: etcd log level: %w", err)
	}
	for _, list := range [][]string{c.ListenClientURLs, c.ListenPeerURLs, c.AdvertiseClientURLs, c.AdvertisePeerURLs} {
		if _, err := parseURLs(list); err != nil {
			return err
		}
	}
	if c.InitialCluster != "" && (hasPortZero(c.ListenPeerURLs) || hasPortZero(c.AdvertisePeerURLs)) {
		return errors.New("coordinator: peer port 0 only works for a single member (empty initial cluster)")
	}
	return nil
}

// AddFlags binds the member's settings to fs, for `brokerlab coordinator`.
func (c *EtcdConfig) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Name, "name", c.Name, "etcd member name, unique in the etcd cluster")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "etcd data directory (required)")
	fs.Var((*flagutil.List)(&c.ListenClientURLs), "listen", "comma-separated client URLs to listen on (http://host:port; port 0 picks one)")
	fs.Var((*flagutil.List)(&c.ListenPeerURLs), "peer-listen", "comma-separated peer URLs to listen on")
	fs.Var((*flagutil.List)(&c.AdvertiseClientURLs), "advertise", "client URLs told to clients (default: --listen)")
	fs.Var((*flagutil.List)(&c.AdvertisePeerURLs), "peer-advertise", "peer URLs told to other members (default: --peer-listen)")
	fs.StringVar(&c.InitialCluster, "initial-cluster", c.InitialCluster, "every member as name=peerURL,... (default: this member alone)")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", c.InitialClusterState, "new, or existing to join a running cluster")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "token that keeps separate etcd clusters apart")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "etcd raft heartbeat interval")
	fs.DurationVar(&c.ElectionTimeout, "election-timeout", c.ElectionTimeout, "etcd raft election timeout")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "also serve etcd's Prometheus metrics on this host:port at /metrics (default: off; the client URLs serve them too)")
	fs.BoolVar(&c.UnsafeNoFsync, "unsafe-no-fsync", c.UnsafeNoFsync, "skip fsync (tests and benchmarks only)")
	fs.StringVar(&c.LogLevel, "etcd-log-level", c.LogLevel, "lowest etcd log level shown: debug, info, warn, error")
}

// Etcd is a running embedded etcd member.
type Etcd struct {
	cfg       EtcdConfig // with ports resolved: StartEtcd(cfg) restarts on the same ports
	e         *embed.Etcd
	closeOnce sync.Once
	closing   atomic.Bool // mutes etcd's logs about its own shutdown
}

// StartEtcd starts a member and returns once it listens; ReadyNotify says
// when it serves (which needs a quorum of the cluster). Port 0 in a listen
// URL is replaced by a free port before starting, so Config() can restart
// the member on the same data dir and ports.
func StartEtcd(cfg EtcdConfig) (*Etcd, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, err := resolvePorts(cfg)
	if err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	lc, _ := parseURLs(cfg.ListenClientURLs)
	lp, _ := parseURLs(cfg.ListenPeerURLs)
	ac, _ := parseURLs(cfg.AdvertiseClientURLs)
	ap, _ := parseURLs(cfg.AdvertisePeerURLs)
	ec.ListenClientUrls, ec.ListenPeerUrls, ec.AdvertiseClientUrls, ec.AdvertisePeerUrls = lc, lp, ac, ap
	ec.InitialCluster = cfg.InitialCluster
	ec.ClusterState = cfg.InitialClusterState
	ec.InitialClusterToken = cfg.InitialClusterToken
	ec.TickMs = uint(cfg.HeartbeatInterval / time.Millisecond)
	ec.ElectionMs = uint(cfg.ElectionTimeout / time.Millisecond)
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	if cfg.MetricsListen != "" {
		ec.ListenMetricsUrls = []url.URL{{Scheme: "http", Host: cfg.MetricsListen}}
	}
	if cfg.CompactionRetention > 0 {
		ec.AutoCompactionMode = "periodic"
		ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	}
	lvl, _ := zapcore.ParseLevel(cfg.LogLevel)
	ec.Logger = "zap"
	ec.LogLevel = lvl.String()
	var log *slog.Logger
	if cfg.Logger != nil {
		log = cfg.Logger.With("etcd-member", cfg.Name)
	}
	out := &Etcd{cfg: cfg}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapToSlog(log, lvl, &out.closing))
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("coordinator: start etcd member %q: %w", cfg.Name, err)
	}
	out.e = e
	return out, nil
}

// resolvePorts replaces port 0 in listen URLs by free ports, fills in the
// advertise URLs and the single-member initial cluster.
func resolvePorts(cfg EtcdConfig) (EtcdConfig, error) {
	var err error
	if cfg.ListenClientURLs, err = pickPorts(cfg.ListenClientURLs); err != nil {
		return cfg, err
	}
	if cfg.ListenPeerURLs, err = pickPorts(cfg.ListenPeerURLs); err != nil {
		return cfg, err
	}
	if len(cfg.AdvertiseClientURLs) == 0 {
		cfg.AdvertiseClientURLs = cfg.ListenClientURLs
	}
	if len(cfg.AdvertisePeerURLs) == 0 {
		cfg.AdvertisePeerURLs = cfg.ListenPeerURLs
	}
	if cfg.InitialCluster == "" {
		var parts []string
		for _, u := range cfg.AdvertisePeerURLs {
			parts = append(parts, cfg.Name+"="+u)
		}
		cfg.InitialCluster = strings.Join(parts, ",")
	}
	return cfg, nil
}

func pickPorts(urls []string) ([]string, error) {
	out := make([]string, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("coordinator: url %q: %w", s, err)
		}
		if u.Port() == "0" {
			port, err := freePort(u.Hostname())
			if err != nil {
				return nil, err
			}
			u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
		}
		out[i] = u.String()
	}
	return out, nil
}

// freePort returns a port on host that is free now, chosen below the
// kernel's ephemeral range (ip_local_port_range), so that no outgoing
// connection and no listener on port 0 can take it while its member is down
// for a restart on the same address (a port from the ephemeral range was
// taken that way on a loaded machine). Another process picking the same
// port before etcd binds it makes the start fail; it can be retried.
func freePort(host string) (int, error) {
	low := ephemeralLow()
	const first = 10000
	if low-first >= 1000 {
		for range 64 {
			port := first + rand.IntN(low-first)
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("coordinator: pick a free port on %q: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range; Linux's
// default where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 1024 && n <= 65535 {
				return n
			}
		}
	}
	return 32768
}

func parseURLs(list []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(list))
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("coordinator: %q is not a URL like http://127.0.0.1:2379", s)
		}
		if u.Port() == "" {
			return nil, fmt.Errorf("coordinator: URL %q has no port", s)
		}
		out = append(out, *u)
	}
	return out, nil
}

func hasPortZero(list []string) bool {
	for _, s := range list {
		if u, err := url.Parse(s); err == nil && u.Port() == "0" {
			return true
		}
	}
	return false
}

// Config returns the member's configuration with its ports resolved.
func (e *Etcd) Config() EtcdConfig { return e.cfg }

// Name returns the member name.
func (e *Etcd) Name() string { return e.cfg.Name }

// Endpoints returns the client endpoints as host:port, for Config.Endpoints.
func (e *Etcd) Endpoints() []string {
	out := make([]string, 0, len(e.cfg.AdvertiseClientURLs))
	for _, s := range e.cfg.AdvertiseClientURLs {
		if u, err := url.Parse(s); err == nil {
			out = append(out, u.Host)
		}
	}
	return out
}

// ReadyNotify is closed once the member serves clients.
func (e *Etcd) ReadyNotify() <-chan struct{} { return e.e.Server.ReadyNotify() }

// Err delivers a fatal error of the member's servers.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// Close stops the member (all of its connections drop). It is idempotent.
func (e *Etcd) Close() error {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		e.e.Close()
	})
	return nil
}

// Kill stops the member as a crash looks to its clients: it stops answering
// at once (requests and lease keep-alives fail from then on), then shuts
// down. Close alone is a graceful stop that keeps serving open streams,
// lease keep-alives included, for up to etcd's request timeout (about 7 s).
// Kill still returns only once the member is closed and its ports are free
// for a restart, which takes as long; a caller that must not wait runs it in
// a goroutine. (To drop the connections at once as well, cut the member's
// links in a faultnet.Network first.)
func (e *Etcd) Kill() {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		e.e.Server.HardStop()
		e.e.Close()
	})
}

// WaitReady waits until the member serves, fails, or ctx ends.
func (e *Etcd) WaitReady(ctx context.Context) error {
	select {
	case <-e.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("coordinator: etcd member %q: %w", e.cfg.Name, err)
	case <-ctx.Done():
		return fmt.Errorf("coordinator: etcd member %q not ready: %w", e.cfg.Name, ctx.Err())
	}
}

// LocalCluster returns the configs of an n-member cluster on 127.0.0.1 with
// free ports, member i named "etcd<i>" with its data in dir/etcd<i>.
func LocalCluster(n int, dir string) ([]EtcdConfig, error) {
	if n < 1 {
		return nil, fmt.Errorf("coordinator: etcd cluster size %d", n)
	}
	cfgs := make([]EtcdConfig, n)
	var members []string
	for i := range cfgs {
		c := DefaultEtcdConfig()
		c.Name = fmt.Sprintf("etcd%d", i)
		c.DataDir = filepath.Join(dir, c.Name)
		cp, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		pp, err := freePort("127.0.0.1")
		if err != nil {
			return nil, err
		}
		c.ListenClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", cp)}
		c.ListenPeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", pp)}
		members = append(members, c.Name+"="+c.ListenPeerURLs[0])
		cfgs[i] = c
	}
	for i := range cfgs {
		cfgs[i].InitialCluster = strings.Join(members, ",")
	}
	return cfgs, nil
}

// StartCluster starts every member and waits, bounded by ctx, until all
// serve. On error it closes what it started.
func StartCluster(ctx context.Context, cfgs []EtcdConfig) ([]*Etcd, error) {
	var out []*Etcd
	fail := func(err error) ([]*Etcd, error) {
		for _, e := range out {
			e.Close()
		}
		return nil, err
	}
	for _, c := range cfgs {
		e, err := StartEtcd(c)
		if err != nil {
			return fail(err)
		}
		out = append(out, e)
	}
	for _, e := range out {
		if err := e.WaitReady(ctx); err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// Endpoints returns the client endpoints of every member.
func Endpoints(members []*Etcd) []string {
	var out []string
	for _, e := range members {
		out = append(out, e.Endpoints()...)
	}
	return out
}

// RunEtcd runs one member until ctx ends or the member fails: the body of
// `brokerlab coordinator`.
func RunEtcd(ctx context.Context, cfg EtcdConfig) error {
	e, err := StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.WaitReady(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if cfg.Logger != nil {
		cfg.Logger.Info("etcd member ready", "etcd-member", cfg.Name, "endpoints", e.Endpoints(), "data-dir", cfg.DataDir)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("coordinator: etcd member %q: %w", cfg.Name, err)
	}
}
