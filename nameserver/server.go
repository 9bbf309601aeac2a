package nameserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/lifecycle"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/poll"
)

// Config configures a name server.
type Config struct {
	// Listen is the TCP address to serve on ("127.0.0.1:0" picks a port).
	Listen string `yaml:"listen" json:"listen"`
	// ScanInterval is how often registrations are checked for expiry
	// (RocketMQ scanNotActiveBroker: 5 s).
	ScanInterval time.Duration `yaml:"scan_interval" json:"scan_interval"`
	// BrokerExpiry drops a broker that has not registered for this long
	// (RocketMQ BROKER_CHANNEL_EXPIRED_TIME: 120 s).
	BrokerExpiry time.Duration `yaml:"broker_expiry" json:"broker_expiry"`
	// MaxFrameBytes is the largest frame accepted; a larger one closes the
	// connection (RocketMQ's frame limit: 16 MiB).
	MaxFrameBytes int `yaml:"max_frame_bytes" json:"max_frame_bytes"`
	// RequestTimeout bounds writing one frame and each push to a broker.
	RequestTimeout time.Duration `yaml:"request_timeout" json:"request_timeout"`
	// MetricsListen is the TCP address of the server's Prometheus endpoint
	// (/metrics); empty serves none.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen"`
	// MetricsProcess adds the Go runtime and process series: set it when
	// the server has its process to itself.
	MetricsProcess bool `yaml:"-" json:"-"`
	// MetricsAlso are more collectors served on the same endpoint: the
	// series of a controller embedded in this name server's process.
	MetricsAlso []prometheus.Collector `yaml:"-" json:"-"`
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// DefaultConfig returns a name server configuration with the production
// timings (RocketMQ's defaults).
func DefaultConfig() Config { return Production().ServerConfig() }

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("nameserver: listen address is required")
	case c.ScanInterval <= 0:
		return errors.New("nameserver: scan interval must be positive")
	case c.BrokerExpiry < c.ScanInterval:
		return errors.New("nameserver: broker expiry must be at least the scan interval")
	case c.MaxFrameBytes < 1024:
		return fmt.Errorf("nameserver: max frame bytes %d is below 1024", c.MaxFrameBytes)
	case c.RequestTimeout <= 0:
		return errors.New("nameserver: request timeout must be positive")
	}
	return nil
}

// Stats are a name server's counters since it started. Byte counts include
// the 4-byte frame prefix.
type Stats struct {
	// Connections open now and Brokers registered now.
	Connections int64 `json:"connections"`
	Brokers     int64 `json:"brokers"`
	// Registration requests and the bytes of their frames and replies.
	RegisterRequests int64 `json:"register_requests"`
	RegisterBytesIn  int64 `json:"register_bytes_in"`
	RegisterBytesOut int64 `json:"register_bytes_out"`
	// Route, cluster-info and broker snapshot queries answered (snapshots
	// that found nothing changed among them), and the bytes of answers.
	RouteQueries       int64 `json:"route_queries"`
	ClusterInfoQueries int64 `json:"cluster_info_queries"`
	SnapshotQueries    int64 `json:"snapshot_queries"`
	SnapshotsUnchanged int64 `json:"snapshots_unchanged"`
	QueryBytesOut      int64 `json:"query_bytes_out"`
	// ClusterInfoBytesOut is the part of QueryBytesOut that answered
	// cluster-info queries (monitoring, not the clients' or brokers' work).
	ClusterInfoBytesOut int64 `json:"cluster_info_bytes_out"`
	// All frames in either direction.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Brokers removed: silent past the expiry, connection closed, or
	// unregistered.
	Expired      int64 `json:"expired"`
	Dropped      int64 `json:"dropped"`
	Unregistered int64 `json:"unregistered"`
}

// member is one registered broker.
type member struct {
	RegisterRequest
	topics   map[string]GroupTopic
	lastSeen time.Time
	peer     *peer
}

