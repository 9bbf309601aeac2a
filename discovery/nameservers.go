package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/nameserver"
)

// NameServersConfig configures RocketMQ-style discovery.
type NameServersConfig struct {
	// NameServers are host:port of the name servers, tried in turn.
	NameServers []string `yaml:"nameservers" json:"nameservers"`
	// PollInterval is how often cached routes are pulled again
	// (pollNameServerInterval: production 30 s, fast profile 1 s).
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval"`
	// RequestTimeout bounds one request to a name server.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// RefreshBackoff is the minimum time between refreshes of an
	// invalidated route.
	RefreshBackoff time.Duration `yaml:"refresh_backoff" json:"refresh_backoff"`
	// FaultAvoidance turns on the latency -> isolation memory
	// (sendLatencyFaultEnable); off, Avoid is always false.
	FaultAvoidance bool `yaml:"fault_avoidance" json:"fault_avoidance"`
	// Faults is the latency -> isolation table.
	Faults nameserver.LatencyTable `yaml:"faults" json:"faults"`
	// OnChange, as in BootstrapConfig: called when a route pulled from a
	// name server gives a partition a new address (its master, or the
	// slave consumers read from when the master is absent).
	OnChange func(Change) `yaml:"-" json:"-"`
	// Dial opens connections to name servers; nil uses net.Dialer.
	Dial kclient.DialFunc `yaml:"-" json:"-"`
	// Logger receives discovery logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultNameServersConfig returns RocketMQ's client defaults (production
// profile, fault avoidance on); NameServers is still to be set.
func DefaultNameServersConfig() NameServersConfig {
	rc := nameserver.Production().RouteClientConfig()
	return NameServersConfig{
		PollInterval:   rc.PollInterval,
		RequestTimeout: rc.RequestTimeout,
		RefreshBackoff: 100 * time.Millisecond,
		FaultAvoidance: true,
		Faults:         nameserver.DefaultLatencyTable(),
	}
}

// FastNameServersConfig returns the fast profile's timings.
func FastNameServersConfig() NameServersConfig {
	c := DefaultNameServersConfig()
	t := nameserver.Fast()
	c.PollInterval, c.RequestTimeout, c.Faults = t.RoutePoll, t.RequestTimeout, t.Faults
	return c
}

// Validate reports the first invalid setting.
func (c NameServersConfig) Validate() error {
	switch {
	case len(c.NameServers) == 0:
		return errors.New("discovery: at least one name server is required")
	case slices.Contains(c.NameServers, ""):
		return errors.New("discovery: empty name server address")
	case c.PollInterval <= 0:
		return errors.New("discovery: poll interval must be positive")
	case c.RequestTimeout <= 0:
		return errors.New("discovery: request timeout must be positive")
	case c.RefreshBackoff < 0:
		return errors.New("discovery: refresh backoff must not be negative")
	}
	if c.FaultAvoidance {
		if err := c.Faults.Validate(); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
	}
	return nil
}

// NameServers is RocketMQ-style discovery on nameserver.RouteClient: routes
// are pulled from any name server every PollInterval and at once (refresh
// backoff permitting) after Invalidate. A partition's Leader is its group's
// master; Readers are the master then the slaves by broker id, so a
// consumer reads from a slave while the master is absent from the route.
// Report and Avoid implement fault avoidance with nameserver.FaultTolerance.
type NameServers struct {
	cfg   NameServersConfig
	rc    *nameserver.RouteClient
	ft    *nameserver.FaultTolerance // nil without fault avoidance
	cache *cache
}

// NewNameServers validates cfg, creates the route client and starts its
// polling.
func NewNameServers(cfg NameServersConfig) (*NameServers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	rcc := nameserver.DefaultRouteClientConfig()
	rcc.NameServers = cfg.NameServers
	rcc.PollInterval = cfg.PollInterval
	rcc.RequestTimeout = cfg.RequestTimeout
	rcc.Dial = nameserver.DialFunc(cfg.Dial)
	rcc.Logger = log
	rc, err := nameserver.NewRouteClient(rcc)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	n := &NameServers{cfg: cfg, rc: rc}
	if cfg.FaultAvoidance {
		if n.ft, err = nameserver.NewFaultTolerance(cfg.Faults); err != nil {
			rc.Close()
			return nil, fmt.Errorf("discovery: %w", err)
		}
	}
	n.cache = newCache(0, cfg.RefreshBackoff, n.fetch, cfg.OnChange, log)
	if err := rc.Start(context.Background()); err != nil {
		rc.Close()
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return n, nil
}

// Route implements Discovery.
func (n *NameServers) Route(ctx context.Context, topic string) (Route, error) {
	return n.cache.route(ctx, topic)
}

// Invalidate implements Discovery.
func (n *NameServers) Invalidate(topic string) { n.cache.invalidate(topic) }

// Report implements Discovery: the group is avoided for the window the
// latency table gives.
func (n *NameServers) Report(group string, latency time.Duration, err error) {
	if n.ft != nil && group != "" {
		n.ft.Update(group, latency, err != nil)
	}
}

// Avoid implements Discovery.
func (n *NameServers) Avoid(group string) bool {
	return n.ft != nil && !n.ft.Available(group)
}

// Isolated returns the groups avoided now with the time each becomes
// available again.
func (n *NameServers) Isolated() map[string]time.Time {
	if n.ft == nil {
		return nil
	}
	return n.ft.Isolated()
}

// CreateTopic asks a name server to place and create a topic.
func (n *NameServers) CreateTopic(ctx context.Context, req nameserver.CreateTopicRequest) error {
	if _, err := n.rc.CreateTopic(ctx, req); err != nil {
		return fmt.Errorf("discovery: create topic %s: %w", req.Config.Name, err)
	}
	n.Invalidate(req.Config.Name)
	return nil
}

// Close implements Discovery.
func (n *NameServers) Close() error {
	n.cache.close()
	return n.rc.Close()
}

func (n *NameServers) fetch(ctx context.Context, topic string, force bool) (Route, error) {
	var tr nameserver.TopicRoute
	var err error
	if force {
		tr, err = n.rc.Refresh(ctx, topic)
	} else {
		tr, err = n.rc.Route(ctx, topic)
	}
	switch {
	case errors.Is(err, broker.ErrUnknownTopic):
		return Route{}, fmt.Errorf("discovery: %s: %w: %w", topic, ErrUnknownTopic, err)
	case err != nil:
		return Route{}, fmt.Errorf("discovery: route of %s: %w: %w", topic, ErrNoRoute, err)
	}
	return routeFromTopicRoute(tr), nil
}

// routeFromTopicRoute converts a name server's answer.
func routeFromTopicRoute(tr nameserver.TopicRoute) Route {
	r := Route{Topic: tr.Topic, Partitions: make([]Partition, tr.Partitions)}
	for i := range r.Partitions {
		p := Partition{ID: int32(i), LeaderID: -1, LeaderEpoch: -1}
		if g, ok := tr.Group(p.ID); ok {
			p.Group = g.Group
			members := slices.Clone(g.Members)
			slices.SortFunc(members, func(a, b nameserver.Member) int { return int(a.BrokerID - b.BrokerID) })
			for _, m := range members {
				if m.BrokerID == nameserver.MasterID {
					p.Leader, p.LeaderID = m.Addr, m.NodeID
				}
				p.Readers = append(p.Readers, m.Addr)
			}
		}
		r.Partitions[i] = p
	}
	return r
}
