package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/segmentio/kafka-go"
)

// benchProduce writes b.N 1 KiB messages with a kafka-go Writer (batches of
// 1000, round-robin over the topic's partitions) and reports MB/s.
func benchProduce(b *testing.B, addrs []string, topic string, acks kafka.RequiredAcks) {
	value := make([]byte, 1024)
	w := &kafka.Writer{
		Addr: kafka.TCP(addrs...), Topic: topic, RequiredAcks: acks, Transport: &kafka.Transport{},
		BatchSize: 1000, BatchBytes: 2 << 20, BatchTimeout: time.Millisecond, Balancer: &kafka.RoundRobin{},
	}
	defer w.Close()
	const chunk = 8000
	msgs := make([]kafka.Message, chunk)
	for i := range msgs {
		msgs[i].Value = value
	}
	ctx := context.Background()
	// One chunk to learn metadata and open connections before timing.
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		if err := w.WriteMessages(ctx, msgs[:min(chunk, b.N-done)]...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduceStandalone is issue 2's figure: one standalone broker,
// kafka-go Writer, 1 KiB messages, batch 1000, acks=1, 8 partitions.
//
//	go test -run '^$' -bench ProduceStandalone -benchtime 200000x ./broker/
func BenchmarkProduceStandalone(b *testing.B) {
	n := startStandalone(b, b.TempDir(), "127.0.0.1:0", func(c *broker.Config) { c.Logger = nil })
	createTopic(b, n.addr, "bench", 8)
	benchProduce(b, []string{n.addr}, "bench", kafka.RequireOne)
}

// BenchmarkReplication is issue 3's comparison on a 3-broker in-process
// cluster: RF 1 vs RF 3 with acks=1 and acks=all, star vs chain fan-out.
// leader-bytes/produced-byte is what partition leaders sent to followers per
// byte produced (2 for star RF 3, 1 for chain, where the middle replica
// passes the rest on: chain-bytes/produced-byte).
//
//	go test -run '^$' -bench Replication -benchtime 100000x ./broker/
func BenchmarkReplication(b *testing.B) {
	cases := []struct {
		rf     int16
		acks   kafka.RequiredAcks
		fanout broker.Fanout
	}{
		{1, kafka.RequireOne, broker.FanoutStar},
		{3, kafka.RequireOne, broker.FanoutStar},
		{3, kafka.RequireAll, broker.FanoutStar},
		{3, kafka.RequireOne, broker.FanoutChain},
		{3, kafka.RequireAll, broker.FanoutChain},
	}
	for _, c := range cases {
		acks := "1"
		if c.acks == kafka.RequireAll {
			acks = "all"
		}
		b.Run(fmt.Sprintf("rf=%d/acks=%s/%s", c.rf, acks, c.fanout), func(b *testing.B) {
			cl := brokertest.New(b, brokertest.Brokers(3), brokertest.LogLevel(8))
			cl.CreateTopic(b, broker.TopicConfig{Name: "bench", Partitions: 8, ReplicationFactor: c.rf, MinInsync: min(c.rf, 2), Fanout: c.fanout})
			before := sumStats(cl)
			benchProduce(b, cl.Addrs(), "bench", c.acks)
			b.StopTimer()
			after := sumStats(cl)
			produced := float64(after.ProduceBytes - before.ProduceBytes)
			if produced > 0 {
				b.ReportMetric(float64(after.ReplicaBytesOut-before.ReplicaBytesOut)/produced, "leader-bytes/produced-byte")
				b.ReportMetric(float64(after.ChainBytesOut-before.ChainBytesOut)/produced, "chain-bytes/produced-byte")
			}
		})
	}
}

func sumStats(c *brokertest.Cluster) broker.Stats {
	var s broker.Stats
	for _, id := range c.IDs() {
		st := c.Broker(id).Stats()
		s.ProduceBytes += st.ProduceBytes
		s.ReplicaBytesOut += st.ReplicaBytesOut
		s.ChainBytesOut += st.ChainBytesOut
	}
	return s
}
