package gossip

import (
	"errors"
	"flag"
	"fmt"
	"github.com/brokerlab/brokerlab/internal/flagutil"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// Placement modes: which topology a Plane runs.
const (
	// PlacementSlots is Redis Cluster's: 16384 hash slots owned by masters.
	PlacementSlots = "slots"
	// PlacementRing is Cassandra's: a consistent-hash ring of virtual nodes.
	PlacementRing = "ring"
)

// Config configures one broker's gossip control plane. The same struct
// carries the YAML tags a scenario uses and the flags of `brokerlab broker`
// (AddFlags), so there is one source of truth for every setting.
type Config struct {
	// Placement is PlacementSlots (topology gossip) or PlacementRing
	// (topology gossip-ring).
	Placement string `yaml:"placement" json:"placement"`
	// Bind is the host:port memberlist listens on (UDP and TCP); port 0
	// picks a free one.
	Bind string `yaml:"bind" json:"bind"`
	// Advertise is the host:port other members dial; empty means Bind's
	// resolved address.
	Advertise string `yaml:"advertise" json:"advertise"`
	// Seeds are the gossip addresses of the seed nodes, in order. Akka's
	// rule: the node whose own address is Seeds[0] forms the cluster alone
	// when no other seed answers within SeedTimeout; every other node
	// joins through any seed that answers and keeps trying until one does.
	Seeds []string `yaml:"seeds" json:"seeds"`
	// SeedTimeout is how long the first seed looks for the other seeds
	// before it forms the cluster alone (Akka seed-node-timeout: 5 s).
	SeedTimeout time.Duration `yaml:"seed_timeout" json:"seed_timeout"`
	// JoinRetry is the pause between join attempts, and between attempts
	// to reach members known from the cluster state that memberlist
	// declared dead (heals a partition, as Serf's reconnect does).
	JoinRetry time.Duration `yaml:"join_retry" json:"join_retry"`

	// Memberlist timings (SWIM with Lifeguard).
	ProbeInterval    time.Duration `yaml:"probe_interval" json:"probe_interval"`
	ProbeTimeout     time.Duration `yaml:"probe_timeout" json:"probe_timeout"`
	SuspicionMult    int           `yaml:"suspicion_mult" json:"suspicion_mult"`
	GossipInterval   time.Duration `yaml:"gossip_interval" json:"gossip_interval"`
	GossipNodes      int           `yaml:"gossip_nodes" json:"gossip_nodes"`
	RetransmitMult   int           `yaml:"retransmit_mult" json:"retransmit_mult"`
	PushPullInterval time.Duration `yaml:"push_pull_interval" json:"push_pull_interval"`
	TCPTimeout       time.Duration `yaml:"tcp_timeout" json:"tcp_timeout"`

	// TellOnce is the gossip optimisation: a node spreading an update
	// remembers which peers it has told (or heard it from) and picks its
	// GossipNodes targets among the others, stopping once all are told.
	// Off, targets are random each round (memberlist's own broadcasts).
	TellOnce bool `yaml:"tell_once" json:"tell_once"`

	// ReportValidity is how long a failure report counts towards FAIL
	// (Redis: 2 x cluster-node-timeout).
	ReportValidity time.Duration `yaml:"report_validity" json:"report_validity"`
	// ElectionDelay, ElectionJitter and RankDelay make a replica wait
	// ElectionDelay + random(0, ElectionJitter) + rank x RankDelay after
	// its master FAILs before asking for votes (Redis: 500 ms, 500 ms,
	// 1 s), so the most caught-up replica asks first.
	ElectionDelay  time.Duration `yaml:"election_delay" json:"election_delay"`
	ElectionJitter time.Duration `yaml:"election_jitter" json:"election_jitter"`
	RankDelay      time.Duration `yaml:"rank_delay" json:"rank_delay"`
	// ElectionTimeout bounds one vote round; a failed election is retried
	// after twice this (Redis: 2 x node timeout).
	ElectionTimeout time.Duration `yaml:"election_timeout" json:"election_timeout"`
	// RequestTimeout bounds one quorum round (ISR change, topic change).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// VirtualNodes is the number of ring tokens per node (gossip-ring;
	// Cassandra num_tokens: 16 since 4.0).
	VirtualNodes int `yaml:"virtual_nodes" json:"virtual_nodes"`

	// StateFile is where the node keeps its cluster state (slot owners,
	// ring records, topics, the votes it gave) across restarts, written
	// durably on every change and read by Register (Redis Cluster's
	// nodes.conf); the broker command puts it in the broker's data
	// directory (StateFileName). Empty keeps the state in memory only: a
	// node then learns everything again from the others, and after a
	// whole-cluster restart nobody knows the topics.
	StateFile string `yaml:"state_file" json:"state_file"`

	// ClusterID is reported in Metadata.
	ClusterID string `yaml:"cluster_id" json:"cluster_id"`

	// Offsets returns the log end offset of every local replica; the
	// plane gossips their sums per leader so replicas of a failed master
	// rank themselves by replication offset. nil ranks by node id.
	Offsets func() map[string]int64 `yaml:"-" json:"-"`
	// WrapTransport, when set, wraps memberlist's network transport (tests
	// cut links with it).
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport `yaml:"-" json:"-"`
	// Logger receives the plane's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Profile names.
const (
	ProfileProduction = "production"
	ProfileFast       = "fast"
)

// Production is memberlist's DefaultLANConfig and Redis Cluster's failover
// delays.
func Production() Config {
	return Config{
		Placement:        PlacementSlots,
		Bind:             "0.0.0.0:7946",
		SeedTimeout:      5 * time.Second,
		JoinRetry:        5 * time.Second,
		ProbeInterval:    time.Second,
		ProbeTimeout:     500 * time.Millisecond,
		SuspicionMult:    4,
		GossipInterval:   200 * time.Millisecond,
		GossipNodes:      3,
		RetransmitMult:   4,
		PushPullInterval: 30 * time.Second,
		TCPTimeout:       10 * time.Second,
		TellOnce:         false,
		ReportValidity:   30 * time.Second,
		ElectionDelay:    500 * time.Millisecond,
		ElectionJitter:   500 * time.Millisecond,
		RankDelay:        time.Second,
		ElectionTimeout:  5 * time.Second,
		RequestTimeout:   5 * time.Second,
		VirtualNodes:     16,
		ClusterID:        "brokerlab-gossip",
	}
}

// Fast scales Production down about five times for quick runs.
func Fast() Config {
	c := Production()
	c.SeedTimeout = time.Second
	c.JoinRetry = 500 * time.Millisecond
	c.ProbeInterval = 300 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.SuspicionMult = 3
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = 2 * time.Second
	c.ReportValidity = 6 * time.Second
	c.ElectionDelay = 100 * time.Millisecond
	c.ElectionJitter = 100 * time.Millisecond
	c.RankDelay = 200 * time.Millisecond
	c.ElectionTimeout = time.Second
	c.RequestTimeout = 2 * time.Second
	return c
}

// ProfileConfig returns the named timing profile.
func ProfileConfig(name string) (Config, error) {
	switch name {
	case ProfileProduction, "":
		return Production(), nil
	case ProfileFast:
		return Fast(), nil
	}
	return Config{}, fmt.Errorf("gossip: unknown timing profile %q (production, fast)", name)
}

// DefaultConfig is the production profile with slot placement.
func DefaultConfig() Config { return Production() }

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.Placement != PlacementSlots && c.Placement != PlacementRing {
		return fmt.Errorf("gossip: placement %q (slots, ring)", c.Placement)
	}
	if _, _, err := net.SplitHostPort(c.Bind); err != nil {
		return fmt.Errorf("gossip: bind %q: %w", c.Bind, err)
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			return fmt.Errorf("gossip: advertise %q: %w", c.Advertise, err)
		}
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("gossip: seed %q: %w", s, err)
		}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"seed timeout", c.SeedTimeout}, {"join retry", c.JoinRetry}, {"probe interval", c.ProbeInterval},
		{"probe timeout", c.ProbeTimeout}, {"gossip interval", c.GossipInterval},
		{"push-pull interval", c.PushPullInterval}, {"tcp timeout", c.TCPTimeout},
		{"report validity", c.ReportValidity}, {"election timeout", c.ElectionTimeout},
		{"request timeout", c.RequestTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("gossip: %s must be positive", d.name)
		}
	}
	switch {
	case c.ProbeTimeout >= c.ProbeInterval:
		return errors.New("gossip: probe timeout must be below the probe interval")
	case c.SuspicionMult < 1 || c.GossipNodes < 1 || c.RetransmitMult < 1:
		return errors.New("gossip: suspicion mult, gossip nodes and retransmit mult must be >= 1")
	case c.ElectionDelay < 0 || c.ElectionJitter < 0 || c.RankDelay < 0:
		return errors.New("gossip: election delays must not be negative")
	case c.VirtualNodes < 1 || c.VirtualNodes > 1024:
		return fmt.Errorf("gossip: virtual nodes %d (1..1024)", c.VirtualNodes)
	}
	return nil
}

