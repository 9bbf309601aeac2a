package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	gbackoff "google.golang.org/grpc/backoff"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/internal/validate"
)

// Errors of this package. Control-plane outcomes use the broker package's
// sentinels (broker.ErrStaleState, broker.ErrControlPlaneDown, ...).
var (
	ErrClosed            = errors.New("coordinator: closed")
	ErrNotRegistered     = errors.New("coordinator: not registered")
	ErrAlreadyRegistered = errors.New("coordinator: already registered")
	ErrInvalidISR        = errors.New("coordinator: invalid ISR")
)

// Plane is one broker's handle on the etcd control plane. It implements
// broker.ControlPlane; see doc.go for what it writes where.
type Plane struct {
	cfg      Config
	log      *slog.Logger
	keys     keys
	client   *clientv3.Client
	counters *counters
	cache    *cache

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the handle starts

	mu          sync.Mutex // guards the fields below; held across Register and Deregister
	self        broker.BrokerInfo
	registered  bool
	closed      bool
	stopSession context.CancelFunc
	sessionDone chan struct{}

	smu          sync.Mutex       // guards the session's fields below (the session loop writes them)
	lease        clientv3.LeaseID // current session lease
	isController bool
}

var _ broker.ControlPlane = (*Plane)(nil)

// New validates cfg and creates an unregistered handle. It does not wait for
// etcd: connections are made lazily and Register reports an unreachable etcd.
func New(cfg Config) (*Plane, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &counters{}
	opts := []grpc.DialOption{
		grpc.WithStatsHandler(h),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: gbackoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   cfg.ReconnectBackoffMax,
			},
			MinConnectTimeout: cfg.DialTimeout,
		}),
	}
	if cfg.Dial != nil {
		dial := cfg.Dial
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}))
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		// etcd's server refuses client pings more often than every 5 s.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		PermitWithoutStream:  true,
		DialOptions:          opts,
		Logger:               zapToSlog(log.With("component", "etcd-client"), zapcore.ErrorLevel, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: etcd client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := newKeys(cfg.Prefix)
	return &Plane{
		cfg:      cfg,
		log:      log,
		keys:     k,
		client:   client,
		counters: h,
		cache:    newCache(k),
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// Register announces self under a new lease, starts watching the cluster,
// and campaigns for controller. Views go to onView until Close.
//
// Attempts that fail because etcd is unreachable or slow
// (broker.ErrControlPlaneDown) are retried with capped, jittered
// exponential back-off until ctx ends; the last error is returned then.
//
// A registration left by an earlier incarnation of the same broker id (a
// crash shorter than the session TTL) is revoked first, as Kafka waits for
// the old ephemeral znode: the controller then treats the restart as a
// failure followed by a return.
func (p *Plane) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	if onView == nil {
		return errors.New("coordinator: register: onView is nil")
	}
	if self.ID < 0 || self.Addr == "" {
		return fmt.Errorf("coordinator: register: broker id %d addr %q: need id >= 0 and an address", self.ID, self.Addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return ErrClosed
	case p.registered:
		return ErrAlreadyRegistered
	}
	p.self = self
	var lease clientv3.LeaseID
	var rev int64
	bo := newBackoff(p.cfg.ReconnectBackoffMax)
	for attempt := 1; ; attempt++ {
		var err error
		lease, rev, err = p.registerOnce(ctx)
		if err == nil {
			break
		}
		// etcd unreachable or too slow to answer in RequestTimeout (many
		// brokers starting at once): try again after a pause, as a Kafka
		// broker retries its ZooKeeper session at start-up, until ctx ends.
		if !errors.Is(err, broker.ErrControlPlaneDown) || ctx.Err() != nil {
			return err
		}
		p.log.Info("registration failed, retrying", "node-id", self.ID, "attempt", attempt, "error", err)
		if !bo.wait(ctx) {
			return err
		}
	}
	p.setLease(lease)
	p.registered = true
	p.log.Info("broker registered", "node-id", self.ID, "addr", self.Addr, "lease", fmt.Sprintf("%x", int64(lease)),
		"session-ttl", p.cfg.SessionTTL)

	p.goFunc(func() { p.watchLoop(p.ctx, rev) })
	// Views go to the broker one at a time, newest only: the watch only
	// offers them, so a slow onView never holds it up.
	p.goFunc(func() { p.cache.views.Run(p.ctx.Done(), onView) })
	sctx, stop := context.WithCancel(p.ctx)
	p.stopSession, p.sessionDone = stop, make(chan struct{})
	done := p.sessionDone
	p.goFunc(func() {
		defer close(done)
		p.sessionLoop(sctx, lease)
	})
	return nil
}

// registerOnce makes one registration attempt: the cluster id, the old
// incarnation's lease, a new lease with the registration under it, and the
// listing the watch starts from. A failure leaves no lease behind.
func (p *Plane) registerOnce(ctx context.Context) (clientv3.LeaseID, int64, error) {
	if err := p.ensureClusterID(ctx); err != nil {
		return 0, 0, err
	}
	if err := p.revokeOldIncarnation(ctx); err != nil {
		return 0, 0, err
	}
	lease, err := p.grantAndRegister(ctx)
	if err != nil {
		return 0, 0, err
	}
	rev, err := p.relist(ctx)
	if err != nil {
		p.revokeQuietly(lease)
		return 0, 0, err
	}
	return lease, rev, nil
}

// goFunc starts a goroutine that Close waits for.
func (p *Plane) goFunc(f func()) { p.wg.Go(f) }

// Deregister ends the broker's session at once by revoking its lease, which
// deletes its registration and its election key: the controller moves its
// leaderships without waiting for the TTL (a controlled shutdown). Call it
// before Close on a graceful stop; a crash skips it.
func (p *Plane) Deregister(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.registered || p.closed || p.stopSession == nil {
		return nil
	}
	p.stopSession()
	<-p.sessionDone
	p.stopSession = nil
	lease := p.currentLease()
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	if _, err := p.client.Revoke(rctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("coordinator: deregister: revoke lease: %w: %w", broker.ErrControlPlaneDown, err)
	}
	p.log.Info("broker deregistered", "node-id", p.self.ID)
	return nil
}

// Close stops the handle without revoking its lease: to the cluster it looks
// like a crash, and the registration expires after the session TTL. Use
// Deregister first for a graceful stop. Close is idempotent.
func (p *Plane) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if err := p.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("coordinator: close etcd client: %w", err)
	}
	return nil
}

