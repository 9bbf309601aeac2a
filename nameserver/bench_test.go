package nameserver

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
)

// BenchmarkRegistration measures one broker's registration with a name
// server for a growing number of topics (4 queues each on the broker's
// group, as the registrar builds it from its topic store): the frame size,
// the round trip, and the bytes per second a name server receives per
// broker at the production (30 s) and fast (1 s) heartbeats.
//
//	go test -run '^$' -bench Registration -benchtime 20x ./nameserver/
func BenchmarkRegistration(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			ns := startServer(b, slog.New(slog.DiscardHandler))
			cfg := testTimings().RegistrarConfig()
			cfg.NameServers, cfg.Group = []string{ns.Addr()}, "a"
			r, err := NewRegistrar(cfg)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				// Group a's half of an 8-partition topic over two groups.
				t := GroupTopic{Name: fmt.Sprintf("topic-%05d", i), Queues: 4, FirstPartition: 4 * int32(i%2), Partitions: 8, MinInsync: 1}
				if _, err := r.store.put(t); err != nil {
					b.Fatal(err)
				}
			}
			r.self = broker.BrokerInfo{ID: 1, Addr: "127.0.0.1:9092"}

			p := dialPeer(b, ns.Addr(), peerConfig{maxFrame: 16 << 20, timeout: 10 * time.Second})
			ctx := context.Background()
			b.ResetTimer()
			var sent, received int
			for b.Loop() {
				st, err := p.call(ctx, typeRegister, r.registerRequest(), nil)
				if err != nil {
					b.Fatal(err)
				}
				sent, received = st.sent, st.received
			}
			b.StopTimer()
			if got := ns.Stats().Brokers; got != 1 {
				b.Fatalf("name server has %d brokers", got)
			}
			b.SetBytes(int64(sent))
			b.ReportMetric(float64(sent), "req-bytes")
			b.ReportMetric(float64(received), "reply-bytes")
			b.ReportMetric(float64(sent+received)/30, "B/s/broker@30s")
			b.ReportMetric(float64(sent+received)/1, "B/s/broker@1s")
		})
	}
}

// BenchmarkSnapshot measures a broker's route poll with a growing number of
// topics, each over two groups of master + slave: the full answer a broker
// gets after a change, and the "unchanged" answer of an idle poll.
//
//	go test -run '^$' -bench Snapshot -benchtime 20x ./nameserver/
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", n), func(b *testing.B) {
			ns := startServer(b, slog.New(slog.DiscardHandler))
			topics := [2][]GroupTopic{}
			for i := range n {
				name := fmt.Sprintf("topic-%05d", i)
				for g := range 2 {
					topics[g] = append(topics[g], GroupTopic{Name: name, Queues: 4, FirstPartition: 4 * int32(g), Partitions: 8})
				}
			}
			var p *peer
			for i, id := range []int32{0, 1, 0, 1} {
				group := []string{"a", "b"}[i/2]
				p = benchPeer(b, ns.Addr())
				req := RegisterRequest{Cluster: "c1", Group: group, BrokerID: id, NodeID: int32(i + 1),
					Addr: fmt.Sprintf("127.0.0.1:%d", 9092+i), Mode: ModeSync, Topics: topics[i/2]}
				if _, err := p.call(context.Background(), typeRegister, req, nil); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			var full, idle callStats
			var reply snapshotReply
			for b.Loop() {
				var err error
				if full, err = p.call(ctx, typeSnapshot, snapshotRequest{}, &reply); err != nil {
					b.Fatal(err)
				}
				if idle, err = p.call(ctx, typeSnapshot, snapshotRequest{Epoch: reply.Epoch, Version: reply.Version}, nil); err != nil {
					b.Fatal(err)
				}
			}
			if len(reply.Routes) != n {
				b.Fatalf("%d routes", len(reply.Routes))
			}
			b.ReportMetric(float64(full.received), "full-bytes")
			b.ReportMetric(float64(idle.received), "unchanged-bytes")
		})
	}
}

// benchPeer connects to a name server.
func benchPeer(b *testing.B, addr string) *peer {
	return dialPeer(b, addr, peerConfig{maxFrame: 64 << 20, timeout: 10 * time.Second})
}
