package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

// The acceptance tests: real brokers (broker.New through
// brokertest) on the coordinator control plane, with a real embedded etcd
// and stock kafka-go clients, all on loopback.

// coordCluster is a brokertest cluster whose brokers (ids 1..n) use the
// coordinator. Brokers reach etcd members through Net as brokertest.Name(id).
type coordCluster struct {
	*brokertest.Cluster
	members []*Etcd
	ttl     time.Duration

	mu     sync.Mutex
	planes map[int32]*Plane // latest handle of each broker
}

func newCoordCluster(t testing.TB, members []*Etcd, n int, ttl time.Duration) *coordCluster {
	t.Helper()
	log := testutil.Logger(t, testLogLevel())
	nw := faultnet.New(log.With("component", "faultnet"))
	t.Cleanup(func() { nw.Close() })
	for _, m := range members {
		nw.Register(m.Name(), m.Endpoints()[0])
	}
	cc := &coordCluster{members: members, ttl: ttl, planes: map[int32]*Plane{}}
	newCP := func(id int32) broker.ControlPlane {
		cfg := FastConfig()
		cfg.SessionTTL = ttl
		cfg.Endpoints = Endpoints(members)
		cfg.Prefix = "/brokers-test"
		cfg.ReconnectBackoffMax = 200 * time.Millisecond
		cfg.Dial = nw.Dialer(brokertest.Name(id))
		cfg.Logger = log
		p, err := New(cfg)
		if err != nil {
			t.Fatalf("coordinator for broker %d: %v", id, err)
		}
		cc.mu.Lock()
		cc.planes[id] = p
		cc.mu.Unlock()
		return p
	}
	cc.Cluster = brokertest.New(t, brokertest.Brokers(n), brokertest.WithNetwork(nw),
		brokertest.WithControlPlane(newCP), brokertest.LogLevel(testLogLevel()))
	return cc
}

// createTopic waits until every running broker sees every running broker
// registered (the plane refuses a replication factor above the live count
// it has seen), creates a topic, waits for its leaders (brokertest) and then
// until every running broker's view has it.
func (cc *coordCluster) createTopic(t testing.TB, cfg broker.TopicConfig) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, func() error {
		running := 0
		for _, id := range cc.IDs() {
			if cc.Broker(id) != nil {
				running++
			}
		}
		for _, id := range cc.IDs() {
			if b := cc.Broker(id); b != nil {
				if n := len(b.View().Brokers); n < running {
					return fmt.Errorf("broker %d sees %d of %d running brokers", id, n, running)
				}
			}
		}
		return nil
	})
	cc.CreateTopic(t, cfg)
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, id := range cc.IDs() {
			if b := cc.Broker(id); b != nil {
				if _, ok := b.View().Topic(cfg.Name); !ok {
					return fmt.Errorf("broker %d has no topic %s yet", id, cfg.Name)
				}
			}
		}
		return nil
	})
}

func (cc *coordCluster) plane(id int32) *Plane {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.planes[id]
}

// view returns the view of a running broker.
func (cc *coordCluster) view() broker.ClusterView {
	for _, id := range cc.IDs() {
		if b := cc.Broker(id); b != nil {
			return b.View()
		}
	}
	return broker.ClusterView{}
}

// waitFailover waits until every running broker's view has each partition
// that dead led (in before) led by another member of its old ISR at epoch+1,
// and returns how long that took from since.
func (cc *coordCluster) waitFailover(t testing.TB, before broker.TopicView, dead int32, since time.Time) time.Duration {
	t.Helper()
	var took time.Duration
	testutil.Eventually(t, 15*time.Second, func() error {
		for _, id := range cc.IDs() {
			b := cc.Broker(id)
			if b == nil {
				continue
			}
			tv, _ := b.View().Topic(before.Config.Name)
			if len(tv.Partitions) != len(before.Partitions) {
				return fmt.Errorf("broker %d: topic %+v", id, tv)
			}
			for i, old := range before.Partitions {
				ps := tv.Partitions[i]
				if old.Leader == dead && (ps.Leader == dead || !old.InISR(ps.Leader) || ps.LeaderEpoch != old.LeaderEpoch+1) {
					return fmt.Errorf("broker %d: partition %d leader %d epoch %d (was %d epoch %d isr %v)",
						id, i, ps.Leader, ps.LeaderEpoch, old.Leader, old.LeaderEpoch, old.ISR)
				}
			}
		}
		took = time.Since(since)
		return nil
	})
	return took
}

// mostLeadingBroker returns the running broker leading the most partitions
// of topic, skipping skip.
func (cc *coordCluster) mostLeadingBroker(topic string, skip int32) int32 {
	counts := leaderCounts(cc.view(), topic)
	best := int32(-1)
	for _, id := range cc.IDs() {
		if id != skip && cc.Running(id) && (best < 0 || counts[id] > counts[best]) {
			best = id
		}
	}
	return best
}