// Stats returns the handle's etcd traffic since New.
func (p *Plane) Stats() Stats { return p.counters.snapshot() }

// View returns the handle's current view of the cluster (what the last
// onView call got, or newer).
func (p *Plane) View() broker.ClusterView { return p.cache.view() }

// IsController reports whether this handle currently acts as controller.
func (p *Plane) IsController() bool {
	p.smu.Lock()
	defer p.smu.Unlock()
	return p.isController
}

func (p *Plane) setController(on bool) {
	p.smu.Lock()
	p.isController = on
	p.smu.Unlock()
}

func (p *Plane) currentLease() clientv3.LeaseID {
	p.smu.Lock()
	defer p.smu.Unlock()
	return p.lease
}

func (p *Plane) setLease(l clientv3.LeaseID) {
	p.smu.Lock()
	p.lease = l
	p.smu.Unlock()
}

// AlterISR writes want.ISR if the partition's key is still at want.Version
// (Kafka's zkVersion check) and this broker leads it at want.LeaderEpoch.
func (p *Plane) AlterISR(ctx context.Context, want broker.PartitionState) (broker.PartitionState, error) {
	self, err := p.registeredSelf()
	if err != nil {
		return broker.PartitionState{}, err
	}
	if err := validate.TopicName(want.Topic); err != nil || want.Partition < 0 {
		return broker.PartitionState{}, fmt.Errorf("coordinator: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrUnknownTopic)
	}
	cur, ok := p.cache.partition(want.Topic, want.Partition)
	if ok && cur.Version > want.Version {
		return broker.PartitionState{}, staleErr(want, cur)
	}
	if !ok || cur.Version != want.Version {
		// The caller may be ahead of the cache (it holds the result of its
		// last AlterISR): read etcd.
		if cur, err = p.getPartition(ctx, want.Topic, want.Partition); err != nil {
			return broker.PartitionState{}, err
		}
	}
	if err := checkAlter(want, cur, self.ID); err != nil {
		return broker.PartitionState{}, err
	}
	next := clonePartition(cur)
	next.ISR = slices.Clone(want.ISR)
	key := p.keys.partition(want.Topic, want.Partition)
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	resp, err := p.client.Txn(rctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", want.Version)).
		Then(clientv3.OpPut(key, encodePartition(next))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return broker.PartitionState{}, fmt.Errorf("coordinator: alter isr %s/%d: %w: %w", want.Topic, want.Partition, broker.ErrControlPlaneDown, err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			return broker.PartitionState{}, fmt.Errorf("coordinator: alter isr %s/%d: %w", want.Topic, want.Partition, broker.ErrUnknownTopic)
		}
		st := newState(p.keys)
		if err := st.put(kvs[0]); err != nil {
			return broker.PartitionState{}, fmt.Errorf("coordinator: alter isr %s/%d: %w", want.Topic, want.Partition, err)
		}
		now, _ := st.partition(want.Topic, want.Partition)
		if err := checkAlter(want, now, self.ID); err != nil && !errors.Is(err, broker.ErrStaleState) {
			return broker.PartitionState{}, err
		}
		return broker.PartitionState{}, staleErr(want, now)
	}
	next.Version = resp.Header.Revision
	p.log.Debug("isr changed", "topic", want.Topic, "partition", want.Partition, "leader-epoch", next.LeaderEpoch,
		"isr", next.ISR, "version", next.Version)
	return next, nil
}

// checkAlter validates an ISR change against the stored state cur.
func checkAlter(want, cur broker.PartitionState, self int32) error {
	switch {
	case cur.LeaderEpoch != want.LeaderEpoch || cur.Leader != self:
		return fmt.Errorf("coordinator: alter isr %s/%d: stored leader %d epoch %d, asked by %d at epoch %d: %w",
			want.Topic, want.Partition, cur.Leader, cur.LeaderEpoch, self, want.LeaderEpoch, broker.ErrFenced)
	case cur.Version != want.Version:
		return staleErr(want, cur)
	}
	if err := validate.ISR(want.ISR, cur.Replicas, self); err != nil {
		return fmt.Errorf("coordinator: alter isr %s/%d: %w: %w", want.Topic, want.Partition, err, ErrInvalidISR)
	}
	return nil
}

func staleErr(want, cur broker.PartitionState) error {
	return fmt.Errorf("coordinator: alter isr %s/%d: version %d, stored %d: %w",
		want.Topic, want.Partition, want.Version, cur.Version, broker.ErrStaleState)
}

func (p *Plane) getPartition(ctx context.Context, topic string, part int32) (broker.PartitionState, error) {
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	resp, err := p.client.Get(rctx, p.keys.partition(topic, part))
	if err != nil {
		return broker.PartitionState{}, fmt.Errorf("coordinator: read %s/%d: %w: %w", topic, part, broker.ErrControlPlaneDown, err)
	}
	if len(resp.Kvs) == 0 {
		return broker.PartitionState{}, fmt.Errorf("coordinator: %s/%d: %w", topic, part, broker.ErrUnknownTopic)
	}
	st := newState(p.keys)
	if err := st.put(resp.Kvs[0]); err != nil {
		return broker.PartitionState{}, fmt.Errorf("coordinator: read %s/%d: %w", topic, part, err)
	}
	ps, _ := st.partition(topic, part)
	return ps, nil
}

// CreateTopics writes each topic's config if the name is free and waits,
// bounded by ctx, until the controller has written every partition state.
// A topic the controller cannot place (fewer live brokers than its
// replication factor) is removed again and gets broker.ErrNotEnoughBrokers.
// When ctx ends first the topic is still created later, as Kafka does after
// a CreateTopics timeout.
func (p *Plane) CreateTopics(ctx context.Context, topics []broker.TopicConfig) []error {
	errs := make([]error, len(topics))
	if _, err := p.registeredSelf(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	type pending struct {
		i   int
		cfg broker.TopicConfig
		rev int64
	}
	var wait []pending
	for i, t := range topics {
		if err := t.Validate(); err != nil {
			errs[i] = fmt.Errorf("coordinator: %w", err)
			continue
		}
		if slices.ContainsFunc(topics[:i], func(o broker.TopicConfig) bool { return o.Name == t.Name }) {
			errs[i] = fmt.Errorf("coordinator: topic %q given twice: %w", t.Name, broker.ErrInvalidTopic)
			continue
		}
		if live := p.cache.liveCount(); live < int(t.ReplicationFactor) {
			errs[i] = fmt.Errorf("coordinator: topic %q: %d live brokers, replication factor %d: %w",
				t.Name, live, t.ReplicationFactor, broker.ErrNotEnoughBrokers)
			continue
		}
		rev, err := p.putTopic(ctx, t)
		if err != nil {
			errs[i] = err
			continue
		}
		wait = append(wait, pending{i, t, rev})
	}
	for len(wait) > 0 {
		changed := p.cache.changed()
		wait = slices.DeleteFunc(wait, func(w pending) bool {
			done, err := p.cache.topicStatus(w.cfg, w.rev)
			if done {
				errs[w.i] = err
			}
			return done
		})
		if len(wait) == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			for _, w := range wait {
				errs[w.i] = fmt.Errorf("coordinator: topic %q: waiting for the controller to place it: %w", w.cfg.Name, ctx.Err())
			}
			wait = nil
		}
	}
	for i, err := range errs {
		if err == nil {
			p.log.Info("topic created", "topic", topics[i].Name, "partitions", topics[i].Partitions,
				"replication-factor", topics[i].ReplicationFactor)
		}
	}
	return errs
}

func (p *Plane) putTopic(ctx context.Context, t broker.TopicConfig) (int64, error) {
	key := p.keys.topic(t.Name)
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	resp, err := p.client.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encodeTopic(t)), clientv3.OpDelete(p.keys.deleted(t.Name))).Commit()
	if err != nil {
		return 0, fmt.Errorf("coordinator: create topic %q: %w: %w", t.Name, broker.ErrControlPlaneDown, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("coordinator: create topic %q: %w", t.Name, broker.ErrTopicExists)
	}
	return resp.Header.Revision, nil
}

// DeleteTopics removes each topic's config and partition states and writes
// its deleted-topics/ marker in one transaction (Kafka's
// /admin/delete_topics), and waits, bounded by ctx, until this handle's view
// no longer has it. The marker makes every broker's view announce the
// deletion (broker.ClusterView.DeletedTopics) until the name is created
// again, so a broker that was away when it happened still removes the data.
func (p *Plane) DeleteTopics(ctx context.Context, names []string) []error {
	errs := make([]error, len(names))
	if _, err := p.registeredSelf(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var last int64
	for i, name := range names {
		if err := validate.TopicName(name); err != nil {
			errs[i] = fmt.Errorf("coordinator: delete topic %q: %w: %v", name, broker.ErrUnknownTopic, err)
			continue
		}
		key := p.keys.topic(name)
		rctx, cancel := p.requestCtx(ctx)
		resp, err := p.client.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
			Then(deleteTopicOps(p.keys, name)...).Commit()
		cancel()
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("coordinator: delete topic %q: %w: %w", name, broker.ErrControlPlaneDown, err)
		case !resp.Succeeded:
			errs[i] = fmt.Errorf("coordinator: delete topic %q: %w", name, broker.ErrUnknownTopic)
		default:
			last = max(last, resp.Header.Revision)
			p.log.Info("topic deleted", "topic", name)
		}
	}
	// The deletions are committed; waiting only makes them visible here
	// before returning, so a timeout is not an error.
	for p.cache.rev() < last {
		select {
		case <-p.cache.changed():
		case <-ctx.Done():
			return errs
		}
	}
	return errs
}

// deleteTopicOps delete a topic's config and partition states and mark it
// deleted, in one transaction.
func deleteTopicOps(k keys, name string) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpDelete(k.topic(name)),
		clientv3.OpDelete(k.partitionsOf(name), clientv3.WithPrefix()),
		clientv3.OpPut(k.deleted(name), ""),
	}
}

