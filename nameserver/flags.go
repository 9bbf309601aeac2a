package nameserver

import (
	"context"
	"flag"
	"github.com/brokerlab/brokerlab/internal/flagutil"
	"strconv"
)

// AddFlags binds the name server's settings to fs, with the values in c as
// defaults: --listen, --scan-interval, --broker-expiry, --max-frame-bytes,
// --request-timeout, --metrics-listen.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "TCP address to serve on")
	fs.DurationVar(&c.ScanInterval, "scan-interval", c.ScanInterval, "how often to look for silent brokers")
	fs.DurationVar(&c.BrokerExpiry, "broker-expiry", c.BrokerExpiry, "drop a broker silent for this long")
	fs.IntVar(&c.MaxFrameBytes, "max-frame-bytes", c.MaxFrameBytes, "largest frame accepted")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "bound on writing a frame and on pushes to brokers")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "serve Prometheus metrics on this address at /metrics (default: off)")
}

// Run serves a name server until ctx ends (brokerlab nameserver).
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// AddFlags binds a broker's nameserver settings to fs, with the values in c
// as defaults: --nameservers a,b, --cluster, --group, --broker-id,
// --replication-mode, --heartbeat-interval, --route-poll-interval,
// --master-probe-interval, --nameserver-timeout. DataDir is not bound: set it from the broker's own
// data directory.
func (c *RegistrarConfig) AddFlags(fs *flag.FlagSet) {
	fs.Var((*flagutil.List)(&c.NameServers), "nameservers", "comma-separated name server addresses (host:port,...)")
	fs.StringVar(&c.Cluster, "cluster", c.Cluster, "broker cluster name")
	fs.StringVar(&c.Group, "group", c.Group, "broker group name")
	fs.Func("broker-id", "broker id in the group; 0 is the master (default "+itoa(c.BrokerID)+")", func(s string) error {
		v, err := parseInt32(s)
		c.BrokerID = v
		return err
	})
	fs.StringVar(&c.Mode, "replication-mode", c.Mode, "group replication mode: sync or async")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often to register with every name server")
	fs.DurationVar(&c.RoutePollInterval, "route-poll-interval", c.RoutePollInterval, "how often to pull routes")
	fs.DurationVar(&c.MasterProbeInterval, "master-probe-interval", c.MasterProbeInterval, "slave: how often to dial the group's master (0: never)")
	fs.DurationVar(&c.RequestTimeout, "nameserver-timeout", c.RequestTimeout, "bound on one request to a name server")
}

// AddFlags binds a client's settings to fs: --nameservers,
// --route-poll-interval, --nameserver-timeout.
func (c *RouteClientConfig) AddFlags(fs *flag.FlagSet) {
	fs.Var((*flagutil.List)(&c.NameServers), "nameservers", "comma-separated name server addresses (host:port,...)")
	fs.DurationVar(&c.PollInterval, "route-poll-interval", c.PollInterval, "how often to refresh routes")
	fs.DurationVar(&c.RequestTimeout, "nameserver-timeout", c.RequestTimeout, "bound on one request to a name server")
}

func itoa(v int32) string { return strconv.FormatInt(int64(v), 10) }

func parseInt32(s string) (int32, error) {
	v, err := strconv.ParseInt(s, 10, 32)
	return int32(v), err
}
