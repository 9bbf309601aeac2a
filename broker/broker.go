package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/brokerlab/brokerlab/broker/storage"
	"github.com/brokerlab/brokerlab/internal/logs"
	"github.com/brokerlab/brokerlab/internal/mailbox"
	"github.com/brokerlab/brokerlab/internal/metrics"
	"github.com/brokerlab/brokerlab/internal/poll"
	"github.com/prometheus/client_golang/prometheus"
)

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// Broker is one broker node. Create it with New, then Start it.
type Broker struct {
	cfg    Config
	cp     ControlPlane
	logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the broker starts
	ln     net.Listener
	addr   string
	msrv   *metrics.Server // nil without MetricsListen

	views     *mailbox.Latest[ClusterView] // views from the control plane, newest only
	powerLoss atomic.Bool                  // the stop in progress is a power loss

	mu         sync.Mutex // guards the fields below
	view       ClusterView
	partitions map[topicPartition]*partition
	parked     map[topicPartition]storage.Log // logs of replicas a view stopped serving, kept open
	fetchers   map[int32]*fetcher
	conns      map[net.Conn]struct{}
	stopped    bool
	// leaving is set by Handoff: the broker fetches as a follower no more
	// (Kafka's StopReplica to a broker in controlled shutdown), so no
	// leader adds it back to an ISR it was just dropped from, to wait for
	// it once it is gone.
	leaving bool

	// purged are the deleted topics whose leftover directories applyView
	// has already removed; only applyView (one goroutine) touches it.
	purged map[string]struct{}

	stats counters
	reqs  requestCounters // per-API requests and errors, ISR changes
	lat   latencies       // produce and fetch duration histograms
}

// New validates cfg and returns a broker that is not yet serving.
func New(cfg Config, cp ControlPlane) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cp == nil {
		return nil, errors.New("broker: a control plane is required")
	}
	logger := logs.OrDiscard(cfg.Logger)
	return &Broker{
		cfg:        cfg,
		cp:         cp,
		logger:     logger.With("node-id", cfg.NodeID),
		views:      mailbox.New[ClusterView](nil),
		partitions: make(map[topicPartition]*partition),
		parked:     make(map[topicPartition]storage.Log),
		purged:     make(map[string]struct{}),
		fetchers:   make(map[int32]*fetcher),
		conns:      make(map[net.Conn]struct{}),
		view:       ClusterView{ControllerID: -1},
		lat:        newLatencies(),
	}, nil
}

// ID is the broker's node id.
func (b *Broker) ID() int32 { return b.cfg.NodeID }

// Addr is the advertised host:port; valid after Start.
func (b *Broker) Addr() string { return b.addr }

// Start listens, registers with the control plane and serves until Close or
// Kill. It returns once the broker accepts connections and is registered.
// A broker starts once: when Start fails, the broker is stopped and its
// control plane closed, as after Kill.
func (b *Broker) Start(ctx context.Context) error {
	if b.cfg.DataDir != "" {
		if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
			b.Kill()
			return fmt.Errorf("broker: data dir: %w", err)
		}
	}
	ln, err := net.Listen("tcp", b.cfg.Listen)
	if err != nil {
		b.Kill()
		return fmt.Errorf("broker: listen: %w", err)
	}
	b.mu.Lock()
	if b.stopped || b.cancel != nil {
		b.mu.Unlock()
		_ = ln.Close()
		return errors.New("broker: Start after Close, Kill or another Start")
	}
	b.ln = ln
	b.addr = b.cfg.Advertise
	if b.addr == "" {
		b.addr = ln.Addr().String()
	}
	if b.msrv, err = b.serveMetrics(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.mu.Unlock()
	b.logger = b.logger.With("addr", b.addr)
	b.goFunc(b.acceptLoop)
	b.goFunc(func() { b.views.Run(b.ctx.Done(), b.applyView) })
	b.goFunc(b.maintenanceLoop)
	self := BrokerInfo{ID: b.cfg.NodeID, Addr: b.addr, Rack: b.cfg.Rack}
	if err := b.cp.Register(ctx, self, b.onView); err != nil {
		b.Kill()
		return fmt.Errorf("broker: register: %w", err)
	}
	b.logger.Info("broker started")
	return nil
}