func (p *Plane) registeredSelf() (broker.BrokerInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return broker.BrokerInfo{}, ErrClosed
	case !p.registered:
		return broker.BrokerInfo{}, ErrNotRegistered
	}
	return p.self, nil
}

// requestCtx bounds one etcd request by RequestTimeout.
func (p *Plane) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.RequestTimeout)
}

// ensureClusterID writes a random cluster id unless one exists (the first
// broker of a cluster does it, like Kafka's /cluster/id).
func (p *Plane) ensureClusterID(ctx context.Context) error {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	key := p.keys.clusterID()
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	_, err := p.client.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, id)).Commit()
	if err != nil {
		return fmt.Errorf("coordinator: register: cluster id: %w: %w", broker.ErrControlPlaneDown, err)
	}
	return nil
}

// revokeOldIncarnation revokes the lease of a registration this broker id
// left behind.
func (p *Plane) revokeOldIncarnation(ctx context.Context) error {
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	resp, err := p.client.Get(rctx, p.keys.broker(p.self.ID))
	if err != nil {
		return fmt.Errorf("coordinator: register: %w: %w", broker.ErrControlPlaneDown, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
		return nil
	}
	old := clientv3.LeaseID(resp.Kvs[0].Lease)
	p.log.Warn("broker id still registered by an earlier session, revoking it", "node-id", p.self.ID,
		"lease", fmt.Sprintf("%x", int64(old)))
	if _, err := p.client.Revoke(rctx, old); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("coordinator: register: revoke old session: %w: %w", broker.ErrControlPlaneDown, err)
	}
	return nil
}

