package producer_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/consumer"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/faultnet"
	"github.com/brokerlab/brokerlab/history"
	"github.com/brokerlab/brokerlab/history/historytest"
	"github.com/brokerlab/brokerlab/internal/testutil"
	"github.com/brokerlab/brokerlab/producer"
)

// bootstrap returns a Kafka-style discovery of addrs with a topic created.
func bootstrap(t testing.TB, dial kclient.DialFunc, topic string, partitions int32, addrs ...string) *discovery.Bootstrap {
	t.Helper()
	cfg := discovery.DefaultBootstrapConfig()
	cfg.Brokers = addrs
	cfg.RequestTimeout = 5 * time.Second
	cfg.Logger = testutil.Logger(t, slog.LevelWarn)
	if dial != nil {
		cfg.Dial = dial
	}
	d, err := discovery.NewBootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if topic != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.CreateTopic(ctx, topic, partitions, 1); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// checkAllAcked fails unless every seq 0..n-1 was recorded once, Acked, at a
// distinct partition offset.
func checkAllAcked(t *testing.T, sends []history.Send, n int) {
	t.Helper()
	if len(sends) != n {
		t.Fatalf("%d sends recorded, want %d", len(sends), n)
	}
	seqs := map[int64]bool{}
	offsets := map[[2]int64]int64{}
	for _, s := range sends {
		if seqs[s.Seq] {
			t.Fatalf("seq %d recorded twice", s.Seq)
		}
		seqs[s.Seq] = true
		if s.Outcome != history.Acked || s.Offset < 0 {
			t.Fatalf("seq %d: %v offset %d err %q, want acked", s.Seq, s.Outcome, s.Offset, s.Err)
		}
		k := [2]int64{int64(s.Partition), s.Offset}
		if prev, dup := offsets[k]; dup {
			t.Fatalf("seqs %d and %d both acked at %d/%d", prev, s.Seq, s.Partition, s.Offset)
		}
		offsets[k] = s.Seq
		if s.Attempts < 1 || s.Sent.Before(s.Intended) || s.Done.Before(s.Sent) {
			t.Fatalf("seq %d: attempts %d intended %v sent %v done %v", s.Seq, s.Attempts, s.Intended, s.Sent, s.Done)
		}
	}
}

// checkReceived fails unless every acked send was received exactly once at
// its partition and offset with its intended time.
func checkReceived(t *testing.T, sends []history.Send, recvs []history.Receive) {
	t.Helper()
	got := map[int64]history.Receive{}
	for _, r := range recvs {
		if _, dup := got[r.Seq]; dup {
			t.Fatalf("seq %d received twice", r.Seq)
		}
		got[r.Seq] = r
	}
	for _, s := range sends {
		if s.Outcome != history.Acked {
			continue
		}
		r, ok := got[s.Seq]
		if !ok {
			t.Fatalf("acked seq %d (%d/%d) never received", s.Seq, s.Partition, s.Offset)
		}
		if r.Producer != s.Producer || r.Partition != s.Partition || r.Offset != s.Offset || !r.Intended.Equal(s.Intended) {
			t.Fatalf("seq %d: sent %+v, received %+v", s.Seq, s, r)
		}
	}
}

func TestProduceConsumeAtFixedRate(t *testing.T) {
	b := brokertest.Standalone(t)
	d := bootstrap(t, nil, "t", 3, b.Addr())
	rec := &historytest.Log{}

	ccfg := consumer.DefaultConfig()
	ccfg.Discovery, ccfg.Topic, ccfg.ConsumerID = d, "t", 7
	ccfg.MaxWait = 100 * time.Millisecond
	c, err := consumer.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx, rec.Receive) }()
	t.Cleanup(func() { cstop(); <-cdone })

	const n = 400
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.ProducerID = d, "t", 3
	cfg.Rate, cfg.Count, cfg.MessageSize, cfg.Keys = 1000, n, 100, true
	cfg.Logger = testutil.Logger(t, slog.LevelInfo)
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Run(ctx, rec.Send); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if took := stopped.Sub(start); took < 390*time.Millisecond {
		t.Errorf("%d messages at 1000/s took %v: the schedule did not hold", n, took)
	}
	sends, _ := rec.Events()
	checkAllAcked(t, sends, n)
	if st := p.Stats(); st.Acked != n || st.Scheduled != n || st.Sent != n || st.Failed+st.Unknown != 0 {
		t.Errorf("stats %+v", st)
	}
	parts := map[int32]int{}
	for _, s := range sends {
		parts[s.Partition]++
	}
	if len(parts) != 3 {
		t.Errorf("keys spread over %d partitions, want 3: %v", len(parts), parts)
	}

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := c.WaitCaughtUp(wctx, stopped); err != nil {
		t.Fatalf("consumer did not catch up: %v, progress %+v", err, c.Progress())
	}
	_, recvs := rec.Events()
	checkReceived(t, sends, recvs)
	if len(recvs) != n || c.Lag() != 0 {
		t.Fatalf("%d received, lag %d; want %d and 0", len(recvs), c.Lag(), n)
	}
	for _, r := range recvs {
		if r.Consumer != 7 || r.Received.Before(r.Intended) {
			t.Fatalf("receive %+v", r)
		}
	}
}