// serveMetrics serves the broker's registry when MetricsListen is set.
func (b *Broker) serveMetrics(ctx context.Context) (*metrics.Server, error) {
	cs := []prometheus.Collector{b.Collector()}
	if c, ok := b.cp.(interface{ Collector() prometheus.Collector }); ok {
		cs = append(cs, c.Collector())
	}
	srv, err := metrics.Serve(ctx, b.cfg.MetricsListen, b.cfg.MetricsProcess, b.logger, cs...)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return srv, nil
}

// MetricsAddr is the host:port of the Prometheus endpoint; empty when the
// broker serves none.
func (b *Broker) MetricsAddr() string { return b.msrv.Addr() }

// goFunc starts a goroutine that Close and Kill wait for.
func (b *Broker) goFunc(f func()) { b.wg.Go(f) }

// Close shuts down gracefully, as Kafka's controlled shutdown does: first
// Handoff (bounded by HandoffTimeout) while the broker still serves, then
// it stops accepting, lets in-flight requests finish, flushes logs and
// closes the control plane.
func (b *Broker) Close() error {
	timeout := b.cfg.HandoffTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if err := b.Handoff(ctx); err != nil {
		b.logger.Warn("controlled shutdown incomplete", "error", err)
	}
	cancel()
	return b.shutdown(true)
}

