// Package nstest holds what the end-to-end tests of the name-server
// topologies (nameserver and nameserver-controller) share: starting name
// servers and clients, a RocketMQ-style producer that records what was
// acknowledged, readers that check a broker still serves it, and waits on
// the brokers' views.
//
//	p := nstest.StartProducer(t, nstest.ProducerConfig{Routes: rc, Kafka: kc, Topic: "orders", Table: table})
//	p.WaitAcked(t, parts, 50)
//	if lost := nstest.Missing(t, kc, addr, "orders", p.AckedIn(parts)); len(lost) > 0 { ... }
package nstest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/nameserver"
)

// Wait bounds every wait of this package.
const Wait = 30 * time.Second

// Ack is an acknowledged message.
type Ack struct {
	Partition int32
	Offset    int64
	Value     string
	At        time.Time
}

// ProducerConfig configures a Producer.
type ProducerConfig struct {
	Routes *nameserver.RouteClient
	Kafka  *kclient.Client
	Topic  string
	// Table is the fault-avoidance table (latency -> isolation).
	Table nameserver.LatencyTable
	// Timeout bounds one send; 2 s when zero.
	Timeout time.Duration
}

// Producer is a route-aware producer as RocketMQ's: it writes only to
// masters of available groups, round robin over their queues, one record
// per request with acks=all, updates its fault memory after every send and
// refreshes its route on an error.
type Producer struct {
	cfg ProducerConfig
	ft  *nameserver.FaultTolerance

	mu     sync.Mutex
	acked  []Ack
	sends  map[string]int // attempts per group
	failed map[string]int
}

// StartProducer starts producing until the test ends.
func StartProducer(t testing.TB, cfg ProducerConfig) *Producer {
	t.Helper()
	ft, err := nameserver.NewFaultTolerance(cfg.Table)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	p := &Producer{cfg: cfg, ft: ft, sends: map[string]int{}, failed: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

func (p *Producer) run(ctx context.Context) {
	rc, topic := p.cfg.Routes, p.cfg.Topic
	for seq := 0; ctx.Err() == nil; seq++ {
		r, err := rc.Route(ctx, topic)
		if err != nil {
			continue // the route client moves to the next name server
		}
		qs := r.WriteQueues(p.ft)
		if len(qs) == 0 { // no master, or a name server that has just restarted
			_, _ = rc.Refresh(ctx, topic)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // pacing, not synchronisation
			}
			continue
		}
		q := qs[seq%len(qs)]
		value := strconv.Itoa(seq)
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		off, err := p.cfg.Kafka.Produce(sctx, q.Member.Addr, kclient.ProduceRequest{Topic: topic, Partition: q.Partition,
			Acks: -1, Timeout: p.cfg.Timeout, Records: []kclient.Record{{Value: []byte(value)}}})
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.ft.Update(q.Group, time.Since(start), err != nil)
		p.mu.Lock()
		p.sends[q.Group]++
		if err != nil {
			p.failed[q.Group]++
		} else {
			p.acked = append(p.acked, Ack{q.Partition, off, value, time.Now()})
		}
		p.mu.Unlock()
		if err != nil {
			_, _ = rc.Refresh(ctx, topic)
		}
	}
}

// Counts returns the sends to a group so far and how many failed.
func (p *Producer) Counts(group string) (sends, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sends[group], p.failed[group]
}

// AckedIn returns the acknowledged messages of parts, in order.
func (p *Producer) AckedIn(parts []int32) []Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Ack
	for _, a := range p.acked {
		if slices.Contains(parts, a.Partition) {
			out = append(out, a)
		}
	}
	return out
}

// WaitAcked waits for n more acks on parts and returns when the first of
// them came.
func (p *Producer) WaitAcked(t testing.TB, parts []int32, n int) time.Time {
	t.Helper()
	base := len(p.AckedIn(parts))
	var first time.Time
	testutil.Eventually(t, Wait, func() error {
		got := p.AckedIn(parts)
		if len(got) < base+n {
			return fmt.Errorf("%d acks on %v, want %d", len(got), parts, base+n)
		}
		first = got[base].At
		return nil
	})
	return first
}

// ReadAll reads a partition from addr, from offset 0 to its high
// watermark.
func ReadAll(ctx context.Context, kc *kclient.Client, addr, topic string, partition int32) (map[int64]string, error) {
	out := map[int64]string{}
	offset := int64(0)
	for range 10000 {
		res, err := kc.Fetch(ctx, addr, kclient.FetchRequest{Topic: topic, Partition: partition, Offset: offset,
			MaxWait: 10 * time.Millisecond, MaxBytes: 1 << 20})
		if err != nil {
			return nil, err
		}
		for _, r := range res.Records {
			out[r.Offset] = string(r.Value)
			offset = r.Offset + 1
		}
		if offset >= res.HighWatermark {
			return out, nil
		}
	}
	return nil, errors.New("partition does not end")
}

// LostIn returns the acks addr does not serve, or why it could not read
// them. Reads are retried: a pooled connection to a broker that restarted
// on the same address fails once.
func LostIn(kc *kclient.Client, addr, topic string, acks []Ack) ([]Ack, error) {
	logs := map[int32]map[int64]string{}
	var lost []Ack
	for _, a := range acks {
		if logs[a.Partition] == nil {
			var l map[int64]string
			err := testutil.Poll(context.Background(), Wait, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var err error
				l, err = ReadAll(ctx, kc, addr, topic, a.Partition)
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("read %s/%d from %s: %w", topic, a.Partition, addr, err)
			}
			logs[a.Partition] = l
		}
		if logs[a.Partition][a.Offset] != a.Value {
			lost = append(lost, a)
		}
	}
	return lost, nil
}