// TestOpenLoopThroughStall pauses the broker for about a second while the
// producer runs at a fixed rate: the schedule must not slip (messages keep
// their intended times and keep being enqueued), and the stall must show in
// Sent - Intended and Done - Intended of the messages due during it.
func TestOpenLoopThroughStall(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	b := brokertest.Standalone(t)
	nw := faultnet.New(log)
	t.Cleanup(func() { nw.Close() })
	nw.Register("broker", b.Addr())
	d := bootstrap(t, nw.Dialer("client"), "s", 2, b.Addr())

	const rate, n = 200.0, 600
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic = d, "s"
	cfg.Rate, cfg.Count, cfg.MessageSize = rate, n, 64
	cfg.RequestTimeout = 20 * time.Second
	cfg.Dial = nw.Dialer("client")
	cfg.Logger = log
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &historytest.Log{}
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { done <- p.Run(ctx, rec.Send) }()

	testutil.Eventually(t, 10*time.Second, func() error {
		if a := p.Stats().Acked; a < 100 {
			return fmt.Errorf("%d acked", a)
		}
		return nil
	})
	nw.Pause("broker")
	paused := time.Now()
	before := p.Stats().Scheduled
	// Hold the pause while the schedule moves on by a second's worth.
	testutil.Eventually(t, 10*time.Second, func() error {
		if s := p.Stats().Scheduled; s < before+int64(rate) {
			return fmt.Errorf("%d scheduled during the pause", s-before)
		}
		return nil
	})
	if a := p.Stats().Acked; a > before+10 {
		t.Errorf("%d acks while the broker was paused", a-before)
	}
	nw.Resume("broker")
	resumed := time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sends, _ := rec.Events()
	checkAllAcked(t, sends, n)

	var first time.Time
	var maxWait, maxLatency time.Duration
	during := 0
	for _, s := range sends {
		if s.Seq == 0 {
			first = s.Intended
		}
	}
	for _, s := range sends {
		// The schedule never slips: message i is due at first + i/rate.
		want := first.Add(time.Duration(float64(s.Seq) * float64(time.Second) / rate))
		if d := s.Intended.Sub(want); d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("seq %d intended %v, schedule says %v", s.Seq, s.Intended, want)
		}
		if s.Intended.After(paused) && s.Intended.Before(resumed) {
			during++
			maxWait = max(maxWait, s.Sent.Sub(s.Intended))
			maxLatency = max(maxLatency, s.Done.Sub(s.Intended))
		}
	}
	stall := resumed.Sub(paused)
	t.Logf("stall %v: %d messages due during it, max sent-intended %v, max done-intended %v", stall, during, maxWait, maxLatency)
	if want := int(0.8 * rate * stall.Seconds()); during < want {
		t.Errorf("%d messages due during a %v stall, want >= %d", during, stall, want)
	}
	if maxLatency < stall*8/10 {
		t.Errorf("max latency from intended %v during a %v stall: the stall is not measured", maxLatency, stall)
	}
	if maxWait < stall*7/10 {
		t.Errorf("max sent-intended %v during a %v stall: queued messages did not wait", maxWait, stall)
	}
}

