package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/poll"
)

// RouteClientConfig configures a client's access to the name servers.
type RouteClientConfig struct {
	// NameServers are the host:port of the name servers, tried in turn.
	NameServers []string `yaml:"nameservers" json:"nameservers"`
	// PollInterval is how often cached routes are refreshed (RocketMQ
	// pollNameServerInterval: 30 s).
	PollInterval time.Duration `yaml:"poll_interval" json:"poll_interval"`
	// RequestTimeout bounds one request to a name server.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// MaxFrameBytes is the largest frame accepted from a name server.
	MaxFrameBytes int `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// Dial opens connections; nil uses net.Dialer.
	Dial DialFunc `yaml:"-" json:"-"`
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultRouteClientConfig returns the production timings; NameServers is
// still to be set.
func DefaultRouteClientConfig() RouteClientConfig { return Production().RouteClientConfig() }

// Validate reports the first invalid setting.
func (c RouteClientConfig) Validate() error {
	switch {
	case len(c.NameServers) == 0:
		return errors.New("nameserver: at least one name server address is required")
	case slices.Contains(c.NameServers, ""):
		return errors.New("nameserver: empty name server address")
	case c.PollInterval <= 0:
		return errors.New("nameserver: poll interval must be positive")
	case c.RequestTimeout <= 0:
		return errors.New("nameserver: request timeout must be positive")
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("nameserver: max frame bytes %d is below 1024", c.MaxFrameBytes)
	}
	return nil
}

// RouteClient is a producer's or consumer's view of the routes: it caches
// the route of every topic asked for, refreshes them all every
// PollInterval, and refreshes one at once when the caller saw an error. It
// asks one name server at a time and moves to the next when that fails.
// It is safe for concurrent use.
type RouteClient struct {
	cfg  RouteClientConfig
	log  *slog.Logger
	pool *pool

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu      sync.Mutex // guards routes and started
	routes  map[string]TopicRoute
	started bool
}

// NewRouteClient validates cfg and returns a client; call Start to poll.
// Route works without Start, fetching on demand only.
func NewRouteClient(cfg RouteClientConfig) (*RouteClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	return &RouteClient{
		cfg:    cfg,
		log:    log,
		pool:   newPool(cfg.NameServers, cfg.Dial, cfg.RequestTimeout, cfg.MaxFrameBytes, log),
		ctx:    ctx,
		cancel: cancel,
		routes: make(map[string]TopicRoute),
	}, nil
}

// Start begins refreshing cached routes every PollInterval, until Close.
func (c *RouteClient) Start(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.ctx.Err() != nil {
		return errors.New("nameserver: route client already started or closed")
	}
	c.started = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.pollLoop()
	}()
	return nil
}

// Close stops polling and closes the connection. Idempotent.
func (c *RouteClient) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.pool.close()
	})
	c.wg.Wait()
	return nil
}

func (c *RouteClient) pollLoop() {
	poll.Every(c.ctx, c.cfg.PollInterval, nil, func(time.Time) {
		c.mu.Lock()
		names := make([]string, 0, len(c.routes))
		for n := range c.routes {
			names = append(names, n)
		}
		c.mu.Unlock()
		if len(names) == 0 {
			return
		}
		if _, err := c.fetch(c.ctx, names); err != nil && c.ctx.Err() == nil {
			c.log.Warn("route poll failed, keeping cached routes", "error", err)
		}
	})
}

// Route returns the cached route of topic, fetching it when not cached. A
// topic no name server knows fails with broker.ErrUnknownTopic.
func (c *RouteClient) Route(ctx context.Context, topic string) (TopicRoute, error) {
	c.mu.Lock()
	r, ok := c.routes[topic]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	return c.Refresh(ctx, topic)
}

// Refresh fetches the route of topic now, as a client does after a send or
// fetch failed.
func (c *RouteClient) Refresh(ctx context.Context, topic string) (TopicRoute, error) {
	rs, err := c.fetch(ctx, []string{topic})
	if err != nil {
		return TopicRoute{}, err
	}
	if len(rs) == 0 {
		return TopicRoute{}, fmt.Errorf("nameserver: route of %q: %w", topic, broker.ErrUnknownTopic)
	}
	return rs[0], nil
}

// fetch asks a name server for routes and updates the cache; topics the
// name server does not know leave the cache (their groups are all gone).
func (c *RouteClient) fetch(ctx context.Context, names []string) ([]TopicRoute, error) {
	var reply routeReply
	err := c.pool.do(ctx, 0, func(ctx context.Context, p *peer) error {
		_, err := p.call(ctx, typeRoute, routeRequest{Topics: names}, &reply)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range reply.Routes {
		c.routes[r.Topic] = r
	}
	for _, n := range reply.Missing {
		delete(c.routes, n)
	}
	return reply.Routes, nil
}

// ClusterInfo asks a name server for every group and member it knows.
func (c *RouteClient) ClusterInfo(ctx context.Context) (ClusterInfo, error) {
	var info ClusterInfo
	err := c.pool.do(ctx, 0, func(ctx context.Context, p *peer) error {
		_, err := p.call(ctx, typeClusterInfo, clusterInfoRequest{}, &info)
		return err
	})
	return info, err
}

// CreateTopic asks a name server to place and create a topic (see
// CreateTopicRequest) and returns its route as that name server sees it.
// Other name servers see it after the brokers' next registration, which
// they send at once.
func (c *RouteClient) CreateTopic(ctx context.Context, req CreateTopicRequest) (TopicRoute, error) {
	var reply createTopicReply
	err := c.pool.do(ctx, 3*c.cfg.RequestTimeout, func(ctx context.Context, p *peer) error {
		_, err := p.call(ctx, typeCreateTopic, req, &reply)
		return err
	})
	if err != nil {
		return TopicRoute{}, err
	}
	c.mu.Lock()
	c.routes[reply.Route.Topic] = reply.Route
	c.mu.Unlock()
	return reply.Route, nil
}

// DeleteTopic asks a name server to delete a topic from every group.
func (c *RouteClient) DeleteTopic(ctx context.Context, name string) error {
	err := c.pool.do(ctx, 3*c.cfg.RequestTimeout, func(ctx context.Context, p *peer) error {
		_, err := p.call(ctx, typeDeleteTopic, deleteTopicRequest{Name: name}, nil)
		return err
	})
	if err == nil {
		c.mu.Lock()
		delete(c.routes, name)
		c.mu.Unlock()
	}
	return err
}
