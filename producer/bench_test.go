package producer_test

import (
	"context"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/history/historytest"
	"github.com/brokerlab/brokerlab/producer"
)

// The runner's own clients, with the runner's settings (unbounded rate,
// 1 KiB, batches of 500, 5 ms linger, acks=all, every outcome recorded),
// against a null sink (a Kafka endpoint that acknowledges at once and keeps
// nothing: the client's own ceiling) and against a standalone broker.
//
//	go test -run '^$' -bench RunnerClients -benchtime 200000x ./producer/
func BenchmarkRunnerClients(b *testing.B) {
	b.Run("produce/null-sink", func(b *testing.B) {
		sink := brokertest.StartNullSink(b, 6)
		benchProduce(b, bootstrap(b, nil, "", 0, sink.Addr()))
	})
	b.Run("produce/broker", func(b *testing.B) {
		br := brokertest.Standalone(b)
		benchProduce(b, bootstrap(b, nil, "bench", 6, br.Addr()))
	})
	b.Run("consume/broker", func(b *testing.B) {
		br := brokertest.Standalone(b)
		d := bootstrap(b, nil, "bench", 6, br.Addr())
		produceN(b, d, b.N)
		b.ResetTimer()
		rec := &historytest.Log{}
		ccfg := consumer.DefaultConfig()
		ccfg.Discovery, ccfg.Topic = d, "bench"
		ccfg.MaxWait = 100 * time.Millisecond
		c, err := consumer.New(ccfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- c.Run(ctx, rec.Receive) }()
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err = c.WaitCaughtUp(wctx, time.Now())
		wcancel()
		elapsed := time.Since(start)
		cancel()
		<-done
		if err != nil {
			b.Fatal(err)
		}
		if _, recvs := rec.Events(); len(recvs) != b.N {
			b.Fatalf("%d received, want %d", len(recvs), b.N)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	})
}

func runnerConfig(d discovery.Discovery, n int) producer.Config {
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.ProducerID = d, "bench", 1
	cfg.Rate, cfg.Count, cfg.MessageSize = 0, int64(n), 1024
	cfg.BatchSize, cfg.Linger, cfg.Acks = 500, 5*time.Millisecond, -1
	return cfg
}

func benchProduce(b *testing.B, d discovery.Discovery) {
	b.SetBytes(1024)
	start := time.Now()
	produceN(b, d, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// produceN sends n messages unbounded and fails unless all are acked.
func produceN(b *testing.B, d discovery.Discovery, n int) {
	rec := &historytest.Log{}
	p, err := producer.New(runnerConfig(d, n))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := p.Run(ctx, rec.Send); err != nil {
		b.Fatal(err)
	}
	if st := p.Stats(); st.Acked != int64(n) {
		b.Fatalf("stats %+v, want %d acked", st, n)
	}
}