// workload produces continuously with kafka-go, acks=all, and records every
// acknowledged message with its partition, offset and time.
type workload struct {
	w      *kafka.Writer
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   map[string]ackedMsg // by value
	failed  int                 // WriteMessages calls that returned an error
	lastErr error
}

type ackedMsg struct {
	partition int
	offset    int64
	at        time.Time
}

// loadTopic creates topic (replication 3, minISR in sync) and puts it
// under load until each of its parts partitions took an ack.
func (cc *coordCluster) loadTopic(t testing.TB, topic string, parts int32, minISR int16, mods ...func(*kafka.Writer)) *workload {
	t.Helper()
	cc.createTopic(t, broker.TopicConfig{Name: topic, Partitions: parts, ReplicationFactor: 3, MinInsync: minISR})
	l := startLoad(t, cc, topic, mods...)
	l.waitAcks(t, upTo(parts), time.Now())
	return l
}

// upTo lists partitions 0..n-1.
func upTo(n int32) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// ledBy lists the partitions tv has led by id.
func ledBy(tv broker.TopicView, id int32) []int {
	var out []int
	for _, ps := range tv.Partitions {
		if ps.Leader == id {
			out = append(out, int(ps.Partition))
		}
	}
	return out
}

func startLoad(t testing.TB, cc *coordCluster, topic string, mods ...func(*kafka.Writer)) *workload {
	l := &workload{acked: map[string]ackedMsg{}, done: make(chan struct{})}
	l.w = &kafka.Writer{
		Addr:            kafka.TCP(cc.Addrs()...),
		Topic:           topic,
		RequiredAcks:    kafka.RequireAll,
		Balancer:        &kafka.RoundRobin{},
		BatchTimeout:    2 * time.Millisecond,
		WriteBackoffMin: 20 * time.Millisecond,
		WriteBackoffMax: 200 * time.Millisecond,
		MaxAttempts:     50,
		Transport:       &kafka.Transport{Dial: cc.Net.Dialer("client"), MetadataTTL: 500 * time.Millisecond},
		Completion:      l.complete,
	}
	for _, m := range mods {
		m(l.w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
	t.Cleanup(l.stop)
	return l
}

func (l *workload) run(ctx context.Context) {
	defer close(l.done)
	for seq := 0; ctx.Err() == nil; {
		msgs := make([]kafka.Message, 12)
		for i := range msgs {
			msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "m-%08d", seq)}
			seq++
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := l.w.WriteMessages(wctx, msgs...)
		cancel()
		if err != nil && ctx.Err() == nil {
			l.mu.Lock()
			l.failed++
			l.lastErr = err
			l.mu.Unlock()
		}
	}
}

func (l *workload) complete(msgs []kafka.Message, err error) {
	if err != nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.acked[string(m.Value)] = ackedMsg{partition: m.Partition, offset: m.Offset, at: now}
	}
}

// stop ends the load and waits for the writer.
func (l *workload) stop() {
	l.cancel()
	<-l.done
	l.w.Close()
}

// ackedSince counts acknowledgements per partition after t.
func (l *workload) ackedSince(t time.Time) map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[int]int{}
	for _, a := range l.acked {
		if a.at.After(t) {
			m[a.partition]++
		}
	}
	return m
}

func (l *workload) failures() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed, l.lastErr
}

// waitAcks waits until every partition in parts has an acknowledgement
// after t, and returns when each got its first.
func (l *workload) waitAcks(t testing.TB, parts []int, after time.Time) map[int]time.Duration {
	t.Helper()
	first := map[int]time.Duration{}
	testutil.Eventually(t, 20*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, a := range l.acked {
			if a.at.After(after) && slices.Contains(parts, a.partition) {
				if d, ok := first[a.partition]; !ok || a.at.Sub(after) < d {
					first[a.partition] = a.at.Sub(after)
				}
			}
		}
		for _, p := range parts {
			if _, ok := first[p]; !ok {
				return fmt.Errorf("no ack on partition %d yet", p)
			}
		}
		return nil
	})
	return first
}