// TestStopReportsUnknown stops a producer whose broker is paused: every
// scheduled message is still recorded once, those in flight or queued as
// Unknown.
func TestStopReportsUnknown(t *testing.T) {
	log := testutil.Logger(t, slog.LevelWarn)
	b := brokertest.Standalone(t)
	nw := faultnet.New(log)
	t.Cleanup(func() { nw.Close() })
	nw.Register("broker", b.Addr())
	d := bootstrap(t, nw.Dialer("client"), "u", 1, b.Addr())
	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.Rate, cfg.MessageSize = d, "u", 500, 10
	cfg.Dial = nw.Dialer("client")
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &historytest.Log{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, rec.Send) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		if a := p.Stats().Acked; a < 20 {
			return fmt.Errorf("%d acked", a)
		}
		return nil
	})
	nw.Pause("broker")
	before := p.Stats().Scheduled
	testutil.Eventually(t, 10*time.Second, func() error {
		if s := p.Stats().Scheduled; s < before+50 {
			return fmt.Errorf("%d scheduled since the pause", s-before)
		}
		return nil
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Log(string(buf[:runtime.Stack(buf, true)]))
		t.Fatal("Run did not return after its context ended")
	}
	nw.Resume("broker")
	sends, _ := rec.Events()
	st := p.Stats()
	if int64(len(sends)) != st.Scheduled || st.Acked+st.Failed+st.Unknown != st.Scheduled {
		t.Fatalf("%d records, stats %+v", len(sends), st)
	}
	seen := map[int64]bool{}
	var unknown, unsent int
	for _, s := range sends {
		if seen[s.Seq] {
			t.Fatalf("seq %d recorded twice", s.Seq)
		}
		seen[s.Seq] = true
		if s.Outcome == history.Unknown {
			unknown++
			if s.Attempts == 0 {
				unsent++
			}
			if s.Err == "" {
				t.Errorf("unknown seq %d without an error", s.Seq)
			}
		}
	}
	if unknown < 50 || unsent == 0 || unsent == unknown {
		t.Errorf("%d unknown (%d never sent), want >= 50, some in flight and some queued", unknown, unsent)
	}
}

// TestOutcomes: acks=0 sends are Acked with Offset -1 and still delivered;
// after the broker dies, messages are Failed once their retries are spent,
// with the error and the attempts recorded.
func TestOutcomes(t *testing.T) {
	b := brokertest.Standalone(t)
	d := bootstrap(t, nil, "o", 1, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := producer.DefaultConfig()
	cfg.Discovery, cfg.Topic, cfg.ProducerID = d, "o", 1
	cfg.Rate, cfg.Count, cfg.Acks, cfg.MessageSize = 0, 200, 0, 10
	p, err := producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &historytest.Log{}
	if err := p.Run(ctx, rec.Send); err != nil {
		t.Fatal(err)
	}
	sends, _ := rec.Events()
	for _, s := range sends {
		if s.Outcome != history.Acked || s.Offset != -1 || s.Attempts != 1 {
			t.Fatalf("acks=0 send %+v, want acked at offset -1", s)
		}
	}
	ccfg := consumer.DefaultConfig()
	ccfg.Discovery, ccfg.Topic, ccfg.MaxWait = d, "o", 50*time.Millisecond
	c, err := consumer.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx, rec.Receive) }()
	if err := c.WaitCaughtUp(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	cstop()
	<-cdone
	if _, recvs := rec.Events(); len(recvs) != 200 {
		t.Fatalf("%d acks=0 messages received, want 200", len(recvs))
	}

	cfg.ProducerID, cfg.Acks, cfg.Rate, cfg.Count = 2, -1, 400, 400
	cfg.Retries, cfg.RetryBackoff, cfg.RequestTimeout = 2, 10*time.Millisecond, 2*time.Second
	p, err = producer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec = &historytest.Log{}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, rec.Send) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		if a := p.Stats().Acked; a < 50 {
			return fmt.Errorf("%d acked", a)
		}
		return nil
	})
	b.Kill()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sends, _ = rec.Events()
	st := p.Stats()
	if len(sends) != 400 || st.Acked+st.Failed+st.Unknown != 400 || st.Failed < 100 {
		t.Fatalf("%d records, stats %+v: want 400 and many failed", len(sends), st)
	}
	for _, s := range sends {
		switch s.Outcome {
		case history.Acked:
			if s.Offset < 0 {
				t.Fatalf("acked without offset: %+v", s)
			}
		case history.Failed:
			if s.Err == "" || s.Attempts != 3 || s.Offset != -1 {
				t.Fatalf("failed send %+v: want an error, 3 attempts (retries 2), offset -1", s)
			}
		}
	}
}