func (m *member) info() Member {
	return Member{BrokerID: m.BrokerID, NodeID: m.NodeID, Addr: m.Addr, Rack: m.Rack, Mode: m.Mode, MasterEpoch: m.MasterEpoch}
}

// Server is a name server: a route table in memory, fed by broker
// registrations and read by route queries. It never talks to other name
// servers.
type Server struct {
	cfg Config
	log *slog.Logger

	life *lifecycle.Owner // listener, goroutines, Close
	ctx  context.Context  // ends at Close; bounds pushes

	mu       sync.Mutex      // guards the fields below
	msrv     *metrics.Server // nil without MetricsListen
	members  map[memberKey]*member
	peers    map[*peer]struct{}
	creating map[string]bool // topics being created by this server
	// epoch (random, per process) and version (bumped by every change of
	// members or their topics) identify the table's content for snapshots.
	epoch   uint64
	version uint64

	registerRequests, registerIn, registerOut                    atomic.Int64
	routeQueries, clusterQueries, queryBytesOut, clusterBytesOut atomic.Int64
	snapshotQueries, snapshotsUnchanged                          atomic.Int64
	closedBytesIn, closedBytesOut                                atomic.Int64
	expired, dropped, unregistered                               atomic.Int64
}

// New validates cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := logs.OrDiscard(cfg.Logger)
	life := lifecycle.New()
	return &Server{
		cfg:      cfg,
		log:      log,
		life:     life,
		ctx:      life.Context(),
		members:  make(map[memberKey]*member),
		peers:    make(map[*peer]struct{}),
		creating: make(map[string]bool),
		epoch:    rand.Uint64() | 1,
	}, nil
}

// Start listens and serves until Close. ctx bounds only the start itself.
func (s *Server) Start(ctx context.Context) error {
	ln, err := s.life.Listen(ctx, s.cfg.Listen, nil)
	switch {
	case errors.Is(err, lifecycle.ErrClosed):
		return fmt.Errorf("nameserver: start: %w", ErrClosed)
	case err != nil:
		return fmt.Errorf("nameserver: listen: %w", err)
	}
	msrv, err := metrics.Serve(ctx, s.cfg.MetricsListen, s.cfg.MetricsProcess, s.log,
		append([]prometheus.Collector{s.Collector()}, s.cfg.MetricsAlso...)...)
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("nameserver: %w", err)
	}
	s.mu.Lock()
	s.msrv = msrv
	s.mu.Unlock()
	s.log.Info("name server listening", "addr", ln.Addr().String(), "metrics", msrv.Addr())
	s.goFunc(func() { s.accept(ln) })
	s.goFunc(s.scanLoop)
	return nil
}

// Addr returns the listening address, or "" before Start.
func (s *Server) Addr() string { return s.life.Addr() }

// MetricsAddr returns the Prometheus endpoint's address, or "" when the
// server serves none.
func (s *Server) MetricsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msrv.Addr()
}

// Close stops listening, closes every connection (brokers see their
// registration connection close) and waits for the server's goroutines.
// It is idempotent.
func (s *Server) Close() error {
	s.life.Close(func() {
		s.mu.Lock()
		msrv := s.msrv
		peers := make([]*peer, 0, len(s.peers))
		for p := range s.peers {
			peers = append(peers, p)
		}
		s.mu.Unlock()
		_ = msrv.Close()
		for _, p := range peers {
			p.close()
		}
	})
	return nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		RegisterRequests:    s.registerRequests.Load(),
		RegisterBytesIn:     s.registerIn.Load(),
		RegisterBytesOut:    s.registerOut.Load(),
		RouteQueries:        s.routeQueries.Load(),
		ClusterInfoQueries:  s.clusterQueries.Load(),
		SnapshotQueries:     s.snapshotQueries.Load(),
		SnapshotsUnchanged:  s.snapshotsUnchanged.Load(),
		QueryBytesOut:       s.queryBytesOut.Load(),
		ClusterInfoBytesOut: s.clusterBytesOut.Load(),
		BytesIn:             s.closedBytesIn.Load(),
		BytesOut:            s.closedBytesOut.Load(),
		Expired:             s.expired.Load(),
		Dropped:             s.dropped.Load(),
		Unregistered:        s.unregistered.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Connections = int64(len(s.peers))
	st.Brokers = int64(len(s.members))
	for p := range s.peers {
		st.BytesIn += p.bytesIn.Load()
		st.BytesOut += p.bytesOut.Load()
	}
	return st
}