// grantAndRegister opens a new session lease and writes the registration
// under it.
func (p *Plane) grantAndRegister(ctx context.Context) (clientv3.LeaseID, error) {
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	g, err := p.client.Grant(rctx, int64(p.cfg.SessionTTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("coordinator: register: grant lease: %w: %w", broker.ErrControlPlaneDown, err)
	}
	if err := p.putRegistration(rctx, g.ID); err != nil {
		p.revokeQuietly(g.ID)
		return 0, err
	}
	return g.ID, nil
}

func (p *Plane) putRegistration(ctx context.Context, lease clientv3.LeaseID) error {
	_, err := p.client.Put(ctx, p.keys.broker(p.self.ID), encodeBroker(p.self), clientv3.WithLease(lease))
	if err != nil {
		return fmt.Errorf("coordinator: register: %w: %w", broker.ErrControlPlaneDown, err)
	}
	return nil
}

// revokeQuietly cleans up a lease on an error path.
func (p *Plane) revokeQuietly(lease clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
	defer cancel()
	_, _ = p.client.Revoke(ctx, lease)
}

// relist reads every key of the cluster into the cache and returns the
// revision of the listing.
func (p *Plane) relist(ctx context.Context) (int64, error) {
	rctx, cancel := p.requestCtx(ctx)
	defer cancel()
	resp, err := p.client.Get(rctx, p.keys.root(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("coordinator: list cluster: %w: %w", broker.ErrControlPlaneDown, err)
	}
	for _, err := range p.cache.reset(resp.Kvs, resp.Header.Revision) {
		p.log.Warn("ignoring undecodable key", "error", err)
	}
	return resp.Header.Revision, nil
}

// watchLoop keeps the cache current: it watches the prefix from rev+1 and,
// when the watch is compacted, cancelled or loses its leader, lists again
// and re-watches. While etcd is unreachable the cache (and the broker's
// view) stays as it was.
func (p *Plane) watchLoop(ctx context.Context, rev int64) {
	bo := newBackoff(p.cfg.ReconnectBackoffMax)
	for ctx.Err() == nil {
		if rev == 0 {
			var err error
			if rev, err = p.relist(ctx); err != nil {
				p.log.Debug("list failed, keeping the last view", "error", err)
				bo.wait(ctx)
				continue
			}
			bo.reset()
		}
		rev = p.watchFrom(ctx, rev)
	}
}

// watchFrom applies watch responses to the cache until the watch ends and
// returns 0 (list again).
func (p *Plane) watchFrom(ctx context.Context, rev int64) int64 {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range p.client.Watch(wctx, p.keys.root(), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if resp.CompactRevision != 0 {
			p.log.Info("watch compacted, listing again", "compact-revision", resp.CompactRevision)
			return 0
		}
		if err := resp.Err(); err != nil {
			p.log.Info("watch ended, listing again", "error", err)
			return 0
		}
		if resp.IsProgressNotify() {
			continue
		}
		p.counters.watchEvents.Add(int64(len(resp.Events)))
		for _, err := range p.cache.apply(resp.Events, resp.Header.Revision) {
			p.log.Warn("ignoring undecodable key", "error", err)
		}
	}
	return 0
}

// backoff is a capped exponential pause for retry loops, with jitter: the
// pause is drawn from [cur/2, cur), so handles that failed together (etcd
// overloaded by many brokers starting at once) do not retry together.
type backoff struct{ cur, max time.Duration }

func newBackoff(max time.Duration) *backoff {
	return &backoff{cur: min(50*time.Millisecond, max), max: max}
}

func (b *backoff) reset() { b.cur = min(50*time.Millisecond, b.max) }

// wait pauses for the current delay and reports whether ctx is still alive.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.cur/2 + time.Duration(mrand.Int64N(int64(b.cur/2)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
