package coordinator

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/brokerlab/brokerlab/internal/flagutil"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config configures one broker's handle on the etcd control plane.
type Config struct {
	// Endpoints are the etcd client endpoints (host:port or http://host:port).
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Prefix is the etcd key prefix of the cluster; clusters sharing one etcd
	// use different prefixes. No trailing slash.
	Prefix string `yaml:"prefix" json:"prefix"`
	// SessionTTL is the broker's lease TTL, Kafka's zookeeper.session.timeout:
	// a broker whose lease is not renewed for this long is dead to the
	// controller. etcd leases have whole seconds.
	SessionTTL time.Duration `yaml:"session_ttl" json:"session_ttl"`
	// DialTimeout bounds one connection attempt to an etcd endpoint.
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// RequestTimeout bounds one etcd request made on the broker's behalf
	// (registration, AlterISR, topic writes, controller writes).
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// ReconnectBackoffMax caps the pause between reconnection attempts and
	// between retries of failed background requests.
	ReconnectBackoffMax time.Duration `yaml:"reconnect_backoff_max" json:"reconnect_backoff_max"`

	// Dial opens connections to etcd; nil uses net.Dialer. Tests pass a
	// fault-injecting dialer here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error) `yaml:"-" json:"-"`
	// Logger receives the handle's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Timing profiles of shared/DESIGN.md.
const (
	ProductionSessionTTL = 18 * time.Second
	FastSessionTTL       = 2 * time.Second
)

// DefaultConfig returns the production profile against a local etcd.
func DefaultConfig() Config {
	return Config{
		Endpoints:           []string{"127.0.0.1:2379"},
		Prefix:              "/brokerlab",
		SessionTTL:          ProductionSessionTTL,
		DialTimeout:         2 * time.Second,
		RequestTimeout:      5 * time.Second,
		ReconnectBackoffMax: time.Second,
	}
}

// FastConfig returns the fast profile: a 2 s session.
func FastConfig() Config {
	c := DefaultConfig()
	c.SessionTTL = FastSessionTTL
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("coordinator: at least one etcd endpoint is required")
	case c.Prefix == "" || !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("coordinator: prefix %q must start with / and not end with /", c.Prefix)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("coordinator: session ttl %v is below etcd's 1 s lease granularity", c.SessionTTL)
	case c.SessionTTL%time.Second != 0:
		return fmt.Errorf("coordinator: session ttl %v is not whole seconds (etcd lease TTLs are)", c.SessionTTL)
	case c.DialTimeout <= 0:
		return errors.New("coordinator: dial timeout must be positive")
	case c.RequestTimeout <= 0:
		return errors.New("coordinator: request timeout must be positive")
	case c.ReconnectBackoffMax <= 0:
		return errors.New("coordinator: reconnect backoff max must be positive")
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			return errors.New("coordinator: empty etcd endpoint")
		}
	}
	return nil
}

// AddFlags binds the broker-side settings to fs: --etcd, --etcd-prefix,
// --session-ttl, --etcd-dial-timeout, --etcd-request-timeout.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.Var((*flagutil.List)(&c.Endpoints), "etcd", "comma-separated etcd endpoints (host:port,...) of a coordinator cluster")
	fs.StringVar(&c.Prefix, "etcd-prefix", c.Prefix, "etcd key prefix of the cluster")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "broker session (lease) TTL, whole seconds: 18s production, 2s fast")
	fs.DurationVar(&c.DialTimeout, "etcd-dial-timeout", c.DialTimeout, "timeout of one connection attempt to etcd")
	fs.DurationVar(&c.RequestTimeout, "etcd-request-timeout", c.RequestTimeout, "timeout of one etcd request")
}