// goFunc runs f on a goroutine Close waits for, unless the server is closed.
func (s *Server) goFunc(f func()) bool { return s.life.Go(f) }

func (s *Server) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept failed, name server stops listening", "error", err)
			}
			return
		}
		p := newPeer(conn, peerConfig{
			maxFrame:  s.cfg.MaxFrameBytes,
			timeout:   s.cfg.RequestTimeout,
			log:       s.log,
			onRequest: s.handle,
		})
		s.mu.Lock()
		s.peers[p] = struct{}{}
		s.mu.Unlock()
		if !s.goFunc(func() { s.serve(p) }) {
			p.close()
			s.forget(p)
		}
	}
}

// serve runs a connection's read loop and cleans up after it.
func (s *Server) serve(p *peer) {
	err := p.readLoop()
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrBadFrame):
		s.log.Warn("closing connection after a bad frame", "remote", p.conn.RemoteAddr().String(), "error", err)
	case errors.Is(err, ErrClosed), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		s.log.Debug("connection ended", "remote", p.conn.RemoteAddr().String(), "error", err)
	}
	s.forget(p)
}

// forget removes a closed connection and every broker registered over it:
// RocketMQ's onChannelDestroy.
func (s *Server) forget(p *peer) {
	s.mu.Lock()
	delete(s.peers, p)
	var gone []memberKey
	for k, m := range s.members {
		if m.peer == p {
			delete(s.members, k)
			gone = append(gone, k)
		}
	}
	if len(gone) > 0 {
		s.version++
	}
	s.mu.Unlock()
	s.closedBytesIn.Add(p.bytesIn.Load())
	s.closedBytesOut.Add(p.bytesOut.Load())
	for _, k := range gone {
		s.dropped.Add(1)
		s.log.Info("broker dropped: registration connection closed",
			"cluster", k.Cluster, "group", k.Group, "broker-id", k.BrokerID)
	}
}

func (s *Server) scanLoop() { poll.Every(s.ctx, s.cfg.ScanInterval, nil, s.scan) }

// scan drops brokers silent past the expiry and closes their connections,
// as RocketMQ's scanNotActiveBroker does.
func (s *Server) scan(now time.Time) {
	s.mu.Lock()
	var closing []*peer
	for k, m := range s.members {
		silent := now.Sub(m.lastSeen)
		if silent <= s.cfg.BrokerExpiry {
			continue
		}
		delete(s.members, k)
		s.version++
		closing = append(closing, m.peer)
		s.expired.Add(1)
		s.log.Info("broker expired", "cluster", k.Cluster, "group", k.Group, "broker-id", k.BrokerID,
			"node-id", m.NodeID, "silent", silent.Round(time.Millisecond).String())
	}
	s.mu.Unlock()
	for _, p := range closing {
		p.close()
	}
}

// handle serves one request on p's read loop. Topic creation and deletion
// wait on pushes to brokers, possibly over this same connection, so they
// run on their own goroutines.
func (s *Server) handle(p *peer, req inbound) {
	var (
		body any
		err  error
	)
	switch req.Type {
	case typeRegister:
		s.handleRegister(p, req)
		return
	case typeUnregister:
		err = s.handleUnregister(req)
	case typeRoute:
		var r routeRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body = s.routes(r.Topics)
			s.routeQueries.Add(1)
		}
	case typeClusterInfo:
		var r clusterInfoRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body = s.clusterInfo()
			s.clusterQueries.Add(1)
		}
	case typeSnapshot:
		var r snapshotRequest
		if err = decodeBody(req.Body, &r); err == nil {
			body = s.snapshot(r)
			s.snapshotQueries.Add(1)
		}
	case typeCreateTopic, typeDeleteTopic:
		if !s.goFunc(func() { s.handleAdmin(p, req) }) {
			_, _ = p.reply(req.ID, nil, ErrClosed)
		}
		return
	default:
		err = fmt.Errorf("%w: unknown request type %q", ErrBadRequest, req.Type)
	}
	n, _ := p.reply(req.ID, body, err)
	if req.Type == typeRoute || req.Type == typeClusterInfo || req.Type == typeSnapshot {
		s.queryBytesOut.Add(int64(n))
	}
	if req.Type == typeClusterInfo {
		s.clusterBytesOut.Add(int64(n))
	}
}