// Missing is LostIn that fails the test when addr cannot be read.
func Missing(t testing.TB, kc *kclient.Client, addr, topic string, acks []Ack) []Ack {
	t.Helper()
	lost, err := LostIn(kc, addr, topic, acks)
	if err != nil {
		t.Fatal(err)
	}
	return lost
}

// Partitions returns the partitions (queues) of a group in the topic's
// route.
func Partitions(t testing.TB, rc *nameserver.RouteClient, topic, group string) []int32 {
	t.Helper()
	r, err := rc.Refresh(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Groups {
		if g.Group == group {
			var ps []int32
			for i := range g.Queues {
				ps = append(ps, g.FirstPartition+i)
			}
			return ps
		}
	}
	t.Fatalf("no group %s in the route of %s: %+v", group, topic, r)
	return nil
}

// StartNameServer starts a name server on listen ("127.0.0.1:0" for any
// port, or the address of a stopped one) and closes it when the test ends.
func StartNameServer(t testing.TB, tm nameserver.Timings, listen string, log *slog.Logger) *nameserver.Server {
	t.Helper()
	cfg := tm.ServerConfig()
	cfg.Listen, cfg.Logger = listen, log
	s, err := nameserver.New(cfg)
	return testutil.Started(t, s, err)
}

// Timings are the fast profile with 250 ms route polls, so clients see a
// new master within a quarter second.
func Timings() nameserver.Timings {
	t := nameserver.Fast()
	t.RoutePoll = 250 * time.Millisecond
	return t
}

// GroupOf places the brokers of the end-to-end layout, 2 groups x (master +
// slave): brokers 1 and 2 are group a's broker ids 0 and 1, brokers 3 and 4
// group b's.
func GroupOf(id int32) (string, int32) {
	return []string{"a", "b"}[(id-1)/2], (id - 1) % 2
}

// StartNameServers starts n name servers, ns-1 to ns-n, each registered on
// nw under its name.
func StartNameServers(t testing.TB, tm nameserver.Timings, n int, nw *faultnet.Network, log *slog.Logger) []*nameserver.Server {
	t.Helper()
	var out []*nameserver.Server
	for i := range n {
		name := fmt.Sprintf("ns-%d", i+1)
		s := StartNameServer(t, tm, "127.0.0.1:0", log.With("node", name))
		nw.Register(name, s.Addr())
		out = append(out, s)
	}
	return out
}

// Addrs returns the name servers' addresses.
func Addrs(nss []*nameserver.Server) []string {
	out := make([]string, len(nss))
	for i, s := range nss {
		out[i] = s.Addr()
	}
	return out
}

// RegistrarConfig configures broker id of the layout (see GroupOf) in
// cluster c1 to register with the name servers nss, dialling through nw.
func RegistrarConfig(tm nameserver.Timings, id int32, nss []string, nw *faultnet.Network, log *slog.Logger) nameserver.RegistrarConfig {
	cfg := tm.RegistrarConfig()
	cfg.NameServers, cfg.Cluster = nss, "c1"
	cfg.Group, cfg.BrokerID = GroupOf(id)
	cfg.Dial = nw.Dialer(brokertest.Name(id))
	cfg.Logger = log.With("node", brokertest.Name(id))
	return cfg
}

// StartClients starts a route client of the name servers nss and a Kafka
// client, both dialling through nw as "client", and closes them when the
// test ends.
func StartClients(t testing.TB, tm nameserver.Timings, nss []string, nw *faultnet.Network, log *slog.Logger) (*nameserver.RouteClient, *kclient.Client) {
	t.Helper()
	cfg := tm.RouteClientConfig()
	cfg.NameServers, cfg.Dial, cfg.Logger = nss, nw.Dialer("client"), log.With("node", "client")
	rc, err := nameserver.NewRouteClient(cfg)
	rc = testutil.Started(t, rc, err)
	kc := kclient.New(kclient.Config{Dial: nw.Dialer("client"), DialTimeout: 2 * time.Second})
	t.Cleanup(func() { _ = kc.Close() })
	return rc, kc
}

// CreateTopic creates topic with 8 partitions on c and waits until rc
// routes 4 queues to each of the layout's two groups.
func CreateTopic(t testing.TB, c *brokertest.Cluster, rc *nameserver.RouteClient, topic string) {
	t.Helper()
	c.CreateTopic(t, broker.TopicConfig{Name: topic, Partitions: 8})
	testutil.Eventually(t, Wait, func() error {
		r, err := rc.Refresh(context.Background(), topic)
		if err != nil {
			return err
		}
		if len(r.Groups) != 2 || r.Groups[0].Queues != 4 || r.Groups[1].Queues != 4 {
			return fmt.Errorf("route %+v", r)
		}
		return nil
	})
}

// WantLeader waits until every running broker's view of topic has leader
// for parts.
func WantLeader(t testing.TB, c *brokertest.Cluster, topic string, parts []int32, leader int32) {
	t.Helper()
	testutil.Eventually(t, Wait, func() error {
		for _, id := range c.IDs() {
			b := c.Broker(id)
			if b == nil {
				continue
			}
			tv, ok := b.View().Topic(topic)
			if !ok {
				return fmt.Errorf("broker %d has no %s", id, topic)
			}
			for _, p := range parts {
				if got := tv.Partitions[p].Leader; got != leader {
					return fmt.Errorf("broker %d: %s/%d leader %d, want %d", id, topic, p, got, leader)
				}
			}
		}
		return nil
	})
}
