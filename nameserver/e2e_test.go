package nameserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
	"github.com/brokerlab/brokerlab/nameserver/nstest"
)

// End-to-end tests of the "Done means": real brokers (brokertest)
// under two real name servers, 2 groups x (master + slave): brokers 1 (a,
// master), 2 (a, slave), 3 (b, master), 4 (b, slave). Every connection goes
// over loopback TCP through a faultnet.Network.

const (
	e2eTopic = "orders"
	e2eWait  = 20 * time.Second
)

type nsCluster struct {
	c     *brokertest.Cluster
	nw    *faultnet.Network
	ns    []*nameserver.Server
	rc    *nameserver.RouteClient
	kc    *kclient.Client
	timer nameserver.Timings
	// withoutTopic counts the views brokers got that lack e2eTopic after
	// it was created (a name server that has just restarted answers from
	// an empty table).
	withoutTopic atomic.Int64
	created      atomic.Bool

	log   *slog.Logger
	regMu sync.Mutex
	regs  map[int32]*nameserver.Registrar // the latest registrar of each broker
}

// countingPlane is a broker's registrar that counts, for the test, the views
// that lack e2eTopic.
type countingPlane struct {
	*nameserver.Registrar
	nc *nsCluster
}

func (p countingPlane) Register(ctx context.Context, self broker.BrokerInfo, onView func(broker.ClusterView)) error {
	return p.Registrar.Register(ctx, self, func(v broker.ClusterView) {
		if _, ok := v.Topic(e2eTopic); !ok && p.nc.created.Load() {
			p.nc.withoutTopic.Add(1)
		}
		onView(v)
	})
}

func newNSCluster(t *testing.T, mode string) *nsCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end cluster test")
	}
	log := testutil.Logger(t, slog.LevelWarn)
	nc := &nsCluster{nw: faultnet.New(log.With("component", "faultnet")), timer: nstest.Timings(), log: log,
		regs: map[int32]*nameserver.Registrar{}}
	t.Cleanup(func() { _ = nc.nw.Close() })
	nc.ns = nstest.StartNameServers(t, nc.timer, 2, nc.nw, log)
	addrs := nstest.Addrs(nc.ns)
	dirs := map[int32]string{}
	for id := int32(1); id <= 4; id++ {
		dirs[id] = t.TempDir()
	}
	nc.c = brokertest.New(t, brokertest.Brokers(4), brokertest.WithNetwork(nc.nw),
		brokertest.WithControlPlane(func(id int32) broker.ControlPlane {
			cfg := nstest.RegistrarConfig(nc.timer, id, addrs, nc.nw, log)
			cfg.Mode, cfg.DataDir = mode, dirs[id]
			r, err := nameserver.NewRegistrar(cfg)
			if err != nil {
				t.Fatal(err)
			}
			nc.regMu.Lock()
			nc.regs[id] = r
			nc.regMu.Unlock()
			return countingPlane{r, nc}
		}))
	nc.rc, nc.kc = nstest.StartClients(t, nc.timer, addrs, nc.nw, log)

	// 4 queues on each group; every partition led by its master.
	nstest.CreateTopic(t, nc.c, nc.rc, e2eTopic)
	for _, g := range []struct {
		name   string
		leader int32
	}{{"a", 1}, {"b", 3}} {
		nc.wantLeader(t, nc.partitions(t, g.name), g.leader)
	}
	nc.created.Store(true)
	return nc
}

// partitions returns the partitions of a group.
func (nc *nsCluster) partitions(t *testing.T, group string) []int32 {
	return nstest.Partitions(t, nc.rc, e2eTopic, group)
}

type ack = nstest.Ack

func (nc *nsCluster) startProducer(t *testing.T, table nameserver.LatencyTable) *nstest.Producer {
	return nstest.StartProducer(t, nstest.ProducerConfig{Routes: nc.rc, Kafka: nc.kc, Topic: e2eTopic, Table: table})
}

func (nc *nsCluster) missing(t *testing.T, addr string, acks []ack) []ack {
	return nstest.Missing(t, nc.kc, addr, e2eTopic, acks)
}

// wantLeader waits until every running broker's view has leader for parts.
func (nc *nsCluster) wantLeader(t *testing.T, parts []int32, leader int32) {
	nstest.WantLeader(t, nc.c, e2eTopic, parts, leader)
}