func (s *Server) handleRegister(p *peer, req inbound) {
	s.registerRequests.Add(1)
	s.registerIn.Add(int64(req.size))
	var r RegisterRequest
	err := decodeBody(req.Body, &r)
	if err == nil {
		err = r.validate()
	}
	if err == nil {
		err = s.register(p, r)
	}
	if err != nil {
		s.log.Warn("registration rejected", "remote", p.conn.RemoteAddr().String(), "error", err)
	}
	n, _ := p.reply(req.ID, struct{}{}, err)
	s.registerOut.Add(int64(n))
}

// register records a registration; a broker that registers over a new
// connection (it restarted or reconnected) moves to it. In controller mode
// a master registering with a lower master epoch than the registered one
// is fenced: it is an old master that has not learnt of its successor.
func (s *Server) register(p *peer, r RegisterRequest) error {
	topics := make(map[string]GroupTopic, len(r.Topics))
	for _, t := range r.Topics {
		topics[t.Name] = t
	}
	r.Topics = nil
	k := memberKey{r.Cluster, r.Group, r.BrokerID}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.members[k]
	if ok && old.peer != p && old.MasterEpoch > r.MasterEpoch {
		return fmt.Errorf("%w: %s/%s broker %d: master epoch %d, registered %d", broker.ErrFenced,
			r.Cluster, r.Group, r.BrokerID, r.MasterEpoch, old.MasterEpoch)
	}
	s.members[k] = &member{RegisterRequest: r, topics: topics, lastSeen: time.Now(), peer: p}
	if !ok || old.info() != (&member{RegisterRequest: r}).info() || old.Cluster != r.Cluster || !maps.Equal(old.topics, topics) {
		s.version++
	}
	if !ok || old.Addr != r.Addr || old.NodeID != r.NodeID {
		s.log.Info("broker registered", "cluster", r.Cluster, "group", r.Group, "broker-id", r.BrokerID,
			"node-id", r.NodeID, "addr", r.Addr, "topics", len(topics))
	}
	return nil
}

func (s *Server) handleUnregister(req inbound) error {
	var r unregisterRequest
	if err := decodeBody(req.Body, &r); err != nil {
		return err
	}
	k := memberKey(r)
	s.mu.Lock()
	_, ok := s.members[k]
	delete(s.members, k)
	if ok {
		s.version++
	}
	s.mu.Unlock()
	if ok {
		s.unregistered.Add(1)
		s.log.Info("broker unregistered", "cluster", r.Cluster, "group", r.Group, "broker-id", r.BrokerID)
	}
	return nil
}

func (s *Server) handleAdmin(p *peer, req inbound) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*s.cfg.RequestTimeout)
	defer cancel()
	var (
		body any
		err  error
	)
	switch req.Type {
	case typeCreateTopic:
		var r CreateTopicRequest
		if err = decodeBody(req.Body, &r); err == nil {
			var route TopicRoute
			route, err = s.createTopic(ctx, r)
			body = createTopicReply{Route: route}
		}
	case typeDeleteTopic:
		var r deleteTopicRequest
		if err = decodeBody(req.Body, &r); err == nil {
			err = s.deleteTopic(ctx, r.Name)
		}
	}
	_, _ = p.reply(req.ID, body, err)
}