// Handoff is the first half of a graceful stop: while the broker keeps
// serving, its control plane moves the broker's leaderships to other
// in-sync replicas and drops it from the members (ControlPlane.Deregister),
// and Handoff waits until the broker's own applied view shows that it
// leads no partition another live in-sync replica could lead. Producers
// then get NOT_LEADER_FOR_PARTITION here and move on before the listener
// closes. A plane without a master switch (ErrNoHandoff) returns at once.
// Close calls it; a runtime may call it first to observe the hand-off. It
// is a no-op on a broker that is not running.
func (b *Broker) Handoff(ctx context.Context) error {
	b.mu.Lock()
	running := b.cancel != nil && !b.stopped
	b.leaving = b.leaving || running
	b.mu.Unlock()
	if !running {
		return nil
	}
	b.planFetchers(b.View()) // stops every fetcher
	start := time.Now()
	if err := b.cp.Deregister(ctx); errors.Is(err, ErrNoHandoff) {
		b.logger.Info("controlled shutdown: no hand-off in this control plane, leaving")
		return nil
	} else if err != nil {
		return fmt.Errorf("broker: handoff: %w", err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		n := b.movableLeaderships()
		if n == 0 {
			b.logger.Info("controlled shutdown: leaderships handed off", "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: handoff: still leading %d partitions: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// movableLeaderships counts the partitions the broker's applied view has
// it lead while another in-sync replica the view lists as live could.
func (b *Broker) movableLeaderships() int {
	v := b.View()
	self := b.cfg.NodeID
	n := 0
	for _, t := range v.Topics {
		for _, st := range t.Partitions {
			if st.Leader != self {
				continue
			}
			if slices.ContainsFunc(st.ISR, func(id int32) bool {
				_, live := v.Broker(id)
				return id != self && live
			}) {
				n++
			}
		}
	}
	return n
}

// Kill stops the broker as a crash would: connections dropped, nothing
// flushed, no deregistration (the control plane notices on its own).
func (b *Broker) Kill() { _ = b.shutdown(false) }

// PowerLoss stops the broker as a power failure would: a crash like Kill in
// which every partition log also loses what no fsync covered (see
// storage.Log.PowerLoss), so a broker restarted on the same directory finds
// what a machine that lost power would.
func (b *Broker) PowerLoss() {
	b.powerLoss.Store(true)
	_ = b.shutdown(false)
}

func (b *Broker) shutdown(graceful bool) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil
	}
	b.stopped = true
	started := b.cancel != nil
	b.mu.Unlock()
	if !started {
		// The plane was created for this broker and may already hold
		// connections (an etcd client): it is ours to close.
		return b.cp.Close()
	}

	_ = b.ln.Close()
	_ = b.msrv.Close()
	if graceful {
		// Handoff has deregistered already unless it was skipped; a
		// second Deregister is a no-op.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := b.cp.Deregister(ctx); err != nil && !errors.Is(err, ErrNoHandoff) {
			b.logger.Warn("deregister failed", "error", err)
		}
		cancel()
		b.waitIdleConns(5 * time.Second)
	}
	b.cancel()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	parts := make([]*partition, 0, len(b.partitions))
	for _, p := range b.partitions {
		parts = append(parts, p)
	}
	parked := b.parked
	b.parked = map[topicPartition]storage.Log{}
	fetchers := b.fetchers
	b.fetchers = map[int32]*fetcher{}
	b.mu.Unlock()
	for _, f := range fetchers {
		f.stop()
	}
	var errs []error
	for _, p := range parts {
		closeLog := p.close
		if b.powerLoss.Load() {
			closeLog = p.losePower
		}
		if err := closeLog(graceful); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range parked {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.cp.Close(); err != nil {
		errs = append(errs, err)
	}
	b.wg.Wait()
	b.logger.Info("broker stopped", "graceful", graceful)
	return errors.Join(errs...)
}

// waitIdleConns gives connections with a request in flight time to answer.
func (b *Broker) waitIdleConns(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && b.stats.inFlight.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
}

// onView is the control plane's callback: keep only the newest view for the
// goroutine that applies views, so the control plane is never blocked by
// disk work.
func (b *Broker) onView(v ClusterView) { b.views.Offer(v) }

// applyView makes the local replicas match the view: opens new ones, changes
// roles, parks the ones the view no longer has, removes the data of deleted
// topics and re-plans the replica fetchers.
//
// Only a name in v.DeletedTopics removes data (see ClusterView). A replica
// merely missing from the view stops being served and its log is parked,
// open and intact, until a view brings it back or announces its deletion: a
// control plane that forgot a topic for a while (a restarted name server)
// must not cost acknowledged messages.
func (b *Broker) applyView(v ClusterView) {
	now := time.Now()
	want := make(map[topicPartition]PartitionState)
	live := make(map[string]bool, len(v.Topics))
	for _, t := range v.Topics {
		live[t.Config.Name] = true
		for _, st := range t.Partitions {
			if st.HasReplica(b.cfg.NodeID) {
				want[topicPartition{st.Topic, st.Partition}] = st
			}
		}
	}
	deleted := make(map[string]bool, len(v.DeletedTopics))
	for _, name := range v.DeletedTopics {
		if !live[name] {
			deleted[name] = true
		}
	}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	var removed, stopped []*partition
	for tp, p := range b.partitions {
		if _, ok := want[tp]; ok {
			continue
		}
		delete(b.partitions, tp)
		if deleted[tp.topic] {
			removed = append(removed, p)
		} else {
			stopped = append(stopped, p)
		}
	}
	var dropped []storage.Log
	for tp, l := range b.parked {
		if deleted[tp.topic] {
			dropped = append(dropped, l)
			delete(b.parked, tp)
		}
	}
	b.mu.Unlock()

	for _, p := range stopped {
		b.park(p)
	}
	for _, l := range dropped {
		_ = l.Close()
	}
	for _, p := range removed {
		_ = p.close(false)
		b.logger.Info("replica deleted", "topic", p.topic, "partition", p.id)
	}
	b.purge(deleted)
	for tp, st := range want {
		p, err := b.partitionFor(tp)
		if err != nil {
			b.logger.Error("open partition log", "topic", tp.topic, "partition", tp.partition, "error", err)
			continue
		}
		p.apply(st, now)
	}
	// Metadata answers from b.view: publish the view only once every
	// partition it gives this broker is open and has its state, so a client
	// told about a new topic never finds it unknown here (a produce right
	// after CreateTopics failed with UNKNOWN_TOPIC_OR_PARTITION).
	b.mu.Lock()
	if !b.stopped {
		b.view = v
	}
	b.mu.Unlock()
	b.planFetchers(v)
}

// park stops serving a replica the view no longer lists and keeps its log
// open for partitionFor to pick up again.
func (b *Broker) park(p *partition) {
	log := p.detach()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		_ = log.Close()
		return
	}
	b.parked[topicPartition{p.topic, p.id}] = log
	b.logger.Info("replica no longer in the view, data kept", "topic", p.topic, "partition", p.id)
}

// purge removes the directories of every partition of the deleted topics,
// including replicas this run never opened (the topic was deleted while the
// broker was down). Each topic is purged once per deletion: a name leaves
// purged when it is no longer announced, so a later deletion of a topic
// created again under that name is purged again.
func (b *Broker) purge(deleted map[string]bool) {
	for name := range b.purged {
		if !deleted[name] {
			delete(b.purged, name)
		}
	}
	if b.cfg.DataDir == "" {
		return
	}
	var todo []string
	for name := range deleted {
		if _, ok := b.purged[name]; !ok {
			todo = append(todo, name)
		}
	}
	if len(todo) == 0 {
		return
	}
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		b.logger.Warn("cannot list the data directory to remove deleted topics", "error", err)
		return
	}
	for _, name := range todo {
		b.purged[name] = struct{}{}
	}
	for _, e := range entries {
		topic, ok := partitionDirTopic(e.Name())
		if !ok || !e.IsDir() || !deleted[topic] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(b.cfg.DataDir, e.Name())); err != nil {
			b.logger.Warn("cannot remove a deleted topic's data", "dir", e.Name(), "error", err)
			delete(b.purged, topic)
			continue
		}
		b.logger.Info("deleted topic's data removed", "dir", e.Name())
	}
}

// partitionDirTopic returns the topic of a partition directory name
// (<topic>-<partition>, as partitionDir writes it).
func partitionDirTopic(dir string) (string, bool) {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 {
		return "", false
	}
	n, err := strconv.Atoi(dir[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != dir[i+1:] {
		return "", false
	}
	return dir[:i], true
}

// partitionFor returns the local replica, opening its log on first use.
func (b *Broker) partitionFor(tp topicPartition) (*partition, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.partitions[tp]; ok {
		return p, nil
	}
	if log, ok := b.parked[tp]; ok {
		delete(b.parked, tp)
		p := newPartition(tp.topic, tp.partition, b.cfg.NodeID, log, b.logger)
		b.partitions[tp] = p
		return p, nil
	}
	scfg := b.cfg.Storage
	scfg.Logger = b.logger.With("topic", tp.topic, "partition", tp.partition)
	var log storage.Log
	if b.cfg.DataDir == "" {
		log = storage.NewMemory(scfg)
	} else {
		scfg.Dir = b.partitionDir(tp.topic, tp.partition)
		l, err := storage.OpenFile(scfg)
		if err != nil {
			return nil, err
		}
		log = l
	}
	p := newPartition(tp.topic, tp.partition, b.cfg.NodeID, log, b.logger)
	b.partitions[tp] = p
	return p, nil
}

func (b *Broker) partitionDir(topic string, p int32) string {
	return filepath.Join(b.cfg.DataDir, topic+"-"+strconv.Itoa(int(p)))
}

// partition returns the local replica or nil.
func (b *Broker) partition(topic string, p int32) *partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.partitions[topicPartition{topic, p}]
}

// currentView returns the last applied view.
func (b *Broker) currentView() ClusterView {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.view
}

// maintenanceLoop shrinks ISRs of lagging followers every half of
// ReplicaLagMax (as Kafka does) and applies retention.
func (b *Broker) maintenanceLoop() {
	lastRetention := time.Now()
	poll.Every(b.ctx, b.cfg.ReplicaLagMax/2, nil, func(now time.Time) {
		for _, p := range b.localPartitions() {
			if isr := p.laggingISR(now, b.cfg.ReplicaLagMax); isr != nil {
				b.proposeISR(p, isr)
			}
		}
		if now.Sub(lastRetention) >= time.Minute {
			lastRetention = now
			for _, p := range b.localPartitions() {
				if err := p.log.ApplyRetention(now); err != nil {
					b.logger.Warn("retention", "topic", p.topic, "partition", p.id, "error", err)
				}
			}
		}
	})
}

func (b *Broker) localPartitions() []*partition {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*partition, 0, len(b.partitions))
	for _, p := range b.partitions {
		out = append(out, p)
	}
	return out
}

// proposeISR sends an ISR change to the control plane without blocking the
// caller; the outcome arrives as a new state.
func (b *Broker) proposeISR(p *partition, isr []int32) {
	want := p.proposal(isr)
	b.goFunc(func() {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		grow := len(isr) > p.isrLen()
		st, err := b.cp.AlterISR(ctx, want)
		if err != nil {
			p.isrSettled()
			b.logger.Warn("alter isr failed", "topic", p.topic, "partition", p.id, "isr", isr, "leader-epoch", want.LeaderEpoch, "error", err)
			return
		}
		if grow {
			b.reqs.isrExpands.Add(1)
		} else {
			b.reqs.isrShrinks.Add(1)
		}
		b.logger.Info("isr changed", "topic", p.topic, "partition", p.id, "isr", st.ISR, "leader-epoch", st.LeaderEpoch)
		p.apply(st, time.Now())
	})
}

// Status returns the state of every local replica, sorted by topic and
// partition.
func (b *Broker) Status() []ReplicaStatus {
	parts := b.localPartitions()
	out := make([]ReplicaStatus, 0, len(parts))
	for _, p := range parts {
		out = append(out, p.status())
	}
	slices.SortFunc(out, func(x, y ReplicaStatus) int {
		if x.Topic != y.Topic {
			if x.Topic < y.Topic {
				return -1
			}
			return 1
		}
		return int(x.Partition - y.Partition)
	})
	return out
}

// View returns the cluster view the broker last applied.
func (b *Broker) View() ClusterView { return b.currentView() }

func (b *Broker) acceptLoop() {
	var tempDelay time.Duration
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			b.logger.Warn("accept", "error", err)
			time.Sleep(tempDelay)
			continue
		}
		tempDelay = 0
		b.mu.Lock()
		if b.stopped || (b.cfg.MaxConnections > 0 && len(b.conns) >= b.cfg.MaxConnections) {
			full := !b.stopped
			b.mu.Unlock()
			if full {
				b.logger.Warn("connection refused: max connections reached", "remote", c.RemoteAddr().String(), "max-connections", b.cfg.MaxConnections)
			}
			_ = c.Close()
			continue
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.goFunc(func() { b.serveConn(c) })
	}
}