// verify stops the load, reads every partition back and fails the test for
// each acknowledged message that is not at its acknowledged offset.
func (l *workload) verify(t testing.TB, cc *coordCluster, topic string, partitions int) {
	t.Helper()
	l.stop()
	l.mu.Lock()
	acked := maps2(l.acked)
	l.mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	for p := range partitions {
		want := map[int64]string{}
		last := int64(-1)
		for v, a := range acked {
			if a.partition == p {
				want[a.offset] = v
				last = max(last, a.offset)
			}
		}
		if last < 0 {
			continue
		}
		got := readPartition(t, cc, topic, p, last)
		lost := 0
		for off, v := range want {
			if got[off] != v {
				if lost < 5 {
					t.Errorf("partition %d offset %d: acknowledged %q, log has %q", p, off, v, got[off])
				}
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("partition %d: %d of %d acknowledged messages lost", p, lost, len(want))
		}
	}
	t.Logf("%d acknowledged messages all present at their offsets", len(acked))
}

func maps2[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// readPartition reads partition p from offset 0 through last.
func readPartition(t testing.TB, cc *coordCluster, topic string, p int, last int64) map[int64]string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   cc.Addrs(),
		Topic:     topic,
		Partition: p,
		MaxWait:   100 * time.Millisecond,
		Dialer:    &kafka.Dialer{DialFunc: cc.Net.Dialer("client"), Timeout: 5 * time.Second},
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := map[int64]string{}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read partition %d after %d messages (want through offset %d): %v", p, len(got), last, err)
		}
		got[m.Offset] = string(m.Value)
		if m.Offset >= last {
			return got
		}
	}
}

// TestBrokersLeaderFailoverUnderLoad: 3 brokers, 6 partitions, RF 3,
// acks=all under continuous produce; the broker leading the most partitions
// is killed; every partition it led has a new leader from the ISR within the
// session TTL + 1 s; it restarts and is back in every ISR; no acknowledged
// message is lost.
func TestBrokersLeaderFailoverUnderLoad(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	cc := newCoordCluster(t, []*Etcd{e}, 3, FastSessionTTL)
	const topic, parts = "bench", 6
	l := cc.loadTopic(t, topic, parts, 2)

	victim := cc.mostLeadingBroker(topic, -1)
	before, _ := cc.view().Topic(topic)
	affected := ledBy(before, victim)
	killed := time.Now()
	cc.Kill(victim)
	took := cc.waitFailover(t, before, victim, killed)
	firstAck := l.waitAcks(t, affected, killed)
	t.Logf("killed broker %d leading partitions %v: new leaders after %v, first acks after %v", victim, affected, took, firstAck)
	if took > FastSessionTTL+2*time.Second { // slack for a loaded machine
		t.Errorf("failover took %v, more than session ttl %v + 2 s", took, FastSessionTTL)
	}

	cc.Restart(victim)
	for p := range int32(parts) {
		cc.WaitISR(topic, p, 1, 2, 3)
	}
	l.waitAcks(t, upTo(parts), time.Now())
	l.verify(t, cc, topic, parts)
}

// TestBrokersControllerKillThenLeaderKill: killing the controller broker
// elects a new controller, which handles a later leader kill.
func TestBrokersControllerKillThenLeaderKill(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	cc := newCoordCluster(t, []*Etcd{e}, 3, time.Second)
	const topic, parts = "ctl", 6
	l := cc.loadTopic(t, topic, parts, 1)

	ctrl := cc.view().ControllerID
	before, _ := cc.view().Topic(topic)
	killed := time.Now()
	cc.Kill(ctrl)
	var next int32
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, id := range cc.IDs() {
			if b := cc.Broker(id); b != nil {
				next = b.View().ControllerID
				if next == ctrl || next < 0 || !cc.Running(next) || !cc.plane(next).IsController() {
					return fmt.Errorf("broker %d sees controller %d", id, next)
				}
			}
		}
		return nil
	})
	took := cc.waitFailover(t, before, ctrl, killed)
	t.Logf("controller %d killed: broker %d controls, leaders moved after %v", ctrl, next, took)

	victim := cc.mostLeadingBroker(topic, next)
	before, _ = cc.view().Topic(topic)
	killed = time.Now()
	cc.Kill(victim)
	took = cc.waitFailover(t, before, victim, killed)
	t.Logf("leader %d killed: leaders moved after %v", victim, took)
	l.waitAcks(t, upTo(parts), time.Now())
	l.verify(t, cc, topic, parts)
}

