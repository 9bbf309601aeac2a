package controller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/brokerlab/brokerlab/internal/flagutil"
	"log/slog"
	"net"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
)

// DialFunc opens a connection; tests pass faultnet's dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Timings are the values a timing profile sets for controller mode.
type Timings struct {
	// BrokerHeartbeat: how often a broker heartbeats to the controller
	// leader (RocketMQ brokerHeartbeatInterval: 1 s).
	BrokerHeartbeat time.Duration `yaml:"broker_heartbeat" json:"broker_heartbeat"`
	// HeartbeatTimeout: a broker silent this long is inactive (RocketMQ
	// controllerHeartBeatTimeoutMills: 10 s).
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	// Scan: how often the leader looks for inactive brokers and masters
	// (RocketMQ scanNotActiveBrokerInterval, scanInactiveMasterInterval:
	// 5 s).
	Scan time.Duration `yaml:"scan" json:"scan"`
	// Tick is one Raft tick; a Raft election takes ElectionTicks to
	// 2*ElectionTicks ticks, a leader heartbeats every tick.
	Tick          time.Duration `yaml:"tick" json:"tick"`
	ElectionTicks int           `yaml:"election_ticks" json:"election_ticks"`
	// RequestTimeout bounds one request, including the commit of what it
	// proposes (RocketMQ's controller request timeout: 3 s).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
}

// Production returns RocketMQ's ControllerConfig and BrokerConfig
// defaults: broker heartbeat 1 s, heartbeat timeout 10 s, scans every 5 s,
// request timeout 3 s. The Raft timings (tick
// 200 ms, election after 10-20 ticks: 2-4 s) are this package's, as
// DLedger's election settings have no Raft-library equivalent.
func Production() Timings {
	return Timings{BrokerHeartbeat: time.Second, HeartbeatTimeout: 10 * time.Second, Scan: 5 * time.Second,
		Tick: 200 * time.Millisecond, ElectionTicks: 10, RequestTimeout: 3 * time.Second}
}

// Fast returns the profile for quick runs, scaled like the name server's
// (scans / 10, timeouts to a couple of seconds): broker heartbeat 200 ms,
// heartbeat timeout 2 s, scans every 0.5 s, Raft tick
// 100 ms (elections 1-2 s), request timeout 2 s.
func Fast() Timings {
	return Timings{BrokerHeartbeat: 200 * time.Millisecond, HeartbeatTimeout: 2 * time.Second, Scan: 500 * time.Millisecond,
		Tick: 100 * time.Millisecond, ElectionTicks: 10, RequestTimeout: 2 * time.Second}
}