func (b *Broker) serveConn(c net.Conn) {
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		_ = c.Close()
	}()
	var buf []byte
	out := make([]byte, 0, 4096)
	for {
		frame, err := readFrame(c, buf, b.cfg.MaxFrameBytes)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && b.ctx.Err() == nil {
				b.logger.Warn("closing connection", "remote", c.RemoteAddr().String(), "error", err)
			}
			return
		}
		if cap(frame) <= 1<<20 {
			buf = frame // reuse small buffers only
		}
		b.stats.inFlight.Add(1)
		resp, err := b.handle(frame, out[:0])
		b.stats.inFlight.Add(-1)
		if err != nil {
			b.logger.Warn("closing connection", "remote", c.RemoteAddr().String(), "error", err)
			return
		}
		if resp == nil {
			continue // acks=0 produce
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
		b.stats.bytesOut.Add(int64(len(resp)))
		if cap(resp) <= 1<<20 {
			out = resp
		}
	}
}

// counters are the broker's traffic figures.
type counters struct {
	inFlight        atomic.Int64
	requests        atomic.Int64
	bytesIn         atomic.Int64
	bytesOut        atomic.Int64
	produceBytes    atomic.Int64
	replicaBytesOut atomic.Int64
	chainBytesOut   atomic.Int64
	replicaFetches  atomic.Int64
	panics          atomic.Int64 // recovered handler panics: always a bug
}

// Stats is a snapshot of a broker's traffic.
type Stats struct {
	Requests     int64 `json:"requests"`
	BytesIn      int64 `json:"bytes_in"`
	BytesOut     int64 `json:"bytes_out"`
	ProduceBytes int64 `json:"produce_bytes"` // record bytes accepted by Produce
	// ReplicaBytesOut are record bytes served to followers of partitions
	// this broker leads; ChainBytesOut those it passed on as a follower
	// in the middle of a chain.
	ReplicaBytesOut int64 `json:"replica_bytes_out"`
	ChainBytesOut   int64 `json:"chain_bytes_out"`
	ReplicaFetches  int64 `json:"replica_fetches"`
}

// Stats returns the broker's traffic counters.
func (b *Broker) Stats() Stats {
	return Stats{
		Requests:        b.stats.requests.Load(),
		BytesIn:         b.stats.bytesIn.Load(),
		BytesOut:        b.stats.bytesOut.Load(),
		ProduceBytes:    b.stats.produceBytes.Load(),
		ReplicaBytesOut: b.stats.replicaBytesOut.Load(),
		ChainBytesOut:   b.stats.chainBytesOut.Load(),
		ReplicaFetches:  b.stats.replicaFetches.Load(),
	}
}