// A stock Kafka client (kafka-go Writer, acks=all, through any broker's
// Metadata) sees nothing when one of two name servers dies.
func TestE2ENameServerLossInvisible(t *testing.T) {
	nc := newNSCluster(t, nameserver.ModeSync)
	w := &kafka.Writer{
		Addr:         kafka.TCP(nc.c.Addrs()...),
		Topic:        e2eTopic,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.RoundRobin{},
		BatchSize:    1,
		Transport:    &kafka.Transport{Dial: nc.nw.Dialer("client"), MetadataTTL: 500 * time.Millisecond},
	}
	t.Cleanup(func() { _ = w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := w.WriteMessages(ctx, kafka.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	}
	write(0, 100)
	if err := nc.ns[0].Close(); err != nil {
		t.Fatal(err)
	}
	talk := func() int64 {
		st := nc.ns[1].Stats()
		return st.RegisterRequests + st.RouteQueries + st.SnapshotQueries
	}
	before := talk()
	write(100, 300)
	// Brokers keep registering with and polling the surviving name server
	// (within a heartbeat or route poll, however fast the writes were).
	testutil.Eventually(t, e2eWait, func() error {
		if got := talk(); got <= before {
			return fmt.Errorf("no registration or query reached ns-2 (%d, before %d)", got, before)
		}
		return nil
	})
	// Every message is there, once, read back with a kafka-go Reader per
	// partition.
	seen := map[string]bool{}
	for p := range 8 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: nc.c.Addrs(), Topic: e2eTopic, Partition: p,
			Dialer: &kafka.Dialer{DialFunc: nc.nw.Dialer("client"), Timeout: 5 * time.Second}, MaxWait: 50 * time.Millisecond})
		for n := 0; n < 300; n++ {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d after %d messages: %v", p, n, err)
			}
			if seen[string(m.Value)] {
				t.Fatalf("duplicate %s", m.Value)
			}
			seen[string(m.Value)] = true
			if r.Lag() == 0 { // read up to the high watermark
				break
			}
		}
		_ = r.Close()
	}
	if len(seen) != 300 {
		t.Fatalf("read %d distinct messages, want 300", len(seen))
	}
}

// Sync mode, master of group a killed under acks=all load: the views mark
// a's partitions leaderless, producers move to group b within one
// fault-avoidance window, a's slave serves every acknowledged message, and
// the restarted master takes writes again.
func TestE2EMasterLossSync(t *testing.T) {
	nc := newNSCluster(t, nameserver.ModeSync)
	pa, pb := nc.partitions(t, "a"), nc.partitions(t, "b")
	// RocketMQ's table with a 2 s failure window, so the test sees group a
	// come back without waiting for the fast profile's 10 s.
	table := nameserver.DefaultLatencyTable().Scaled(1.0 / 300)
	p := nc.startProducer(t, table)
	p.WaitAcked(t, pa, 50)
	p.WaitAcked(t, pb, 50)

	nc.c.Kill(1)
	sendsAtKill, _ := p.Counts("a")
	nc.wantLeader(t, pa, -1)
	nc.wantLeader(t, pb, 3)
	p.WaitAcked(t, pb, 100)
	sends, failed := p.Counts("a")
	if sends-sendsAtKill > 2 || failed == 0 {
		t.Fatalf("after the kill: %d sends to group a (%d failed); want the first failure to isolate it", sends-sendsAtKill, failed)
	}
	// Group a's slave serves its whole log: nothing acknowledged is lost.
	r, err := nc.rc.Refresh(context.Background(), e2eTopic)
	if err != nil {
		t.Fatal(err)
	}
	q, ok := r.ReadQueue(pa[0])
	if !ok || q.Member.NodeID != 2 {
		t.Fatalf("read queue of %d: %+v %v", pa[0], q, ok)
	}
	acked := p.AckedIn(pa)
	if lost := nc.missing(t, q.Member.Addr, acked); len(lost) > 0 {
		t.Fatalf("sync mode lost %d of %d acknowledged messages on group a, e.g. %+v", len(lost), len(acked), lost[0])
	}
	t.Logf("group a: %d acknowledged messages all served by its slave", len(acked))

	nc.c.Restart(1)
	nc.wantLeader(t, pa, 1)
	p.WaitAcked(t, pa, 50)
	if lost := nc.missing(t, nc.c.Broker(1).Addr(), p.AckedIn(pa)); len(lost) > 0 {
		t.Fatalf("restarted master lacks %d acknowledged messages, e.g. %+v", len(lost), lost[0])
	}
	if lost := nc.missing(t, nc.c.Broker(3).Addr(), p.AckedIn(pb)); len(lost) > 0 {
		t.Fatalf("group b lost %d acknowledged messages", len(lost))
	}
}

// Async mode: the master acknowledges alone, so messages it acknowledged
// but had not replicated are lost with it. The slave is cut off from its
// master first, so the loss is certain rather than a race.
func TestE2EMasterLossAsyncLosesAcknowledged(t *testing.T) {
	nc := newNSCluster(t, nameserver.ModeAsync)
	pa := nc.partitions(t, "a")
	for _, id := range []int32{1, 2} {
		tv, _ := nc.c.Broker(id).View().Topic(e2eTopic)
		if !tv.Partitions[pa[0]].AsyncAck {
			t.Fatalf("broker %d: partition %d not async", id, pa[0])
		}
	}
	p := nc.startProducer(t, nameserver.FastLatencyTable())
	p.WaitAcked(t, pa, 20)
	nc.nw.Cut(brokertest.Name(1), brokertest.Name(2))
	p.WaitAcked(t, pa, 50) // acknowledged by the master alone
	nc.c.Kill(1)
	nc.wantLeader(t, pa, -1)

	acked := p.AckedIn(pa)
	lost := nc.missing(t, nc.c.Broker(2).Addr(), acked)
	t.Logf("async mode: %d of %d acknowledged messages on group a lost with its master", len(lost), len(acked))
	if len(lost) < 50 {
		t.Fatalf("lost %d acknowledged messages, want at least the 50 written after the cut", len(lost))
	}
}