// Config configures one controller.
type Config struct {
	// ID is this controller's place in Peers, from 1.
	ID uint64 `yaml:"id" json:"id"`
	// Peers are every controller's address (host:port), in id order. A
	// lone controller lists only itself. Peers[ID-1] is where this one
	// listens, for other controllers and for brokers alike.
	Peers []string `yaml:"peers" json:"peers"`
	// Listen, when set, is where this controller listens instead of
	// Peers[ID-1]: a wildcard address where its peer address is a name
	// that resolves to one of several interfaces (a swarm task reached on
	// its overlay address by peers and on another by the runner).
	Listen string `yaml:"listen" json:"listen"`
	// Listener, when set, is used instead of listening on Peers[ID-1]
	// (tests open every listener first to learn the ports).
	Listener net.Listener `yaml:"-" json:"-"`
	// HeartbeatTimeout, ScanInterval: see Timings.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout" json:"heartbeat_timeout"`
	ScanInterval     time.Duration `yaml:"scan_interval" json:"scan_interval"`
	// TickInterval and ElectionTicks: see Timings.
	TickInterval  time.Duration `yaml:"tick_interval" json:"tick_interval"`
	ElectionTicks int           `yaml:"election_ticks" json:"election_ticks"`
	// UncleanElection lets a broker outside the SyncStateSet become master
	// when none in it is alive (RocketMQ enableElectUncleanMaster: false).
	// Acknowledged writes can be lost then.
	UncleanElection bool `yaml:"unclean_election" json:"unclean_election"`
	// RequestTimeout bounds a proposal's commit and each frame written.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// MaxFrameBytes is the largest frame accepted.
	MaxFrameBytes int `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// MetricsListen is the TCP address of the controller's Prometheus
	// endpoint (/metrics); empty serves none. A controller embedded in a
	// name server leaves it empty: the name server serves its series.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen"`
	// MetricsProcess adds the Go runtime and process series: set it when
	// the controller has its process to itself.
	MetricsProcess bool `yaml:"-" json:"-"`
	// Dial opens connections to other controllers; nil uses net.Dialer.
	Dial DialFunc `yaml:"-" json:"-"`
	// DataDir, when set, keeps the Raft log and hard state on disk
	// (DataDir/wal, storage.go): a controller process started again on it
	// resumes from its log, as Raft requires of a member that
	// acknowledged entries. Empty keeps them in memory only.
	DataDir string `yaml:"data_dir" json:"data_dir"`
	// Storage, when set instead of DataDir, holds the Raft log and hard
	// state in memory: a controller restarted in the same process (the
	// in-process runtime's kill and restart) passes the storage of its
	// previous run, as a disk would keep it, and resumes from it. With
	// neither, a restarted controller comes back with an empty log and
	// must not rejoin a quorum that still holds its old one.
	Storage *raft.MemoryStorage `yaml:"-" json:"-"`
	// Logger receives the controller's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Config returns a controller configuration with these timings; ID and
// Peers are still to be set.
func (t Timings) Config() Config {
	return Config{ID: 1, HeartbeatTimeout: t.HeartbeatTimeout, ScanInterval: t.Scan, TickInterval: t.Tick,
		ElectionTicks: t.ElectionTicks, RequestTimeout: t.RequestTimeout, MaxFrameBytes: 4 << 20}
}

// ClientConfig returns a broker-side client configuration with these
// timings; Controllers, Cluster, Group and BrokerID are still to be set.
func (t Timings) ClientConfig() ClientConfig {
	return ClientConfig{HeartbeatInterval: t.BrokerHeartbeat, RequestTimeout: t.RequestTimeout, MaxFrameBytes: 4 << 20}
}

// DefaultConfig returns a lone controller with the production timings on
// 127.0.0.1:9878 (RocketMQ's controller port).
func DefaultConfig() Config {
	c := Production().Config()
	c.Peers = []string{"127.0.0.1:9878"}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case len(c.Peers) == 0:
		return errors.New("controller: at least one peer (this controller) is required")
	case slices.Contains(c.Peers, ""):
		return errors.New("controller: empty peer address")
	case c.ID < 1 || c.ID > uint64(len(c.Peers)):
		return fmt.Errorf("controller: id %d is not in 1..%d", c.ID, len(c.Peers))
	case c.HeartbeatTimeout <= 0 || c.ScanInterval <= 0:
		return errors.New("controller: heartbeat timeout and scan interval must be positive")
	case c.TickInterval <= 0:
		return errors.New("controller: tick interval must be positive")
	case c.ElectionTicks < 3:
		return errors.New("controller: election ticks must be at least 3 (the heartbeat is one tick)")
	case c.RequestTimeout <= 0:
		return errors.New("controller: request timeout must be positive")
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("controller: max frame bytes %d is below 1024", c.MaxFrameBytes)
	case c.DataDir != "" && c.Storage != nil:
		return errors.New("controller: data dir and in-memory storage are exclusive")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("controller: listen %q: %w", c.Listen, err)
		}
	}
	return nil
}

// AddFlags binds the controller's settings to fs with the values in c as
// defaults. prefix names them: "" for `brokerlab controller` (--id,
// --peers, ...), "controller-" when embedded in a name server
// (--controller-id, --controller-peers, ...).
func (c *Config) AddFlags(fs *flag.FlagSet, prefix string) {
	fs.Uint64Var(&c.ID, prefix+"id", c.ID, "this controller's place in the peer list, from 1")
	fs.Var((*flagutil.List)(&c.Peers), prefix+"peers", "comma-separated addresses of every controller, in id order")
	fs.DurationVar(&c.HeartbeatTimeout, prefix+"heartbeat-timeout", c.HeartbeatTimeout, "a broker silent this long is inactive")
	fs.DurationVar(&c.ScanInterval, prefix+"scan-interval", c.ScanInterval, "how often to look for inactive brokers and masters")
	fs.DurationVar(&c.TickInterval, prefix+"tick", c.TickInterval, "Raft tick")
	fs.IntVar(&c.ElectionTicks, prefix+"election-ticks", c.ElectionTicks, "Raft election timeout in ticks")
	fs.BoolVar(&c.UncleanElection, prefix+"unclean-election", c.UncleanElection, "elect a master outside the SyncStateSet when none in it is alive")
	fs.DurationVar(&c.RequestTimeout, prefix+"request-timeout", c.RequestTimeout, "bound on a proposal's commit")
	fs.StringVar(&c.DataDir, prefix+"data-dir", c.DataDir, "keep the Raft log here, so that a restart resumes from it (default: in memory, lost on restart)")
	if prefix == "" {
		fs.StringVar(&c.Listen, "listen", c.Listen, "listen here instead of on this controller's --peers entry (e.g. 0.0.0.0:9878)")
		// Embedded, the name server's --metrics-listen serves the
		// controller's series too.
		fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "serve Prometheus metrics on this address at /metrics (default: off)")
	}
}

// Run serves a controller until ctx ends (`brokerlab controller`, and the
// controller embedded in `brokerlab nameserver --controller`).
func Run(ctx context.Context, cfg Config) error {
	c, err := New(cfg)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// Run starts c and serves until ctx ends, then closes it.
func (c *Controller) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return c.Close()
}
