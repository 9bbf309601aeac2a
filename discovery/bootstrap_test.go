package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/brokerlab/brokerlab/broker"
	"github.com/brokerlab/brokerlab/broker/brokertest"
	"github.com/brokerlab/brokerlab/discovery"
	"github.com/brokerlab/brokerlab/discovery/kclient"
	"github.com/brokerlab/brokerlab/internal/testutil"
)

func TestBootstrapRouteAndChanges(t *testing.T) {
	log := testutil.Logger(t, slog.LevelDebug)
	b := brokertest.Standalone(t)
	var mu sync.Mutex
	var changes []discovery.Change
	cfg := discovery.DefaultBootstrapConfig()
	cfg.Brokers = []string{"127.0.0.1:1", b.Addr()} // the first refuses: the second answers
	cfg.RequestTimeout = 2 * time.Second
	cfg.OnChange = func(c discovery.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}
	cfg.Logger = log
	d, err := discovery.NewBootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := d.Route(ctx, "missing"); !errors.Is(err, discovery.ErrUnknownTopic) {
		t.Fatalf("route of a missing topic: %v, want ErrUnknownTopic", err)
	}
	if err := d.CreateTopic(ctx, "t", 3, 1); err != nil {
		t.Fatal(err)
	}
	var r discovery.Route
	testutil.Eventually(t, 5*time.Second, func() error {
		d.Invalidate("t")
		r, err = d.Route(ctx, "t")
		return err
	})
	if len(r.Partitions) != 3 {
		t.Fatalf("route has %d partitions, want 3", len(r.Partitions))
	}
	for i, p := range r.Partitions {
		if p.ID != int32(i) || p.Leader != b.Addr() || len(p.Readers) != 1 || p.Readers[0] != b.Addr() || p.Group == "" {
			t.Errorf("partition %d: %+v, want leader %s", i, p, b.Addr())
		}
		if d.Avoid(p.Group) {
			t.Errorf("bootstrap discovery avoids %s", p.Group)
		}
	}
	mu.Lock()
	n := len(changes)
	mu.Unlock()
	if n != 3 {
		t.Fatalf("%d changes on first route, want 3: %+v", n, changes)
	}
	// A fresh route comes from the cache: no new changes, same Fetched.
	r2, err := d.Route(ctx, "t")
	if err != nil || !r2.Fetched.Equal(r.Fetched) {
		t.Fatalf("second Route refetched: %v %v %v", err, r2.Fetched, r.Fetched)
	}
	if got := d.Brokers(); len(got) != 2 {
		t.Errorf("known brokers %v, want the bootstrap list (the broker's own address is already in it)", got)
	}
}

func TestKclientProduceFetch(t *testing.T) {
	b := brokertest.Standalone(t)
	c := kclient.New(kclient.Config{})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CreateTopic(ctx, b.Addr(), "k", 1, 1, time.Second); err != nil {
		t.Fatal(err)
	}
	var base int64
	testutil.Eventually(t, 5*time.Second, func() error {
		var err error
		base, err = c.Produce(ctx, b.Addr(), kclient.ProduceRequest{
			Topic: "k", Acks: -1, Timeout: time.Second,
			Records: []kclient.Record{
				{Value: []byte("a"), Headers: []kclient.Header{{Key: "h", Value: []byte("1")}}},
				{Key: []byte("k"), Value: []byte("b")},
			},
		})
		return err
	})
	if base != 0 {
		t.Fatalf("base offset %d, want 0", base)
	}
	// Pipelined requests on one connection complete in order.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := c.Produce(ctx, b.Addr(), kclient.ProduceRequest{Topic: "k", Acks: 1, Timeout: time.Second,
				Records: []kclient.Record{{Value: []byte("x")}}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Fetch(ctx, b.Addr(), kclient.FetchRequest{Topic: "k", Offset: 1, MaxWait: 100 * time.Millisecond, MinBytes: 1, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.HighWatermark != 12 || len(res.Records) != 11 || res.Records[0].Offset != 1 || string(res.Records[0].Value) != "b" || string(res.Records[0].Key) != "k" {
		t.Fatalf("fetch from 1: hw %d, %d records, first %+v", res.HighWatermark, len(res.Records), res.Records[0])
	}
	res, err = c.Fetch(ctx, b.Addr(), kclient.FetchRequest{Topic: "k", Offset: 0, MaxWait: 100 * time.Millisecond, MinBytes: 1, MaxBytes: 1 << 20})
	if err != nil || len(res.Records[0].Headers) != 1 || string(res.Records[0].Headers[0].Value) != "1" {
		t.Fatalf("headers lost: %v %+v", err, res.Records)
	}
	end, err := c.ListOffsets(ctx, b.Addr(), "k", 0, kclient.Latest)
	if err != nil || end != 12 {
		t.Fatalf("latest offset %d (%v), want 12", end, err)
	}
	if _, err := c.Produce(ctx, "127.0.0.1:1", kclient.ProduceRequest{Topic: "k", Acks: 1}); !errors.Is(err, kclient.ErrNotSent) {
		t.Fatalf("produce to a closed port: %v, want ErrNotSent", err)
	}
}

// TestBootstrapPassesOverSilentBroker: a broker that went silent (requests
// hang, nothing refuses) does not hold refreshes for a request timeout, as
// Kafka's least-loaded-node choice would not. With hedging the next broker
// is asked after HedgeAfter and the silent one is asked last from then on;
// without it, a failure the producer reports has the same effect.
func TestBootstrapPassesOverSilentBroker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hedge  time.Duration
		report bool
	}{
		{"hedged", 2 * time.Second, false},
		{"reported", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := testutil.Logger(t, slog.LevelInfo)
			c := brokertest.New(t, brokertest.Brokers(3))
			c.CreateTopic(t, broker.TopicConfig{Name: "t", Partitions: 3, ReplicationFactor: 3, MinInsync: 1})
			const victim = 1
			cfg := discovery.DefaultBootstrapConfig()
			// The victim first, so that a plain rotation starts with it.
			cfg.Brokers = []string{c.Broker(victim).Addr(), c.Broker(2).Addr(), c.Broker(3).Addr()}
			cfg.RequestTimeout = 10 * time.Second
			cfg.HedgeAfter = tc.hedge
			cfg.RefreshBackoff = 0 // every Invalidate refetches
			cfg.Dial = c.Net.Dialer("client")
			cfg.Logger = log
			d, err := discovery.NewBootstrap(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := d.Route(ctx, "t"); err != nil {
				t.Fatal(err)
			}

			c.Net.Isolate(brokertest.Name(victim))
			if tc.report {
				d.Report(fmt.Sprintf("broker-%d", victim), cfg.RequestTimeout, errors.New("request timed out"))
			}
			for i := range 3 {
				d.Invalidate("t")
				began := time.Now()
				r, err := d.Route(ctx, "t")
				took := time.Since(began)
				if err != nil || r.Fetched.Before(began) {
					t.Fatalf("refresh %d: %v (fetched %v, asked %v): the refresh failed", i, err, r.Fetched, began)
				}
				limit := cfg.RequestTimeout // the first hedged refresh waits HedgeAfter
				if i > 0 || tc.report {
					limit = 2 * time.Second // the silent broker is asked last now
				}
				if took >= limit {
					t.Fatalf("refresh %d took %v, want under %v: it waited on the silent broker", i, took, limit)
				}
				t.Logf("refresh %d took %v", i, took.Round(time.Millisecond))
			}
			c.Net.Rejoin(brokertest.Name(victim))
		})
	}
}