// TestBrokersSurviveEtcdOutage: with etcd gone for 10 s the leaders keep
// serving acks=all produce and fetch, no partition ever has two brokers
// acting as its leader, and the cluster converges once etcd is back.
func TestBrokersSurviveEtcdOutage(t *testing.T) {
	t.Parallel()
	outage := 10 * time.Second
	if testing.Short() {
		outage = 4 * time.Second
	}
	e := startEtcd(t)
	var e2 *Etcd // the restarted member; closed after the brokers (cleanups run last-in first-out)
	t.Cleanup(func() {
		if e2 != nil {
			e2.Close()
		}
	})
	cc := newCoordCluster(t, []*Etcd{e}, 3, FastSessionTTL)
	const topic, parts = "outage", 6
	l := cc.loadTopic(t, topic, parts, 2)
	all := upTo(parts)
	before := cc.view()

	cc.Net.Isolate(e.Name())
	for _, id := range cc.IDs() {
		cc.Net.Reset(brokertest.Name(id), e.Name())
	}
	e.Close()
	down := time.Now()
	t.Logf("etcd down")
	// For the whole outage: one leader per partition, and acks keep coming.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Since(down) < outage {
		<-tick.C
		leaders := map[int32][]int32{}
		for _, id := range cc.IDs() {
			for _, rs := range cc.Broker(id).Status() {
				if rs.Topic == topic && rs.Role == "leader" {
					leaders[rs.Partition] = append(leaders[rs.Partition], id)
				}
			}
		}
		for p, ids := range leaders {
			if len(ids) > 1 {
				t.Fatalf("partition %d has leaders %v during the etcd outage", p, ids)
			}
		}
	}
	served := l.ackedSince(down.Add(outage / 2))
	for _, p := range all {
		if served[p] == 0 {
			t.Errorf("partition %d acknowledged nothing in the second half of the outage", p)
		}
	}
	t.Logf("acks per partition in the second half of the outage: %v", served)

	var err error
	e2, err = StartEtcd(e.Config())
	if err != nil {
		t.Fatal(err)
	}
	cc.Net.Rejoin(e.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// Converged: every broker registered, one controller, the same leaders.
	testutil.Eventually(t, 15*time.Second, func() error {
		for _, id := range cc.IDs() {
			v := cc.Broker(id).View()
			if len(v.Brokers) != 3 || v.ControllerID < 0 {
				return fmt.Errorf("broker %d: brokers %v controller %d", id, v.Brokers, v.ControllerID)
			}
			tv, _ := v.Topic(topic)
			old, _ := before.Topic(topic)
			for i := range tv.Partitions {
				if tv.Partitions[i].Leader != old.Partitions[i].Leader {
					return fmt.Errorf("broker %d: partition %d leader %d, was %d", id, i, tv.Partitions[i].Leader, old.Partitions[i].Leader)
				}
			}
		}
		return nil
	})
	cc.createTopic(t, broker.TopicConfig{Name: "after-outage", Partitions: 2, ReplicationFactor: 3})
	l.waitAcks(t, all, time.Now())
	l.verify(t, cc, topic, parts)
}

// TestBrokersEtcdMemberLoss: a 3-member etcd cluster loses its raft leader
// under load; the producer sees no error and the cluster keeps working.
func TestBrokersEtcdMemberLoss(t *testing.T) {
	t.Parallel()
	members := startEtcdCluster(t, 3)
	cc := newCoordCluster(t, members, 3, FastSessionTTL)
	const topic, parts = "members", 6
	l := cc.loadTopic(t, topic, parts, 2)
	all := upTo(parts)

	leader := etcdLeader(t, members)
	cc.Net.Isolate(leader.Name())
	for _, id := range cc.IDs() {
		cc.Net.Reset(brokertest.Name(id), leader.Name())
	}
	leader.Close()
	cc.Net.Rejoin(leader.Name())
	lost := time.Now()
	// The cluster still reacts to broker failures and creates topics.
	victim := cc.mostLeadingBroker(topic, cc.view().ControllerID)
	before, _ := cc.view().Topic(topic)
	cc.Kill(victim)
	cc.waitFailover(t, before, victim, time.Now())
	cc.Restart(victim)
	cc.createTopic(t, broker.TopicConfig{Name: "after-loss", Partitions: 2, ReplicationFactor: 3})
	l.waitAcks(t, all, time.Now())
	if n, err := l.failures(); n > 0 {
		t.Errorf("%d produce calls failed after etcd member %s was lost at %v: last %v", n, leader.Name(), lost, err)
	}
	l.verify(t, cc, topic, parts)
}

// TestBrokersControlledShutdown: a graceful stop of the broker leading the
// most partitions under acks=all load is Kafka's controlled shutdown: the
// controller moves every leadership to the ISR while the broker still
// listens (brokertest checks that order), no produce call fails and no
// acknowledged message is lost.
func TestBrokersControlledShutdown(t *testing.T) {
	t.Parallel()
	e := startEtcd(t)
	cc := newCoordCluster(t, []*Etcd{e}, 3, FastSessionTTL)
	const topic, parts = "stop", 6
	l := cc.loadTopic(t, topic, parts, 2)
	victim := cc.mostLeadingBroker(topic, -1)
	if moved := cc.StopWithHandoff(t, victim, topic); moved == 0 {
		t.Fatalf("broker %d led nothing to hand off", victim)
	}
	l.waitAcks(t, upTo(parts), time.Now())
	if n, err := l.failures(); n > 0 {
		t.Errorf("%d produce calls failed during a controlled shutdown, last: %v", n, err)
	}
	l.verify(t, cc, topic, parts)
}