// AddFlags binds the plane's settings to fs, with the values in c as
// defaults: --seeds a,b,c, --gossip-bind, --gossip-advertise,
// --gossip-profile (applied first, individual flags override it), the
// memberlist timings, the election delays and --tell-once.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.Var((*flagutil.List)(&c.Seeds), "seeds", "comma-separated gossip addresses of the seed nodes; the first forms the cluster")
	fs.StringVar(&c.Bind, "gossip-bind", c.Bind, "host:port memberlist listens on (UDP and TCP)")
	fs.StringVar(&c.Advertise, "gossip-advertise", c.Advertise, "host:port other members dial (default: the bind address)")
	fs.DurationVar(&c.SeedTimeout, "seed-timeout", c.SeedTimeout, "how long the first seed looks for the others before forming alone")
	fs.DurationVar(&c.JoinRetry, "join-retry", c.JoinRetry, "pause between join attempts")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", c.ProbeInterval, "memberlist failure-detector probe interval")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", c.ProbeTimeout, "memberlist probe timeout")
	fs.IntVar(&c.SuspicionMult, "suspicion-mult", c.SuspicionMult, "memberlist suspicion multiplier")
	fs.DurationVar(&c.GossipInterval, "gossip-interval", c.GossipInterval, "how often updates are spread")
	fs.IntVar(&c.GossipNodes, "gossip-nodes", c.GossipNodes, "peers told per gossip round")
	fs.IntVar(&c.RetransmitMult, "retransmit-mult", c.RetransmitMult, "rounds an update is spread: mult x log10(n+1)")
	fs.DurationVar(&c.PushPullInterval, "push-pull-interval", c.PushPullInterval, "full state exchange interval")
	fs.BoolVar(&c.TellOnce, "tell-once", c.TellOnce, "remember which peers were told an update and pick targets among the others")
	fs.DurationVar(&c.ElectionDelay, "election-delay", c.ElectionDelay, "fixed wait before a replica asks for votes")
	fs.DurationVar(&c.ElectionJitter, "election-jitter", c.ElectionJitter, "random extra wait before asking for votes")
	fs.DurationVar(&c.RankDelay, "rank-delay", c.RankDelay, "extra wait per replica ahead by replication offset")
	fs.IntVar(&c.VirtualNodes, "virtual-nodes", c.VirtualNodes, "ring tokens per node (gossip-ring)")
}
